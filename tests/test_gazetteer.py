"""The gazetteer finds every way of naming a country, on word boundaries, and reads homonyms in context."""

import pytest

from worker.engine.gazetteer import CountryMatcher, build_alias_table


@pytest.fixture(scope="module")
def matcher():
    return CountryMatcher(build_alias_table())


def codes(matcher, text):
    return [m.code for m in matcher.find(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Talks between the DPRK and the Kremlin", ["KP", "RU"]),
        ("Pyongyang sent shells; the Pentagon said", ["KP", "US"]),
        ("Ukrainian forces near Bakhmut", ["UA", "UA"]),
        ("Israelis and Palestinians", ["IL", "PS"]),
        ("Türkiye and Turkey", ["TR", "TR"]),
        ("Seoul and South Korea and North Korea", ["KR", "KR", "KP"]),
        ("the UAE and Saudi Arabia", ["AE", "SA"]),
        ("Kinshasa and Brazzaville", ["CD", "CG"]),
        ("Hong Kong and Beijing", ["HK", "CN"]),
    ],
)
def test_names_short_forms_demonyms_capitals_and_metonyms(matcher, text, expected):
    assert codes(matcher, text) == expected


def test_matches_respect_word_boundaries_and_longest_alias(matcher):
    assert codes(matcher, "Indiana and Omaha and Romanians") == ["US", "RO"]
    assert codes(matcher, "New Mexico and Papua New Guinea") == ["US", "PG"]
    assert codes(matcher, "the Indian Ocean and Latin America") == []


def test_people_named_like_countries_are_not_countries(matcher):
    assert codes(matcher, "Michael Jordan met Jordan Henderson.") == []
    assert codes(matcher, "Chad Johnson scored twice.") == []
    assert codes(matcher, "King Abdullah of Jordan flew to Chad.") == ["JO", "TD"]


def test_georgia_the_us_state_is_read_from_context(matcher):
    assert codes(matcher, "Voters in Atlanta, Georgia, lined up early.") == ["US", "US"]
    assert codes(matcher, "Protesters in Tbilisi said Georgia must stay on course for the EU.") == ["GE", "GE"]
    assert codes(matcher, "Halve four ripe Georgia peaches and grill them.") == ["US"]  # a recipe, not the Caucasus
    assert codes(matcher, "Farmers say this year's Georgia peach crop is the best in a decade.") == ["US"]


def test_turkey_the_bird_and_niger_the_nigerian_state(matcher):
    assert codes(matcher, "Turkey prices rose before Thanksgiving.") == []
    assert codes(matcher, "Tinubu won Kano, Niger and Kwara in Nigeria's election.") == ["NG", "NG", "NG", "NG"]
    assert codes(matcher, "Niger's junta in Niamey expelled the envoy.") == ["NE", "NE"]


def test_african_union_is_not_australia(matcher):
    assert codes(matcher, "The AU summit opened in Addis Ababa.") == ["ET"]


def test_alias_table_is_deterministic_and_curated_rows_win():
    table = build_alias_table()
    assert table == build_alias_table()
    aliases = {alias: (code, kind) for alias, code, kind in table}
    assert aliases["Congo"] == ("CD", "short")
    assert aliases["Kremlin"] == ("RU", "metonym")
    assert "Hamilton" not in aliases  # a denied city name: a person more often than a place
