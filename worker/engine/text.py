"""HTML and CMS debris -> clean title and story paragraphs, so tags come from the story only.

A CMS body carries more than the story: embedded teasers for other stories, "Follow us",
"CLICK HERE FOR MORE", photo captions and credits, syndication footers, comment widgets.
The cleaner works in two passes: markup is parsed with a real HTML parser (selectolax) and
page furniture is dropped by element; then every paragraph is judged as a line of text, since
most debris survives into plain-text bodies too.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_left
from dataclasses import dataclass

import ahocorasick
from selectolax.lexbor import LexborHTMLParser

# Elements that never hold story text.
_DROP_TAGS = "script, style, noscript, template, iframe, svg, nav, aside, footer, form, button, figure, figcaption, video, audio, object"
# class / id fragments that mark page furniture in common CMS themes.
_FURNITURE = re.compile(
    r"related|teaser|promo|newsletter|subscribe|social|share|sharing|advert|\bad-|sponsor|outbrain|taboola"
    r"|comment|caption|credit|byline|recommend|read-?more|read-?also|trending|most-?read|breadcrumb|cookie|paywall",
    re.IGNORECASE,
)
_BLOCK_TAG = re.compile(
    r"<(/?)(p|div|br|li|ul|ol|h[1-6]|blockquote|section|article|header|footer|tr|table|pre|hr|dd|dt)\b",
    re.IGNORECASE,
)
_LOOKS_LIKE_HTML = re.compile(
    r"<(p|div|br|span|a|h[1-6]|script|style|li|em|strong|b|i|figure|img|section|article|body|html|iframe)\b[^>]*>",
    re.IGNORECASE,
)

# Page furniture recognised by how the line starts (cheap: tried at position 0 only).
_DEBRIS_START = re.compile(
    r"[^\w©(]*(?:"  # leading bullets, dashes and spaces, once for all branches
    + "|".join(
        [
            r"(follow|like) us\b",
            r"download (the |our )?apps?\b",
            r"subscribe\b",
            r"(advertisement|sponsored( content)?|video embed|ad)\W*$",
            r"share (this|on|via)\b",
            r"(©|\(c\)\s*\d{4}|copyright\b)",
            r"\(?(reporting|additional reporting|writing) by\b",
            r"this (story|article) (was|has been) (updated|corrected|published|produced|syndicated)",
            r"(image|photo|picture|credit|source|caption|file photo)\s*:",
            r"file\s*[-–—:]\s",
            r"(\d+\s+)?(comments?|join the (conversation|discussion)|leave a (comment|reply)|show comments)\b",
            r"no comments\b",
            r"save for later\b",
            r"(print|email|tweet|linkedin|facebook|twitter|whatsapp|telegram|reddit)(\s+(print|email|tweet|linkedin|facebook|twitter|whatsapp|telegram|reddit|share|download))+\W*$",
        ]
    )
    + ")",
    re.IGNORECASE,
)
# Page furniture anywhere in the line, by the keyword that each pattern needs to match. A line is
# only searched with the patterns of the keywords the automaton found in it: trying one big
# alternation at every position of every such line cost more than the rest of the cleaner.
_DEBRIS_BY_KEYWORD = {
    "follow us": r"\bfollow us on\b",
    "download": r"\bdownload (our|the)\b.{0,40}\bapp\b",
    "click here": r"\bclick here\b",
    "sign up": r"\bsign up\b.{0,60}\b(newsletter|alerts|updates)\b",
    "newsletter": r"\bour (daily |weekly |free )?newsletter\b",
    "correction": r"to suggest a correction",
    "highlight the text": r"highlight the text and press",
    "audio is": r"\b(this )?audio is (created|generated)\b",
    "voice is": r"\bvoice is ai-generated\b",
    "listen to": r"\byou can now listen to\b|\blisten to this article\b",
    "rights reserved": r"\ball rights reserved\b",
    "editing by": r"\bediting by\b",
    "originally": r"\boriginally (published|appeared)\b.{0,40}\b(on|in|by)\b",
    "first published": r"\bfirst published\b.{0,40}\b(on|in|by)\b",
    "first appeared": r"\bfirst appeared\b.{0,40}\b(on|in|by)\b",
    "photo": r"\((ap|afp|reuters|epa|getty|xinhua|yonhap|anadolu)[^)]{0,20}photo|\bphoto\s*(:|credit\b|courtesy\b|by\b)"
    r"|\bap photo",
    "getty": r"\b(getty images|via getty)",
    "shutterstock": r"\bshutterstock",
    "reuters/": r"\breuters/",
    "/reuters": r"\b/reuters",
    "/ap": r"\b/ap\b",
    "epa-efe": r"\bepa-efe",
    "join our": r"\bjoin our (crew|community|mailing list)\b",
    "whatsapp": r"\bwhatsapp channel\b",
    "syndicated": r"\bsyndicated feed\b",
    "edited by": r"\bhas not been edited by\b",
    "http": r"^[^.!?]{0,60}https?://\S+\W*$",
}
# The one pattern with no keyword of its own: tried on every line that holds some keyword.
_DEBRIS_WITHOUT_KEYWORD = re.compile(r"\bafp via", re.IGNORECASE)
# All the patterns at once, for the rare line where a keyword test on line.lower() could miss a
# match: re.IGNORECASE also lets "İ" and "ı" match "i", and "ſ" match "s" (str.lower() does not).
_DEBRIS_ANYWHERE = re.compile("|".join([*_DEBRIS_BY_KEYWORD.values(), _DEBRIS_WITHOUT_KEYWORD.pattern]), re.IGNORECASE)
_CASE_TRAPS = ("\u0130", "\u0131", "\u017f")  # İ ı ſ
_DEBRIS_KEYWORDS = ahocorasick.Automaton()
for _keyword, _pattern in _DEBRIS_BY_KEYWORD.items():
    _DEBRIS_KEYWORDS.add_word(_keyword, re.compile(_pattern, re.IGNORECASE))
_DEBRIS_KEYWORDS.make_automaton()
# A short line announcing embedded links to other stories; what follows it is a teaser.
_TEASER_MARKER = re.compile(
    r"^\W*(related( content| articles?| stories| coverage| news| reading)?|read (also|more|next)|also read|see also"
    r"|recommended( for you| stories)?|more (from|on|in) [\w .'-]+|other topics of interest|trending( now| stories)?"
    r"|most (read|popular)|latest (news|stories)|editor'?s picks?|you (may|might) also like|don'?t miss|watch|"
    r"top stories|more stories|in other news)\W*:?\W*",
    re.IGNORECASE,
)
_MARKER_PREFIX = re.compile(r"^\W*(read (also|more)|also read|related|see also|watch|more)\s*[:|-]\s*\S", re.IGNORECASE)
_TERMINAL_MARKS = frozenset(".!?…:;")  # a sentence ends here, perhaps inside closing quotes
_CLOSERS = "'\"”’)]» "
_HAS_LETTER = re.compile(r"[^\W\d_]")
# The complements of a letter and of a Latin capital, in runs: counting what is left after removing
# them costs one match per run, not one match (and one string) per letter.
_NOT_LETTERS = re.compile(r"[\W\d_]+")
_NOT_UPPER = re.compile(r"[^A-ZÀ-ÖØ-Þ]+")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
# what str.isprintable() refuses among ASCII characters, "\n" aside
_ASCII_UNPRINTABLE = bytes([*range(32), 127]).replace(b"\n", b"")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_STOPWORDS = frozenset(
    "a an the of to in on for and or but with from by at as is are was were be been it its this that "
    "after before over new says said say will would could has have had not no".split()
)
_HEADLINE_MAX_WORDS = 25
# a scraper's date stamp glued before the first line ("date 2023-01-24 Polish Defense Minister ...")
_DATE_STAMP = re.compile(r"date \d{4}-\d{2}-\d{2}(?:\s+|$)", re.IGNORECASE)
_CREDIT_TITLE = re.compile(r"\W*(image|photo|picture|credit|caption|file photo)\s*:", re.IGNORECASE)
_LEAD_TITLE_PARAGRAPHS = 2  # a title that one of the first paragraphs repeats is the lead, not a headline,
_LEAD_TITLE_MIN_WORDS = 10  # when it is a sentence's length (a short headline may open the lead word for word)
_STANDFIRST_MAX_WORDS = 45


@dataclass(frozen=True)
class CleanArticle:
    """What the classifiers see: the title and the story's paragraphs, debris removed."""

    title: str
    paragraphs: tuple[str, ...]

    @property
    def body(self) -> str:
        return "\n\n".join(self.paragraphs)

    @property
    def text(self) -> str:
        return f"{self.title}\n\n{self.body}" if self.title else self.body


