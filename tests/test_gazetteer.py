"""The gazetteer finds every way of naming a country, on word boundaries, and reads homonyms in context."""

import pytest

from worker.engine.gazetteer import _PERSONISH, CountryMatcher, build_alias_table


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


# Fixed outputs of the matcher (checked against the pre-speed-up matcher): glued characters,
# overlapping and nested aliases, punctuation inside aliases, text edges, case and non-ASCII.
# "South China Morning Post" finds nothing: the leftmost-longest scan follows "South China S..."
# and does not go back for "China"; kept as it is, since the salience model was trained on it.
@pytest.mark.parametrize("text, expected", [
    ('Russia', [('Russia', 'RU', 0)]),
    ('Russia.', [('Russia', 'RU', 0)]),
    ('xRussia', []),
    ('Russiax', []),
    ('Russia_', []),
    ('_Russia', []),
    ('2Russia', []),
    ('Russia2', []),
    ('éRussia', []),
    ('Russiaé', []),
    ('Russia漢', []),
    ('RUSSIA and russia and Russia', [('Russia', 'RU', 22)]),
    ('North Korea', [('North Korea', 'KP', 0)]),
    ('North Koreans', [('North Koreans', 'KP', 0)]),
    ('South Korean', [('South Korean', 'KR', 0)]),
    ('Koreans', [('Koreans', 'KR', 0)]),
    ("the Kremlin's", [('the Kremlin', 'RU', 0)]),
    ('Kremlin', [('Kremlin', 'RU', 0)]),
    ('South China Morning Post', []),
    ('South China Sea', []),
    ('St. Petersburg', [('St. Petersburg', 'RU', 0)]),
    ("Côte d'Ivoire", [("Côte d'Ivoire", 'CI', 0)]),
    ("Cote d'Ivoire.", [("Cote d'Ivoire", 'CI', 0)]),
    ('U.S.-China', [('U.S.', 'US', 0), ('China', 'CN', 5)]),
    ('Washington, D.C.', [('Washington, D.C.', 'US', 0)]),
    ('KYIV, Ukraine', [('Ukraine', 'UA', 6)]),
    ('Kyiv—Moscow', [('Kyiv', 'UA', 0), ('Moscow', 'RU', 5)]),
    ('Papua New Guinean', [('Papua New Guinean', 'PG', 0)]),
    ('New Guinea', []),
    ('Bosnia and Herzegovina', [('Bosnia and Herzegovina', 'BA', 0)]),
    ('Ukrainians', [('Ukrainians', 'UA', 0)]),
    ("Ukraine's", [('Ukraine', 'UA', 0)]),
    ('Ukraine’s', [('Ukraine', 'UA', 0)]),
    ('(Israel)', [('Israel', 'IL', 1)]),
    ('"Iran"', [('Iran', 'IR', 1)]),
    ('Iran-Iraq', [('Iran', 'IR', 0), ('Iraq', 'IQ', 5)]),
    ('IranIraq', []),
    ('Türkiye', [('Türkiye', 'TR', 0)]),
    ('Turkiye', [('Turkiye', 'TR', 0)]),
    ('al-Sharaa', [('al-Sharaa', 'SY', 0)]),
    ('Bashar al-Sharaa', [('al-Sharaa', 'SY', 7)]),
    ('el-Sisi', [('el-Sisi', 'EG', 0)]),
    ('Sisi', [('Sisi', 'EG', 0)]),
    ('the Netherlands', [('the Netherlands', 'NL', 0)]),
    ('Netherlands', [('Netherlands', 'NL', 0)]),
    ('the White House', [('the White House', 'US', 0)]),
    ('White House', [('White House', 'US', 0)]),
    ('Michael Jordan', []),
    ('Air Jordan', []),
    ('Jordan', [('Jordan', 'JO', 0)]),
    ('Jordan River', []),
    ('the Gulf of Mexico', []),
    ('New Mexico', [('New Mexico', 'US', 0)]),
    ('Mexico City', [('Mexico City', 'MX', 0)]),
])
def test_matcher_outputs_on_edge_cases(matcher, text, expected):
    assert [(m.alias, m.code, m.start) for m in matcher.find(text)] == expected


def test_every_alias_is_found_alone_and_never_glued_to_a_word_character(matcher):
    table = build_alias_table()
    for alias, code, kind in table:
        if kind != "ignore" and alias not in _PERSONISH:
            assert [(m.alias, m.code, m.start, m.end) for m in matcher.find(f"({alias})")] == [(alias, code, 1, 1 + len(alias))]
        for glue in ("x", "7", "_", "é"):
            assert not any(m.alias == alias for m in matcher.find(glue + alias) + matcher.find(alias + glue))
