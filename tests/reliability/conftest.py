"""The reliability suite (faults, load, hostile input): small enough for CI by default; the full
size with AUTOTAG_RELIABILITY=full. Each scenario records its figures with `figures.record`;
they are printed at the end of the run and, with AUTOTAG_RELIABILITY_OUT=FILE, written as JSON
lines (docs/RELIABILITY.md quotes a full run).

    AUTOTAG_RELIABILITY=full .venv/bin/python -m pytest tests/reliability -v
"""

from __future__ import annotations

import json
import os
import time

import pytest

FULL = os.environ.get("AUTOTAG_RELIABILITY", "").lower() == "full"
_RECORDED: list[dict] = []


class Scale:
    """`pick(reduced, full)`: the reduced figure in CI, the full one on request."""

    full = FULL

    @staticmethod
    def pick(reduced, full):
        return full if FULL else reduced


class Figures:
    def record(self, scenario: str, **values) -> None:
        entry = {"scenario": scenario, "size": "full" if FULL else "reduced", "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **values}
        _RECORDED.append(entry)
        out = os.environ.get("AUTOTAG_RELIABILITY_OUT")
        if out:
            with open(out, "a", encoding="utf-8") as stream:
                stream.write(json.dumps(entry) + "\n")


@pytest.fixture(scope="session")
def scale() -> Scale:
    return Scale()


@pytest.fixture(scope="session")
def figures() -> Figures:
    return Figures()


def pytest_terminal_summary(terminalreporter):
    if _RECORDED:
        terminalreporter.section("reliability figures")
        for entry in _RECORDED:
            terminalreporter.write_line(json.dumps(entry))