def clean_article(title: str, body: str) -> CleanArticle:
    """Clean one article's title and body (HTML or plain text)."""
    clean_title = _DATE_STAMP.sub("", _normalise_line(_strip_markup(title or "").replace("\n", " ")), count=1)
    lines = _markup_to_lines(body or "") if looks_like_html(body or "") else _text_to_lines(body or "")
    if lines and _DATE_STAMP.match(lines[0]):
        lines[0] = _DATE_STAMP.sub("", lines[0], count=1)
    if _CREDIT_TITLE.match(clean_title):
        clean_title = ""  # a photo credit or caption taken for the title
    paragraphs = drop_debris(lines, clean_title)
    if clean_title and _is_repeated_lead(clean_title, paragraphs):
        clean_title = ""
    return CleanArticle(clean_title, tuple(paragraphs))


def _is_repeated_lead(title: str, paragraphs: list[str]) -> bool:
    """Whether the title is the story's first paragraph (or its opening) that the body repeats: a
    scraper's title, not a headline. Kept, every country and term of the lead would count twice
    and look like a headline's."""
    if title.count(" ") + 1 < _LEAD_TITLE_MIN_WORDS:
        return False
    folded = title.casefold()
    return any(paragraph.casefold().startswith(folded) for paragraph in paragraphs[:_LEAD_TITLE_PARAGRAPHS])


