"""Load: the ingress under a steady open-loop request rate from a second process on loopback
while two workers tag and call back, then the drain. Zero errors and every accepted event's
callback delivered are asserted; latency is only recorded (speed targets live in
bench/load.py, which runs the full 500 requests/s for 60 s and prints the figures)."""

from __future__ import annotations

from bench.load import run_load

from ..stack import Stack


def test_steady_load_then_drain(tmp_path, scale, figures):
    rate, seconds = scale.pick(100, 500), scale.pick(5, 60)
    stack = Stack(tmp_path, workers=2, loglevel="WARNING").start()
    try:
        result = run_load(stack, rate, seconds, drain_timeout=scale.pick(120, 600))
    finally:
        stack.stop()
    figures.record("load", rate=rate, seconds=seconds, requests=result["requests_sent"], achieved_rate=result["achieved_rate"],
                   p50_ms=result["latency_ms"]["p50"], p99_ms=result["latency_ms"]["p99"], max_ms=result["latency_ms"]["max"],
                   errors=result["errors"], queue_depth_at_load_end=result["queue_depth_at_load_end"],
                   drain_seconds=result["drain_seconds"], callbacks_delivered=result["callbacks_delivered"],
                   events_accepted=result["events_accepted"])
    assert result["requests_sent"] == int(rate * seconds)
    assert result["errors"] == {}, result["errors"]
    assert result["events_accepted"] == result["requests_sent"]
    assert result["callbacks_missing"] == 0 and result["callbacks_delivered"] == result["events_accepted"]
    assert result["cms_bad_signatures"] == 0
