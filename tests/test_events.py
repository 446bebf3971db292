"""The event contract and the settings file: refusals name the field or key."""

import json

import pytest

from worker.errors import ConfigError, EventError
from worker.service.events import parse_event
from worker.service.settings import load_settings

GOOD = {"id": "e1", "type": "article.updated", "occurred_at": "2026-11-22T10:00:00+01:00",
        "article": {"id": 7, "revision": 2, "title": "T", "body": "<p>B</p>", "url": "https://x/a", "language": "en"}}


def test_a_good_event_parses():
    event = parse_event(json.dumps(GOOD).encode(), max_body_bytes=10_000)
    assert event.article.revision == 2 and event.tags_wanted


def test_unpublish_needs_no_text():
    raw = json.dumps({**GOOD, "type": "article.unpublished", "article": {"id": 7, "revision": 3}}).encode()
    assert not parse_event(raw, max_body_bytes=10_000).tags_wanted


@pytest.mark.parametrize("change, field", [({"id": ""}, "id"), ({"id": "x" * 201}, "id"), ({"type": None}, "type"),
                                           ({"article": {"id": True, "revision": 1, "title": "", "body": "b"}}, "article.id"),
                                           ({"article": {"id": 1, "revision": -1, "title": "", "body": "b"}}, "article.revision"),
                                           ({"article": {"id": 1, "revision": 1, "title": 5, "body": "b"}}, "article.title"),
                                           ({"article": {"id": 1, "revision": 1, "title": "", "body": "b", "url": 5}}, "article.url")])
def test_refusals_name_the_field(change, field):
    with pytest.raises(EventError) as raised:
        parse_event(json.dumps({**GOOD, **change}).encode(), max_body_bytes=10_000)
    assert raised.value.field == field and raised.value.status == 422


def test_settings_from_toml_with_environment_overrides(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('redis_url = "redis://h:1/0"\n[[clients]]\nid = "n"\ntoken = "t"\ncallback_url = "https://cms.example/h"\n'
                    'callback_secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZg=="\n')
    settings = load_settings(path, environ={"AUTOTAG_REDIS_URL": "redis://other:2/1", "AUTOTAG_PORT": "9000"})
    assert settings.redis_url == "redis://other:2/1" and settings.port == 9000
    assert settings.client("n").callback_url == "https://cms.example/h" and not settings.client("n").allow_private_callback


@pytest.mark.parametrize("text, message", [
    ("redis_url = 5", "redis_url"),
    ("colour = 'blue'", "unknown key"),
    ('[[clients]]\nid = "n"\ntoken = "t"\ncallback_url = "ftp://x"\ncallback_secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZg=="', "callback_url"),
    ('[[clients]]\nid = "n"\ntoken = "t"\ncallback_url = "https://x"\ncallback_secret = "plain"', "callback_secret"),
    ('[[clients]]\nid = "n"\ntoken = "t"\ncallback_url = "https://x"\ncallback_secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZg=="\ncallback_connections = 0',
     "callback_connections"),
    ('[[clients]]\nid = "n"\ntoken = "t"\ncallback_url = "https://x"\ncallback_secret = "whsec_..."', "callback_secret is not a Standard Webhooks secret"),
    ('[[clients]]\nid = "n"\ntoken = "t"\ncallback_url = "https://x"\ncallback_secret = "whsec_"', "callback_secret"),
    ('[[clients]]\nid = "n"\ntoken = "t"\ncallback_url = "https://x"\ncallback_secret = "whsec_abc"', "callback_secret is too short"),
    ('[[clients]]\nid = "n"\ntoken = "t"\ncallback_url = "https://x"\ncallback_secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZg=="\n'
     'signing_secret = "whsec_..."', "signing_secret is not"),
    ("task_time_limit = 4000", "visibility_timeout"),
    ("port = 'eighty'", "port"),
    ("not toml [", "not valid TOML"),
])
def test_bad_settings_name_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path, environ={})
