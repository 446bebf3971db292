"""Topic classifier: TF-IDF word uni- and bigrams into one logistic regression per label, with evidence.

Labels come from the corpus (`fit` takes the label names), never from code. TF-IDF rows are
L2-normalised, so a topic named once in a long story weighs little: the guideline asks for a
substantial thread, not a passing phrase.

Fitting uses scikit-learn's TfidfVectorizer; tagging uses lookup tables built from its
vocabulary, so a whole batch is counted with a handful of numpy calls instead of a Python
loop over every n-gram (a test holds the two transforms equal).
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

EVIDENCE_TERMS = 5
_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_COMBINING = re.compile(r"[\u0300-\u036f]")


def tokenize(text: str) -> list[str]:
    """Lower-cased, accent-folded word tokens ("Türkiye's" -> ["turkiye", "s"])."""
    text = text.lower()
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    return _TOKEN.findall(text)


def analyze(text: str) -> list[str]:
    """Unigrams and bigrams: the vectoriser's analyzer at fit time."""
    tokens = tokenize(text)
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]


class TopicClassifier(ClassifierMixin, BaseEstimator):
    """Multi-label: `fit(texts, Y, labels)` with Y an (n_articles, n_labels) 0/1 matrix."""

    def __init__(self, C: float = 8.0, min_df: int = 2, max_df: float = 0.8, max_features: int = 60000):
        self.C = C
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features

    def fit(self, texts: list[str], Y: np.ndarray, labels: list[str]):
        Y = np.asarray(Y)
        if Y.shape != (len(texts), len(labels)):
            raise ValueError(f"Y has shape {Y.shape}, expected ({len(texts)}, {len(labels)})")
        self.vectorizer_ = TfidfVectorizer(
            analyzer=analyze,
            min_df=self.min_df,
            max_df=self.max_df,
            max_features=self.max_features,
            sublinear_tf=True,
            dtype=np.float32,
        )
        X = self.vectorizer_.fit_transform(texts)
        self.classes_ = np.array(labels)
        self.estimators_ = []
        for column in range(len(labels)):
            estimator = LogisticRegression(C=self.C, class_weight="balanced", solver="liblinear", max_iter=1000)
            estimator.fit(X, Y[:, column])
            self.estimators_.append(estimator)
        # one (n_labels, n_features) matrix makes scoring a single sparse product
        self.coef_ = np.vstack([e.coef_[0] for e in self.estimators_]).astype(np.float32)
        self.intercept_ = np.array([e.intercept_[0] for e in self.estimators_], dtype=np.float32)
        self.feature_names_ = self.vectorizer_.get_feature_names_out()
        self.idf_ = self.vectorizer_.idf_.astype(np.float32)
        self._build_lookup()
        return self

    def transform(self, texts: list[str]) -> sparse.csr_matrix:
        """TF-IDF rows equal to `vectorizer_.transform(texts)`, counted for the whole batch at once."""
        token_id = self.token_id_
        ids, lengths = [], []
        for text in texts:
            row_ids = [token_id.get(token, -1) for token in tokenize(text)]
            ids.extend(row_ids)
            lengths.append(len(row_ids))
        n_rows, n_features = len(texts), len(self.idf_)
        ids = np.asarray(ids, dtype=np.int64)
        row_of = np.repeat(np.arange(n_rows, dtype=np.int64), lengths)

        known = ids >= 0
        unigram = np.full(len(ids), -1, dtype=np.int64)
        unigram[known] = self.unigram_feature_[ids[known]]
        keep = unigram >= 0
        features, rows = [unigram[keep]], [row_of[keep]]

        pairs = known[:-1] & known[1:] & (row_of[:-1] == row_of[1:])
        keys = ids[:-1][pairs] * self.n_tokens_ + ids[1:][pairs]
        if len(keys) and len(self.bigram_keys_):
            slot = np.minimum(np.searchsorted(self.bigram_keys_, keys), len(self.bigram_keys_) - 1)
            found = self.bigram_keys_[slot] == keys
            features.append(self.bigram_feature_[slot[found]])
            rows.append(row_of[:-1][pairs][found])

        cells, counts = np.unique(np.concatenate(rows) * n_features + np.concatenate(features), return_counts=True)
        cell_rows, cell_features = cells // n_features, cells % n_features
        weights = ((np.log(counts) + 1.0) * self.idf_[cell_features]).astype(np.float32)
        norms = np.sqrt(np.bincount(cell_rows, weights=weights * weights, minlength=n_rows)).astype(np.float32)
        weights /= norms[cell_rows]
        indptr = np.searchsorted(cell_rows, np.arange(n_rows + 1))
        return sparse.csr_matrix((weights, cell_features, indptr), shape=(n_rows, n_features))

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.scores(self.transform(texts))

    def scores(self, X: sparse.csr_matrix) -> np.ndarray:
        """Probability per label for already vectorised rows, (n_rows, n_labels)."""
        logits = np.asarray(X @ self.coef_.T) + self.intercept_
        return 1.0 / (1.0 + np.exp(-logits))

    def evidence(self, X: sparse.csr_matrix, row: int, label_index: int, limit: int = EVIDENCE_TERMS) -> list[str]:
        """The terms of article `row` of X that pushed hardest towards the label."""
        span = slice(X.indptr[row], X.indptr[row + 1])
        indices, weights = X.indices[span], X.data[span]
        contributions = weights * self.coef_[label_index, indices]
        order = np.argsort(-contributions)[:limit]
        return [str(self.feature_names_[indices[i]]) for i in order if contributions[i] > 0]

    def _build_lookup(self) -> None:
        """Token ids for every word in the vocabulary; bigrams as sorted integer keys."""
        self.token_id_: dict[str, int] = {}
        unigrams, bigrams = [], []
        for gram, feature in self.vectorizer_.vocabulary_.items():
            words = gram.split(" ")
            word_ids = [self.token_id_.setdefault(word, len(self.token_id_)) for word in words]
            (unigrams if len(words) == 1 else bigrams).append((word_ids, feature))
        self.n_tokens_ = len(self.token_id_)
        self.unigram_feature_ = np.full(self.n_tokens_, -1, dtype=np.int64)
        for (word_id,), feature in unigrams:
            self.unigram_feature_[word_id] = feature
        keys = np.array([a * self.n_tokens_ + b for (a, b), _ in bigrams], dtype=np.int64)
        order = np.argsort(keys)
        self.bigram_keys_ = keys[order]
        self.bigram_feature_ = np.array([feature for _, feature in bigrams], dtype=np.int64)[order]
