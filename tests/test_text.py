"""Cleaning keeps the story's paragraphs and drops markup and CMS debris."""

import pytest

from worker.engine.text import clean_article

from .conftest import SEEDS

STORY = [
    "The defence ministry said on Monday it had signed a contract for 48 new howitzers, with deliveries due next year.",
    "Officials said the guns would replace ageing systems and that training would begin in the spring, according to the statement.",
]


def test_html_markup_scripts_styles_and_furniture_are_removed():
    body = f"""<html><head><style>p {{color: red}}</style><script>var x = "Iran sanctions";</script></head><body>
    <article><p>{STORY[0]}</p>
    <figure><img src="a.jpg"><figcaption>Soldiers load a shell in Kharkiv. (AP Photo/Jane Doe)</figcaption></figure>
    <aside class="related">Related: North Korea ships missiles to Russia</aside>
    <div class="newsletter-signup">Sign up for our newsletter</div>
    <p>{STORY[1].replace("statement", "<a href='#'>statement</a>")}</p>
    <div id="comments">12 comments</div></article></body></html>"""
    article = clean_article("<b>Army buys guns</b>", body)
    assert article.title == "Army buys guns"
    assert list(article.paragraphs) == STORY


def test_plain_text_debris_lines_are_dropped():
    body = "\n\n".join(
        [
            STORY[0],
            "FILE - A soldier walks past an artillery piece near Bakhmut, Ukraine. (AP Photo/John Smith)",
            "Related Content",
            "Iran hit with fresh sanctions over drone sales to Moscow",
            "The Treasury said the measures target six companies that ship drone engines.",
            "CLICK HERE FOR MORE FROM THE DAILY WIRE",
            "Follow us on Twitter and Facebook",
            STORY[1],
            "HALEY ATTACKS RIVAL OVER FOREIGN POLICY IN DEBATE",
            "© 2024 The Daily Wire. All rights reserved.",
            "(Reporting by Jane Roe; Editing by Sam Poe)",
            "Post a comment",
        ]
    )
    assert list(clean_article("Army buys guns", body).paragraphs) == STORY


def test_teaser_headline_mid_story_and_its_standfirst_are_dropped():
    body = "\n".join(
        [
            STORY[0],
            "Olympic committee admits neutral athletes from Russia and Belarus",
            "The Olympic committee said the neutral athletes from Russia and Belarus would compete under strict conditions.",
            STORY[1],
        ]
    )
    assert list(clean_article("", body).paragraphs) == STORY


def test_repeated_title_and_duplicate_paragraphs_are_dropped_but_a_long_lead_is_kept():
    title = "Army signs contract for 48 new howitzers"
    lead = "The army signed a contract for 48 new howitzers on Monday, officials said, in a deal that " + "also covers training and spare parts " * 5 + "."
    body = "\n".join([title, lead, STORY[1], STORY[1]])
    assert list(clean_article(title, body).paragraphs) == [lead, STORY[1]]


def test_a_title_that_is_the_lead_repeated_is_not_a_headline():
    # scrapers often take the first paragraph (or its opening) for the title: kept, every country
    # and term of the lead would count twice, and as a headline's
    lead = "The army signed a contract for 48 new howitzers on Monday, officials said, with deliveries next year."
    for title in (lead, lead[:60]):
        article = clean_article(title, "\n".join([lead, STORY[1]]))
        assert article.title == "" and list(article.paragraphs) == [lead, STORY[1]]
    headline = clean_article("Army buys 48 howitzers", "\n".join([lead, STORY[1]]))
    assert headline.title == "Army buys 48 howitzers"
    short = clean_article("The army signed a contract", "\n".join([lead, STORY[1]]))  # a headline the lead opens with
    assert short.title == "The army signed a contract"
    opinion = clean_article("COMMENT: Why the army bought howitzers", lead)
    assert opinion.title == "COMMENT: Why the army bought howitzers"


def test_a_scrapers_date_stamp_and_a_photo_credit_title_are_dropped():
    lead = "The army signed a contract for 48 new howitzers on Monday, officials said."
    article = clean_article("date 2023-01-24 Photo : YONHAP News", f"date 2023-01-24 {lead}\n{STORY[1]}")
    assert article.title == "" and list(article.paragraphs) == [lead, STORY[1]]
    stamped = clean_article(f"date 2023-01-24 {lead}", f"date 2023-01-24 {lead}\n{STORY[1]}")
    assert stamped.title == "" and list(stamped.paragraphs) == [lead, STORY[1]]
    # a date inside the story stays
    assert clean_article("", f"{lead} The date 2023-01-24 was set.").paragraphs == (f"{lead} The date 2023-01-24 was set.",)


def test_entities_and_odd_whitespace_are_normalised():
    article = clean_article("AT&amp;T", "Prices rose&nbsp;sharply\u200b in\u00a0 May, the agency said.")
    assert article.title == "AT&T"
    assert article.paragraphs == ("Prices rose sharply in May, the agency said.",)


def test_empty_and_debris_only_bodies_give_no_paragraphs():
    assert clean_article("", "").paragraphs == ()
    assert clean_article("", "Follow us on X\n\nAdvertisement\n\n© 2024 Wire").paragraphs == ()


@pytest.mark.skipif(not SEEDS, reason="../shared/seeds not present")
@pytest.mark.parametrize("seed", SEEDS, ids=lambda p: p.name)
def test_seed_debris_is_removed_and_the_story_kept(seed):
    article = clean_article("", seed.read_text(encoding="utf-8"))
    text = article.body
    for debris in ("IOC Admits", "HALEY USES", "Follow Us", "CLICK HERE", "©", "Related Content", "To suggest a correction",
                   "(AP Photo", "Post a Comment", "Download App", "syndicated feed"):
        assert debris not in text
    assert "Vladivostok" in text and "Shoigu" in text
    assert len(text) > 2000


def test_furniture_is_found_by_the_keywords_a_line_holds():
    """Lines are tried against the furniture of their own keywords; what has no keyword of its
    own ("AFP via") is tried on every suspect line, and a line with a character that case folding
    reads otherwise than lower() (the long s) against all of them."""
    from worker.engine.text import drop_debris

    def furniture(line):
        return drop_debris([line]) == []

    assert furniture("Sign up for our newsletter and breaking-news alerts every morning.")
    assert furniture("A soldier near Bakhmut. AFP via a pool, photo taken on Monday.")  # only "afp via" matches
    assert furniture("\u017fign up to the weekly newsletter for updates on the war.")  # the long s is an s to the pattern
    assert not furniture("The photo shows the newsletter editor who signed up in 2019.")
    assert not furniture("Troops advanced near Avdiivka on Tuesday, officials said.")
