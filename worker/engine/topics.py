"""Topic classifier: TF-IDF word uni- and bigrams into one logistic regression per label, with evidence.

Labels come from the corpus (`fit` takes the label names), never from code. TF-IDF rows are
L2-normalised, so a topic named once in a long story weighs little: the guideline asks for a
substantial thread, not a passing phrase.

Fitting uses scikit-learn's TfidfVectorizer for the vocabulary and idf; rows are then counted
with lookup tables built from that vocabulary, so a whole batch is counted with a handful of
numpy calls instead of a Python loop over every n-gram, and the windows come from the same
occurrences (a test holds the article rows equal to the vectoriser's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
import unicodedata
from itertools import repeat

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

EVIDENCE_TERMS = 5
EVIDENCE_POOL = 40  # the strongest terms looked at, to find EVIDENCE_TERMS readable ones
WINDOW_TOKENS = 60  # about a paragraph of wire copy; windows overlap by half
STACK_FOLDS = 5
STACK_SEED = 7
_COMBINING = re.compile(r"[\u0300-\u036f]")
# every byte but a-z, 0-9 and the hyphen separates tokens; hyphens join words ("front-line",
# which a weather "front line" is not) and are dropped where they do not sit between two
_SEPARATE = bytes(b if (48 <= b <= 57 or 97 <= b <= 122 or b == 45) else 32 for b in range(256))


def tokenize_bytes(text: str) -> list[bytes]:
    """Lower-cased, accent-folded ASCII word tokens as bytes: a translate and a split, the
    fastest tokeniser pure Python has. Letters outside Latin script become separators."""
    text = text.lower()
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    spaced = b" " + text.encode("ascii", "replace").translate(_SEPARATE) + b" "
    return spaced.replace(b"--", b" ").replace(b"- ", b" ").replace(b" -", b" ").split()


def tokenize(text: str) -> list[str]:
    """Word tokens ("Türkiye's front-line -- " -> ["turkiye", "s", "front-line"])."""
    return [token.decode("ascii") for token in tokenize_bytes(text)]


def analyze(text: str) -> list[str]:
    """Unigrams and bigrams: the vectoriser's analyzer at fit time."""
    tokens = tokenize(text)
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]


# n-grams led or ended by these are fragments, not reasons ("sanctions on", "the eu"); nor are
# these words alone, which carry no topic for an editor ("said", "imposed")
_FRAGMENT_WORDS = frozenset(ENGLISH_STOP_WORDS) | frozenset(
    "said says told added according including imposed announced reported week year years month months day days "
    "monday tuesday wednesday thursday friday saturday sunday percent million billion new".split())


def readable_evidence(terms: list[str], limit: int = EVIDENCE_TERMS) -> list[str]:
    """Of terms strongest first, the first `limit` an editor reads as reasons: no stop word at
    either end of a phrase, no token of one or two letters ("us", "un", a possessive's "s"), no
    bare number; a word already inside a chosen phrase ("korea" beside "north korea") is not
    repeated, and the phrase takes the word's place when it comes later."""
    return _without_repeats([term for term in terms if is_readable(term)], limit)


def is_readable(term: str) -> bool:
    words = term.split()
    return not (any(len(w) <= 2 or w.isdigit() for w in words) or words[0] in _FRAGMENT_WORDS or words[-1] in _FRAGMENT_WORDS)


def _without_repeats(terms: list[str], limit: int) -> list[str]:
    chosen: list[str] = []
    inside: set[str] = set()  # the words of the phrases chosen so far
    for term in terms:
        if " " in term:
            words = term.split()
            chosen = [other for other in chosen if other not in words]
            inside.update(words)
        elif term in inside:
            continue
        chosen.append(term)
    return chosen[:limit]


@dataclass(frozen=True)
class Vectors:
    """TF-IDF rows for whole articles; n-gram occurrences of their overlapping windows.

    A window is scored as the idf-weighted bag of its n-gram occurrences, scaled to unit
    length: over ~60 tokens a term rarely repeats, so this equals TF-IDF there in all but
    name, and it is summed with `bincount` instead of sorted into a sparse matrix.
    """

    articles: sparse.csr_matrix
    window_of: np.ndarray  # window index of each occurrence (an occurrence sits in up to two windows)
    window_feature: np.ndarray  # feature index of each occurrence
    window_starts: np.ndarray  # index of each article's first window; windows are contiguous
    n_windows: int