def looks_like_html(body: str) -> bool:
    return _LOOKS_LIKE_HTML.search(body[:20000]) is not None


def drop_debris(lines: list[str], title: str = "") -> list[str]:
    """Keep the story's paragraphs: drop furniture lines, teaser headlines and their standfirsts."""
    kept: list[str] = []
    kept_by_word_count: dict[int, list[str]] = {}  # to find repeated paragraphs without folding every line
    title_words: set[str] | None = None  # found when the first headline-like line needs them
    after_marker = False          # the previous line announced a teaser block
    teaser_headline: set[str] = set()  # content words of a teaser headline just dropped
    suspects = _debris_patterns_by_line(lines)
    for index, line in enumerate(lines):
        if not _HAS_LETTER.search(line):
            continue
        if _DEBRIS_START.match(line) or (index in suspects and _has_debris_anywhere(line, suspects[index])):
            after_marker, teaser_headline = False, set()
            continue
        if _TEASER_MARKER.fullmatch(line) or _MARKER_PREFIX.match(line):
            after_marker, teaser_headline = True, set()
            continue
        word_count = line.count(" ") + 1  # lines arrive with white space folded to single spaces
        if _is_headline(line, word_count):
            line_words = _content_words(line)
            if title_words is None:
                title_words = _content_words(title)
            if title_words and _overlap(line_words, title_words) >= 0.7:
                continue  # the title repeated in the body
            # a headline-like line after the story has started is an embedded teaser
            teaser_headline = line_words if (kept or after_marker) else set()
            after_marker = after_marker and bool(teaser_headline)
            continue
        if teaser_headline and word_count <= _STANDFIRST_MAX_WORDS and (
            after_marker or (len(teaser_headline) >= 5 and _overlap(teaser_headline, _content_words(line)) >= 0.4)
        ):
            teaser_headline, after_marker = set(), False
            continue  # the teaser's one-sentence standfirst
        after_marker, teaser_headline = False, set()
        # a paragraph repeated (in any case) is dropped; case folding keeps every space, so only an
        # earlier line with as many words can be the same, and most lines have no such line
        earlier = kept_by_word_count.setdefault(word_count, [])
        if earlier:
            key = line.casefold()
            if any(key == other.casefold() for other in earlier):
                continue
        earlier.append(line)
        kept.append(line)
    return kept


