"""deploy/grafana-dashboard.json and deploy/prometheus-rules.yml against the real service: every
series their PromQL names is one a running ingress exports at /metrics after an event went
through, promtool accepts the rules and their unit tests pass, and the worker-liveness and
readiness series move when a worker stops."""

import json
import re
import shutil
import subprocess
import time

import pytest
import yaml

from .stack import ROOT, Stack

DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"
RULES = ROOT / "deploy" / "prometheus-rules.yml"
RULE_TESTS = ROOT / "tests" / "data" / "prometheus-rules.test.yml"
PROMQL_WORDS = {"sum", "max", "min", "avg", "count", "rate", "increase", "deriv", "histogram_quantile", "sort_desc", "by", "without",
                "and", "or", "unless", "on", "ignoring", "bool"}
PROMETHEUS_OWN = {"up"}  # written by Prometheus for every scrape target, not by the service
# what the issue asks the dashboard to show
WANTED = {"autotag_events_received_total", "autotag_events_rejected_total", "autotag_queue_depth", "autotag_end_to_end_seconds_bucket",
          "autotag_deliveries_ok_total", "autotag_deliveries_retried_total", "autotag_deliveries_dead_total",
          "autotag_feedback_decisions_total", "autotag_workers_alive", "autotag_ready"}


def series_in(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label values, matchers, ranges, grouping
    labels and PromQL's own words taken out)."""
    expr = re.sub(r'"[^"]*"', '""', expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    return set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*", expr)) - PROMQL_WORDS


def dashboard_exprs() -> list[str]:
    def walk(panels):
        for panel in panels:
            yield from (target["expr"] for target in panel.get("targets", []))
            yield from walk(panel.get("panels", []))

    return list(walk(json.loads(DASHBOARD.read_text())["panels"]))


def rule_exprs() -> list[str]:
    return [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def promtool(*args) -> subprocess.CompletedProcess:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: apt-get install prometheus (Debian's package has it; .ci/run installs it)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def scrape(stack) -> dict[str, str]:
    """/metrics as {series with labels: value}."""
    answer = stack.http.get("/metrics")
    assert answer.status_code == 200, answer.text
    return dict(line.rsplit(" ", 1) for line in answer.text.splitlines() if line and not line.startswith("#"))


def names(samples: dict[str, str]) -> set[str]:
    return {series.split("{", 1)[0] for series in samples}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("stack")).start()
    yield running
    running.stop()


def test_promtool_checks_the_rules():
    run = promtool("check", "rules", str(RULES))
    assert run.returncode == 0 and "SUCCESS: 5 rules found" in run.stdout, run.stdout + run.stderr


def test_the_alerts_fire_when_they_should_and_not_before():
    """promtool's unit tests: dead letters growing, a queue rising for 10 minutes, no worker."""
    run = promtool("test", "rules", str(RULE_TESTS))
    assert run.returncode == 0 and "SUCCESS" in run.stdout, run.stdout + run.stderr


def test_the_series_parser_sees_every_metric_and_nothing_else():
    assert series_in('histogram_quantile(0.99, max by (le) (rate(autotag_end_to_end_seconds_bucket[$__rate_interval])))') == \
        {"autotag_end_to_end_seconds_bucket"}
    assert series_in('max(autotag_queue_depth{queue=~".*autotag[.]tag"}) > 0 and max(increase(x_total[10m])) == 0') == \
        {"autotag_queue_depth", "x_total"}


def test_every_series_of_the_dashboard_and_the_rules_is_exported_by_a_running_ingress(stack):
    stack.publish("dash-1", 1, event_id="evt-dash-1", title="Warsaw signs contract for South Korean tanks",
                  body="Poland signed a contract for 180 K2 battle tanks from South Korea. Polish officials said the arms deal includes ammunition.")
    stack.cms.wait_for("dash-1")
    assert stack.feedback({"id": "fb-dash-1", "article": {"id": "dash-1", "revision": 1},
                           "decisions": [{"kind": "topic", "tag": "arms-deals", "decision": "accepted"}]}).status_code == 202
    exported = names(scrape(stack))
    in_dashboard = set().union(*map(series_in, dashboard_exprs()))
    in_rules = set().union(*map(series_in, rule_exprs()))
    assert WANTED <= in_dashboard, WANTED - in_dashboard
    assert in_dashboard - exported == set(), "the dashboard reads series /metrics does not have"
    assert in_rules - exported - PROMETHEUS_OWN == set(), "the rules read series /metrics does not have"
    assert all(series_in(expr) for expr in dashboard_exprs() + rule_exprs())


def test_workers_alive_and_ready_follow_the_running_service(stack):
    """Runs last in this module: it stops the stack's worker."""
    samples = scrape(stack)
    assert samples["autotag_workers_alive"] == "1" and samples["autotag_ready"] == "1"
    (worker,) = stack.workers
    worker.terminate()  # a warm shutdown takes the worker's stamp out at once
    worker.wait(timeout=30)
    deadline = time.monotonic() + 10
    while scrape(stack)["autotag_workers_alive"] != "0":
        assert time.monotonic() < deadline, "a stopped worker still counts as alive"
        time.sleep(0.2)