class TopicClassifier(ClassifierMixin, BaseEstimator):
    """Multi-label: `fit(texts, Y, labels, known=None)` with Y an (n_articles, n_labels) 0/1 matrix.

    `known`, of Y's shape, marks the cells that are labels at all: an archive article carries
    the editors' decisions on some tags only, and a cell nobody decided is left out of that
    label's regressions (both stages) while the article's text still counts towards the
    vocabulary. Without `known` (every cell known) fitting is exactly what it always was.

    Two stages per label. A logistic regression over the article's TF-IDF row says how much
    the whole article is about the topic; the same weights applied to every window of about a
    paragraph's length (counted in tokens, so outlets' paragraphing does not matter) find the
    strongest single thread. A second, two-input regression (article score, best window),
    fitted on out-of-fold first-stage scores, weighs the two: the guideline's "at least a
    paragraph or a clear thread". (A third input, the share of windows on topic, was tried and
    dropped: it added nothing in cross-validation and cost precision on real articles.)
    """

    def __init__(self, C: float = 8.0, min_df: int = 2, max_df: float = 0.8, max_features: int = 60000):
        self.C = C
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features

    def fit(self, texts: list[str], Y: np.ndarray, labels: list[str], known: np.ndarray | None = None):
        Y = np.asarray(Y)
        if Y.shape != (len(texts), len(labels)):
            raise ValueError(f"Y has shape {Y.shape}, expected ({len(texts)}, {len(labels)})")
        if known is not None:
            known = np.asarray(known, dtype=bool)
            if known.shape != Y.shape:
                raise ValueError(f"known has shape {known.shape}, expected {Y.shape}")
        self.vectorizer_ = TfidfVectorizer(
            analyzer=analyze,
            min_df=self.min_df,
            max_df=self.max_df,
            max_features=self.max_features,
            sublinear_tf=True,
            dtype=np.float32,
        )
        self.vectorizer_.fit(texts)
        self.classes_ = np.array(labels)
        self.feature_names_ = self.vectorizer_.get_feature_names_out()
        self.idf_ = self.vectorizer_.idf_.astype(np.float32)
        self._build_lookup()
        vectors = self.vectorize(texts)

        # second-stage inputs from first-stage models that never saw the article
        stacked = np.zeros((len(texts), len(labels), 2))
        folds = KFold(n_splits=min(STACK_FOLDS, len(texts)), shuffle=True, random_state=STACK_SEED)
        for train_index, test_index in folds.split(texts):
            coef, intercept = self._fit_first_stage(vectors.articles[train_index], Y[train_index], _rows(known, train_index))
            held_out = self.vectorize([texts[i] for i in test_index])
            stacked[test_index] = self._stage_inputs(held_out, np.ascontiguousarray(coef.T), intercept)
        self.coef_, self.intercept_ = self._fit_first_stage(vectors.articles, Y, known)
        self.coef_by_feature_ = np.ascontiguousarray(self.coef_.T)
        self.stage2_coef_ = np.zeros((len(labels), 2))
        self.stage2_intercept_ = np.zeros(len(labels))
        for j in range(len(labels)):
            rows = _known_rows(known, j)
            inputs, truth = (stacked[:, j, :], Y[:, j]) if rows is None else (stacked[rows, j, :], Y[rows, j])
            # unweighted: its output is a probability calibrated on out-of-fold scores
            stage2 = LogisticRegression(C=1.0, max_iter=1000).fit(inputs, truth)
            self.stage2_coef_[j] = stage2.coef_[0]
            self.stage2_intercept_[j] = stage2.intercept_[0]
        return self

    _DERIVED = ("_readable_lookup", "_token_lookup", "_bigram_lookup", "_window_cache")  # worked out from the fitted model on first use

    def __getstate__(self):
        """What a bundle stores: the fitted model, without the lookups derived from it."""
        state = super().__getstate__()
        return {key: value for key, value in state.items() if key not in self._DERIVED}

    def vectorize(self, texts: list[str]) -> Vectors:
        """Article and window TF-IDF rows for a batch, counted with a handful of numpy calls."""
        features, text_of, position, lengths = self._feature_occurrences(texts)
        n_texts = len(texts)
        lengths = np.asarray(lengths, dtype=np.int64)
        # window k covers tokens [k * half, k * half + WINDOW_TOKENS); the last runs to the end
        half = WINDOW_TOKENS // 2
        windows_per_text = np.maximum(1, -(-(lengths - WINDOW_TOKENS) // half) + 1)
        window_starts = np.concatenate([[0], np.cumsum(windows_per_text)[:-1]]).astype(np.int64)
        last = windows_per_text[text_of] - 1
        later = np.minimum(position // half, last)
        earlier = np.minimum(position // half - 1, last)
        both = earlier >= 0
        return Vectors(
            articles=self._tfidf(text_of, features, n_texts),
            window_of=np.concatenate([window_starts[text_of] + later, (window_starts[text_of] + earlier)[both]]),
            window_feature=np.concatenate([features, features[both]]),
            window_starts=window_starts,
            n_windows=int(windows_per_text.sum()),
        )

    def transform(self, texts: list[str]) -> sparse.csr_matrix:
        """Article TF-IDF rows, equal to `vectorizer_.transform(texts)` (a test holds them equal)."""
        return self.vectorize(texts).articles

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.scores(self.vectorize(texts))

    def scores(self, vectors: Vectors) -> np.ndarray:
        """Probability per label, (n_articles, n_labels)."""
        inputs = self._stage_inputs(vectors, self.coef_by_feature_, self.intercept_)
        logits = np.einsum("nlk,lk->nl", inputs, self.stage2_coef_) + self.stage2_intercept_
        return 1.0 / (1.0 + np.exp(-logits))

    def evidence(self, X: sparse.csr_matrix, row: int, label_index: int, limit: int = EVIDENCE_TERMS) -> list[str]:
        """The terms of article `row` of X that pushed hardest towards the label, as an editor
        reads reasons: content words and phrases (see `readable_evidence`)."""
        span = slice(X.indptr[row], X.indptr[row + 1])
        indices, weights = X.indices[span], X.data[span]
        contributions = weights * self.coef_[label_index, indices]
        order = np.argsort(-contributions)[:EVIDENCE_POOL]
        strongest = indices[order]
        readable, names = self._readable_features()
        reasons = strongest[(contributions[order] > 0) & readable[strongest]]
        return _without_repeats([names[feature] for feature in reasons.tolist()], limit)

    def _readable_features(self) -> tuple[np.ndarray, list[str]]:
        """`is_readable` of every vocabulary term, and the terms as a list of str, worked out once
        per loaded model (a bundle stores no such mask, so the rule can change without retraining)."""
        derived = getattr(self, "_readable_lookup", None)
        if derived is None:
            names = [str(name) for name in self.feature_names_]
            derived = self._readable_lookup = (np.fromiter(map(is_readable, names), dtype=bool, count=len(names)), names)
        return derived

    def _fit_first_stage(self, X: sparse.csr_matrix, Y: np.ndarray, known: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        coef, intercept = [], []
        for column in range(Y.shape[1]):
            rows = _known_rows(known, column)
            model = LogisticRegression(C=self.C, class_weight="balanced", solver="liblinear", max_iter=1000)
            if rows is None:
                model.fit(X, Y[:, column])
            else:
                model.fit(X[rows], Y[rows, column])
            coef.append(model.coef_[0])
            intercept.append(model.intercept_[0])
        return np.vstack(coef).astype(np.float32), np.asarray(intercept, dtype=np.float32)

    def _stage_inputs(self, vectors: Vectors, by_feature: np.ndarray, intercept: np.ndarray) -> np.ndarray:
        """(n_articles, n_labels, 2): the article's logit and its best window's logit.

        `by_feature` is the (n_features, n_labels) weight matrix, C-contiguous: a transposed
        view would be copied on every product.
        """
        article = np.asarray(vectors.articles @ by_feature) + intercept
        idf_squared, pushes_by_label = self._window_weights(by_feature)
        norms = np.sqrt(np.bincount(vectors.window_of, weights=idf_squared[vectors.window_feature], minlength=vectors.n_windows))
        norms[norms == 0] = 1.0
        window = np.column_stack(
            [np.bincount(vectors.window_of, weights=pushes[vectors.window_feature], minlength=vectors.n_windows) for pushes in pushes_by_label]
        ) / norms[:, None] + intercept
        best = np.maximum.reduceat(window, vectors.window_starts, axis=0)
        return np.stack([article, best], axis=2)

    def _window_weights(self, by_feature: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per feature, in float64: idf squared, and per label its weight x idf (a row per label).
        Worked out once per loaded model for its own weights: an occurrence then costs a lookup
        per label, not a gather of the whole row and a product."""
        cached = getattr(self, "_window_cache", None)
        if cached is not None and cached[0] is by_feature:
            return cached[1]
        idf = self.idf_.astype(np.float64)
        weights = (idf * idf, np.ascontiguousarray((by_feature * idf[:, None]).T))
        if by_feature is getattr(self, "coef_by_feature_", None):
            self._window_cache = (by_feature, weights)
        return weights

    def _feature_occurrences(self, texts: list[str]):
        """(feature, text index, token position) of every vocabulary n-gram, and token counts."""
        lookup = self.token_id_.get
        ids, lengths = [], []
        for text in texts:
            row_ids = list(map(lookup, tokenize_bytes(text), repeat(-1)))
            ids.extend(row_ids)
            lengths.append(len(row_ids))
        ids = np.asarray(ids, dtype=np.int64)
        text_of = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        position = np.arange(len(ids), dtype=np.int64) - starts[text_of]

        unigram_of, starts_bigram, ends_bigram = self._token_tables()  # an unknown word's id, -1, reads their last entry
        unigram = unigram_of[ids]
        keep = unigram >= 0
        features, texts_of, positions = [unigram[keep]], [text_of[keep]], [position[keep]]
        # only pairs whose words can start and end a vocabulary bigram are looked up
        can_pair, can_end = starts_bigram[ids], ends_bigram[ids]
        pairs = np.flatnonzero(can_pair[:-1] & can_end[1:] & (text_of[:-1] == text_of[1:]))
        keys = ids[pairs] * self.n_tokens_ + ids[pairs + 1]
        if len(keys) and len(self.bigram_keys_):
            bigram = self._bigram_table().find(keys)
            found = bigram >= 0
            features.append(bigram[found])
            texts_of.append(text_of[pairs[found]])
            positions.append(position[pairs[found]])
        return np.concatenate(features), np.concatenate(texts_of), np.concatenate(positions), lengths

    def _tfidf(self, rows: np.ndarray, features: np.ndarray, n_rows: int) -> sparse.csr_matrix:
        """Rows of sublinear tf times idf, scaled to unit length, from (row, feature) occurrences."""
        n_features = len(self.idf_)
        cell_keys = rows * n_features + features
        if n_rows * n_features < 2**31:  # 32-bit keys sort in about 60% of the time
            cell_keys = cell_keys.astype(np.int32)
        cells, counts = _counted(cell_keys)
        cell_rows, cell_features = cells // n_features, cells % n_features
        weights = ((np.log(counts) + 1.0) * self.idf_[cell_features]).astype(np.float32)
        norms = np.sqrt(np.bincount(cell_rows, weights=weights * weights, minlength=n_rows)).astype(np.float32)
        norms[norms == 0] = 1.0
        weights /= norms[cell_rows]
        indptr = np.searchsorted(cell_rows, np.arange(n_rows + 1))
        return sparse.csr_matrix((weights, cell_features, indptr), shape=(n_rows, n_features))

    def _token_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per word id: its unigram feature (-1 if none), whether it can start a bigram, whether it
        can end one; each with one more entry for an unknown word (id -1), so that a whole text's
        ids index them directly. Built once per loaded model."""
        tables = getattr(self, "_token_lookup", None)
        if tables is None:
            tables = self._token_lookup = (np.append(self.unigram_feature_, -1), np.append(self.starts_bigram_, False),
                                           np.append(self.ends_bigram_, False))
        return tables

    def _bigram_table(self) -> "IntegerTable":
        """The vocabulary's bigrams as a hash table, built once per loaded model (a bundle stores
        the sorted keys; a binary search cost about 90 ns per pair of words, a probe a third)."""
        table = getattr(self, "_bigram_lookup", None)
        if table is None:
            table = self._bigram_lookup = IntegerTable(self.bigram_keys_, self.bigram_feature_)
        return table

    def _build_lookup(self) -> None:
        """Token ids for every word in the vocabulary (keyed by bytes, as tokenize_bytes gives
        them); bigrams as sorted integer keys. What was derived from an earlier fit is dropped."""
        for name in self._DERIVED:
            self.__dict__.pop(name, None)
        self.token_id_: dict[bytes, int] = {}
        unigrams, bigrams = [], []
        for gram, feature in self.vectorizer_.vocabulary_.items():
            words = gram.encode("ascii").split(b" ")
            word_ids = [self.token_id_.setdefault(word, len(self.token_id_)) for word in words]
            (unigrams if len(words) == 1 else bigrams).append((word_ids, feature))
        self.n_tokens_ = len(self.token_id_)
        self.unigram_feature_ = np.full(self.n_tokens_, -1, dtype=np.int64)
        for (word_id,), feature in unigrams:
            self.unigram_feature_[word_id] = feature
        self.starts_bigram_ = np.zeros(self.n_tokens_, dtype=bool)
        self.ends_bigram_ = np.zeros(self.n_tokens_, dtype=bool)
        for (a, b), _ in bigrams:
            self.starts_bigram_[a] = True
            self.ends_bigram_[b] = True
        keys = np.array([a * self.n_tokens_ + b for (a, b), _ in bigrams], dtype=np.int64)
        order = np.argsort(keys)
        self.bigram_keys_ = keys[order]
        self.bigram_feature_ = np.array([feature for _, feature in bigrams], dtype=np.int64)[order]


def _counted(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(keys, return_counts=True)` in five numpy calls: for one article's few hundred
    keys, np.unique's own bookkeeping cost more than the sort."""
    keys = np.sort(keys)
    first = np.empty(len(keys), dtype=bool)
    first[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    return keys[starts], np.diff(starts, append=len(keys))


def _rows(known: np.ndarray | None, index: np.ndarray) -> np.ndarray | None:
    return None if known is None else known[index]


def _known_rows(known: np.ndarray | None, column: int) -> np.ndarray | None:
    """Indices of the rows whose label in `column` is known, or None when every row's is
    (nothing is then indexed, so a fully labeled corpus fits exactly as it always did)."""
    if known is None or known[:, column].all():
        return None
    return np.flatnonzero(known[:, column])


class IntegerTable:
    """A read-only map from non-negative int64 keys to int64 values, looked up a whole array at
    a time: each key has one home slot in an array (a quarter full at most, so most keys have it
    to themselves) and the few that found theirs taken are kept in a dict. A lookup is one
    vectorised probe, and a dict lookup for the keys whose home holds another key."""

    _EMPTY = -1
    _MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits of key x golden ratio

    def __init__(self, keys: np.ndarray, values: np.ndarray):
        keys, values = np.asarray(keys, dtype=np.int64), np.asarray(values, dtype=np.int64)
        self._bits = max(4, (4 * len(keys)).bit_length())
        self._keys = np.full(1 << self._bits, self._EMPTY, dtype=np.int64)
        self._values = np.full(1 << self._bits, -1, dtype=np.int64)
        home = self._home(keys)
        slots, first = np.unique(home, return_index=True)  # the first key to claim a slot keeps it
        self._keys[slots], self._values[slots] = keys[first], values[first]
        moved = np.ones(len(keys), dtype=bool)
        moved[first] = False
        self._overflow = dict(zip(keys[moved].tolist(), values[moved].tolist()))

    def find(self, keys: np.ndarray) -> np.ndarray:
        """The value of each key, -1 for a key the map does not hold."""
        keys = np.asarray(keys, dtype=np.int64)
        home = self._home(keys)
        held = self._keys[home]
        found = np.where(held == keys, self._values[home], -1)
        elsewhere = np.flatnonzero((held != keys) & (held != self._EMPTY))
        if len(elsewhere) and self._overflow:
            lookup = self._overflow.get
            found[elsewhere] = [lookup(key, -1) for key in keys[elsewhere].tolist()]
        return found

    def _home(self, keys: np.ndarray) -> np.ndarray:
        return ((keys.astype(np.uint64) * self._MULTIPLIER) >> np.uint64(64 - self._bits)).astype(np.intp)