def _debris_patterns_by_line(lines: list[str]) -> dict[int, set[re.Pattern[str]]]:
    """For each line holding debris keywords, the patterns of those keywords: one automaton pass
    over the whole text."""
    lowered = [line.lower() for line in lines]  # per line: lower() may change a line's length
    joined = "\n".join(lowered)
    if not joined:
        return {}
    ends, position = [], -1
    for line in lowered:
        position += len(line) + 1
        ends.append(position)
    patterns: dict[int, set[re.Pattern[str]]] = {}
    for end, pattern in _DEBRIS_KEYWORDS.iter(joined):
        patterns.setdefault(bisect_left(ends, end), set()).add(pattern)
    return patterns


def _has_debris_anywhere(line: str, patterns: set[re.Pattern[str]]) -> bool:
    """Whether a line holding debris keywords is furniture: searched with its keywords' patterns only,
    unless a character that re.IGNORECASE folds differently from str.lower() makes that unsafe."""
    if any(trap in line for trap in _CASE_TRAPS):
        return _DEBRIS_ANYWHERE.search(line) is not None
    return any(pattern.search(line) for pattern in patterns) or _DEBRIS_WITHOUT_KEYWORD.search(line) is not None


def _is_headline(line: str, word_count: int) -> bool:
    """A short line with no closing punctuation, or shouting in capitals: a headline, kicker or label."""
    if word_count <= _HEADLINE_MAX_WORDS and line.rstrip(_CLOSERS)[-1:] not in _TERMINAL_MARKS:
        return True
    if word_count < 3 or word_count > 60 or not line[:12].isupper():
        return False
    capitals, letters = len(_NOT_UPPER.sub("", line)), len(_NOT_LETTERS.sub("", line))
    return capitals >= 0.8 * letters


def _content_words(text: str) -> set[str]:
    """The words that say what a line is about, case-folded (short words and stop words left out)."""
    return {folded for word in _WORD.findall(text) if len(word) > 2 and (folded := word.casefold()) not in _STOPWORDS}


def _overlap(part: set[str], whole: set[str]) -> float:
    return len(part & whole) / len(part) if part else 0.0


def _markup_to_lines(markup: str) -> list[str]:
    tree = LexborHTMLParser(_BLOCK_TAG.sub(lambda m: "\n" + m.group(0), markup))
    for node in tree.css(_DROP_TAGS):
        node.decompose()
    for node in tree.css("[class], [id]"):
        marker = f"{node.attributes.get('class') or ''} {node.attributes.get('id') or ''}"
        if _FURNITURE.search(marker) and node.tag not in ("html", "body", "article", "main"):
            node.decompose()
    root = tree.body or tree.root
    text = root.text(separator="") if root is not None else ""
    return [line for line in map(_normalise_line, text.split("\n")) if line]


def _text_to_lines(text: str) -> list[str]:
    if "&" in text:
        text = html.unescape(text)
    if "  " not in text and _printable_but_newlines(text):
        # every line break but "\n" is unprintable, and no line has white space to fold (see _normalise_line)
        return [line for line in map(str.strip, text.split("\n")) if line]
    return [line for line in map(_normalise_line, text.splitlines()) if line]


def _printable_but_newlines(text: str) -> bool:
    """Whether the text is printable once its "\n" are taken out: most bodies are, and one test of
    the whole text is cheaper than one a line (for ASCII text, a byte deletion is cheaper still)."""
    if text.isascii():
        encoded = text.encode("ascii")
        return len(encoded.translate(None, _ASCII_UNPRINTABLE)) == len(encoded)
    return text.replace("\n", "").isprintable()


def _strip_markup(text: str) -> str:
    if "<" in text and looks_like_html(text):
        root = LexborHTMLParser(text).body
        return root.text(separator=" ") if root is not None else ""
    return html.unescape(text) if "&" in text else text


def _normalise_line(line: str) -> str:
    """Invisible characters removed, every run of (Unicode) white space folded to one space."""
    if "  " in line or not line.isprintable():  # tabs, exotic spaces and invisible characters fail isprintable
        return " ".join(line.translate(_INVISIBLE).split())
    return line.strip()
