"""Nobody gets in: tokens and signatures at the ingress, callback targets that would reach inside
the network (SSRF), and a model bundle that is not the one that was shipped. Each runs against
the real processes; the unit-level cases live in test_delivery.py and test_artifacts.py."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from worker.engine.artifacts import MANIFEST, default_bundle_path
from worker.service.delivery import sign

from ..stack import ROOT, Stack, new_secret
from .test_faults import BODY, wait_until

OTHER_TOKEN = "other-newsrooms-token-0123456789"
METADATA_URL = "http://169.254.169.254/latest/meta-data/"


def event(event_id: str, article_id: str = "sec-1") -> bytes:
    return json.dumps({"id": event_id, "type": "article.published", "occurred_at": "2026-11-22T10:00:00Z",
                       "article": {"id": article_id, "revision": 1, "title": "Tanks for Warsaw", "body": BODY}}).encode()


def test_tokens_and_signatures_are_checked_and_secrets_never_logged(tmp_path, figures):
    """Wrong token, another client's token naming this client, unsigned, forged and stale
    signatures: all 401, each refusal logged, no token or secret in the log; a signed event
    sent twice is queued once."""
    other = f'[[clients]]\nid = "metro"\ntoken = "{OTHER_TOKEN}"\ncallback_url = "https://cms.metro.example/hooks"\ncallback_secret = "{new_secret()}"\n'
    stack = Stack(tmp_path, signing=True, loglevel="WARNING", extra_config=other).start()
    try:
        raw = event("sec-evt-1")
        good = sign(stack.signing_secret, "m-good", raw.decode())
        refusals = {
            "wrong token": stack.post_raw(raw, headers=good, token="guessed-token"),
            "no token": stack.http.post("/v1/events", content=raw, headers={"content-type": "application/json", **good}),
            "other client's token with this client's id": stack.post_raw(raw, headers={**good, "x-autotag-client": "newsroom"}, token=OTHER_TOKEN),
            "this client's token with another client's id": stack.post_raw(raw, headers={**good, "x-autotag-client": "metro"}),
            "unsigned": stack.post_raw(raw, signed=False),
            "forged signature": stack.post_raw(raw, headers=sign(new_secret(), "m-forged", raw.decode())),
            "replayed outside the tolerance": stack.post_raw(
                raw, headers=sign(stack.signing_secret, "m-old", raw.decode(), now=datetime.now(timezone.utc) - timedelta(minutes=10))),
            "signature of another body": stack.post_raw(event("sec-evt-2"), headers=good),
        }
        statuses = {name: answer.status_code for name, answer in refusals.items()}
        assert set(statuses.values()) == {401}, statuses
        first, again = stack.post_raw(raw, headers=good), stack.post_raw(raw, headers=good)
        assert (first.json()["status"], again.json()["status"]) == ("queued", "duplicate")
        stack.cms.wait_for("sec-1")

        logged = (tmp_path / "ingress.log").read_text()
        assert logged.count("refused") >= len(refusals) - 1, logged  # each refusal leaves a line
        for secret in (stack.token, OTHER_TOKEN, "guessed-token", stack.signing_secret, stack.signing_secret.removeprefix("whsec_"),
                       stack.cms.secret.removeprefix("whsec_")):
            assert secret not in logged
        figures.record("auth-and-signatures", refused=len(refusals), all_401=True, secrets_in_log=0, signed_replay_queued_once=True)
    finally:
        stack.stop()


def test_callbacks_never_reach_private_targets_or_follow_redirects(tmp_path, figures):
    """A client whose callback URL is the cloud metadata address, a loopback address, or a name
    that resolves to loopback, without `allow_private_callback`: the delivery is dead, with the
    reason, and no connection is made. A CMS that answers with a redirect to such an address is
    not followed."""
    targets = {"metadata": METADATA_URL, "loopback": "http://127.0.0.1:9/hooks", "ipv6-loopback": "http://[::1]:9/hooks",
               "private": "http://10.20.30.40/hooks", "name-to-loopback": "http://localhost:9/hooks"}
    clients = "".join(f'[[clients]]\nid = "{name}"\ntoken = "token-{name}-0123456789"\ncallback_url = "{url}"\n'
                      f'callback_secret = "{new_secret()}"\n' for name, url in targets.items())
    stack = Stack(tmp_path, loglevel="WARNING", extra_config=clients).start()
    try:
        for name in targets:
            assert stack.post_raw(event(f"ssrf-{name}", f"ssrf-{name}"), token=f"token-{name}-0123456789").status_code == 202
        dead = wait_until(lambda: (lambda d: d if len(d) == len(targets) else None)(
            {r["client"]: r for r in stack.ledger.listing("dead") if r["client"] in targets}), 30, "every private target's dead letter")
        for name, record in dead.items():
            assert "non-public" in record["last_error"] and int(record["attempts"]) == 1, (name, record)

        stack.cms.respond["ssrf-redirect"] = (302, {"location": METADATA_URL})
        assert stack.publish("ssrf-redirect", 1, body=BODY).status_code == 202
        redirected = wait_until(lambda: [r for r in stack.ledger.listing("dead") if r["article"] == "ssrf-redirect"], 30, "the redirect's dead letter")
        assert "302" in redirected[0]["last_error"]
        assert len(stack.cms.for_article("ssrf-redirect")) == 1  # asked once, never followed
        figures.record("ssrf", refused_targets=sorted(targets), redirect_followed=False, connections_to_private_targets=0)
    finally:
        stack.stop()


class _Booby:
    """Unpickling this writes a marker file: proof that a pickle was loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_tampered_or_mismatched_bundle_stops_the_worker_at_start(tmp_path, figures):
    """A pickle replaced by one that would run code when loaded, and a manifest for other library
    versions: `autotag worker` exits at once with a message naming the problem, and the pickle is
    never loaded."""
    stack = Stack(tmp_path, workers=0)
    try:
        outcomes = {}
        for case in ("tampered", "other-versions"):
            bundle = shutil.copytree(default_bundle_path(), tmp_path / case)
            marker = tmp_path / f"{case}-unpickled"
            if case == "tampered":
                with open(bundle / "topics.joblib", "wb") as handle:
                    pickle.dump(_Booby(str(marker)), handle)
            else:
                manifest = json.loads((bundle / MANIFEST).read_text())
                manifest["libraries"]["scikit-learn"] = "0.24.2"
                (bundle / MANIFEST).write_text(json.dumps(manifest))
            started = time.monotonic()
            run = subprocess.run([sys.executable, "-m", "worker.cli", "worker", "--concurrency", "1"], cwd=ROOT, timeout=120,
                                 env={**stack.env, "AUTOTAG_MODEL": str(bundle)}, capture_output=True, text=True)
            outcomes[case] = {"exit": run.returncode, "seconds": round(time.monotonic() - started, 1), "message": run.stderr.strip()[-300:]}
            assert run.returncode != 0
            assert ("topics.joblib" if case == "tampered" else "scikit-learn 0.24.2") in run.stderr
            assert "Traceback" not in run.stderr
            assert not marker.exists()
        figures.record("model-integrity", **{case: {k: v for k, v in o.items() if k != "message"} for case, o in outcomes.items()},
                       pickles_loaded=0)
    finally:
        stack.stop()
