"""Streaming JSONL input: one line at a time, bounded in memory, each line checked for UTF-8."""

from __future__ import annotations

import json
from typing import BinaryIO, Iterator

from .errors import InputError


def read_lines(stream: BinaryIO, max_bytes: int) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, decoded line or None, problem or None) for each non-blank line; memory bounded."""
    line_no = 0
    while True:
        raw = stream.readline(max_bytes + 1)
        if not raw:
            return
        line_no += 1
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the oversized line
                raw = stream.readline(1 << 20)
            yield line_no, None, f"line is longer than {max_bytes:,} bytes"
            continue
        if not raw.strip():
            continue
        try:
            yield line_no, raw.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            yield line_no, None, f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}"


def read_records(stream: BinaryIO, max_bytes: int) -> Iterator[tuple[int, object, InputError | None]]:
    """(line number, parsed JSON value or None, the line's InputError or None) per non-blank line."""
    for line_no, text, problem in read_lines(stream, max_bytes):
        if problem:
            yield line_no, None, InputError(problem, line_no=line_no)
            continue
        try:
            yield line_no, json.loads(text), None
        except json.JSONDecodeError as exc:
            yield line_no, None, InputError(f"malformed JSON: {exc.msg} at column {exc.colno}", line_no=line_no)
