"""Re-tagging an archive: stream an export, tag it in chunks, keep every editor's decision, and
report what would change (a dry run) before anything is written back.

Input lines are an event's `article` fields plus, optionally, the tags the CMS holds now:

    {"id": "a-42", "revision": 3, "title": "...", "body": "...",
     "current_tags": {"topics": ["sanctions", {"tag": "arms-deals", "by": "editor"}],
                      "regions": [{"code": "RU", "by": "model"}],
                      "removed_by_editor": {"topics": ["ukraine-front"], "regions": ["UA"]}}}

A tag an editor set ("by": "editor") stays set, and a tag an editor removed stays removed,
whatever the model now says; the result says which decisions it kept.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..engine.archive import ArchiveLine, read_archive
from ..engine.decisions import KINDS, NO_DECISIONS, Decisions, apply_decisions
from ..engine.tagging import Tagger, country_names
from ..errors import InputError
from ..service.decision_store import DecisionStore

CHUNK_SIZE = 200
STORY_BLOCK = 2000  # a local run looks for a story's versions within this many consecutive articles
LOCAL_GROUP = 50  # a local run delivering through the service posts this many callbacks between looks at Ctrl-C

@dataclass
class Summary:
    """Per tag, how many articles gain or lose it; and counts for the run."""

    articles: int = 0
    bad_lines: int = 0
    changed: int = 0
    gains: Counter = field(default_factory=Counter)
    losses: Counter = field(default_factory=Counter)
    editor_kept: int = 0
    superseded: int = 0  # callbacks not sent: the service has seen a newer revision, or an unpublish
    undelivered: int = 0  # callbacks left on the service's retry schedule (retrying or dead)

    def as_dict(self) -> dict:
        tags = sorted(set(self.gains) | set(self.losses))
        return {"articles": self.articles, "bad_lines": self.bad_lines, "changed": self.changed, "editor_decisions_kept": self.editor_kept,
                "superseded": self.superseded, "undelivered": self.undelivered,
                "per_tag": {tag: {"gain": self.gains[tag], "lose": self.losses[tag]} for tag in tags}}


def chunks(lines: Iterator[ArchiveLine], size: int = CHUNK_SIZE) -> Iterator[list[ArchiveLine]]:
    chunk = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def retag_chunk(tagger: Tagger, chunk: list[ArchiveLine], editors: EditorMemory | None = None, stories: str = "shared") -> list[dict]:
    """Tag a chunk as one batch, versions of one story within it given one tag set (`stories`
    mode), then apply the editors' decisions (the export's marks, over those the service
    remembers from feedback when `editors` is given); one result per line."""
    results = tagger.tag_many([line.article for line in chunk], stories=stories)
    remembered = editors.decisions(chunk, results) if editors else [NO_DECISIONS] * len(chunk)
    return [apply_editor_decisions(line, result, decisions) for line, result, decisions in zip(chunk, results, remembered)]


@dataclass(frozen=True)
class EditorMemory:
    """The decisions the service remembers for one client's articles (from `/v1/feedback`).
    `remember`: also keep the new results as the scores later decisions are judged against;
    only when the results reach the CMS (not in a dry run)."""

    store: DecisionStore
    client_id: str
    remember: bool

    def decisions(self, chunk: list[ArchiveLine], results: list[dict]) -> list[Decisions]:
        if self.remember:
            return self.store.exchange(self.client_id, [(line.article.id, line.revision, result) for line, result in zip(chunk, results)])
        return self.store.decisions_for_many(self.client_id, [line.article.id for line in chunk])


def apply_editor_decisions(line: ArchiveLine, result: dict, remembered: Decisions = NO_DECISIONS) -> dict:
    """The model's tags with the editors' decisions applied (those the service remembers from
    feedback, overridden by the export's own marks) and said; plus the change against what the
    CMS holds now."""
    result, kept = apply_decisions(dict(result, revision=line.revision), remembered.overridden_by(line.decisions()))
    changes = {}
    for kind, key in KINDS:
        now = {t[key] for t in result[kind]}
        before = set(line.current[kind])
        changes[kind] = {"added": sorted(now - before), "removed": sorted(before - now)}
    result["changes"] = changes
    result["editor_kept"] = kept
    return result


def add_to_summary(summary: Summary, result: dict) -> None:
    summary.articles += 1
    changed = False
    for kind, _ in KINDS:
        for value in result["changes"][kind]["added"]:
            summary.gains[value] += 1
            changed = True
        for value in result["changes"][kind]["removed"]:
            summary.losses[value] += 1
            changed = True
        summary.editor_kept += len(result["editor_kept"][kind]["set"]) + len(result["editor_kept"][kind]["removed"])
    summary.changed += changed


def change_entry(line: ArchiveLine, result: dict) -> str | None:
    """The per-article line of changes.jsonl: tags added and removed, editor decisions kept, the
    tags before (what the CMS holds) and after (None when the article changes nothing and no decision was needed)."""
    touched = any(result["changes"][kind][side] for kind, _ in KINDS for side in ("added", "removed")) or any(
        result["editor_kept"][kind][side] for kind, _ in KINDS for side in ("set", "removed"))
    if not touched:
        return None
    return json.dumps({"id": result["id"], "line": line.line_no, "changes": result["changes"], "editor_kept": result["editor_kept"],
                       "before": {kind: sorted(line.current[kind]) for kind, _ in KINDS},
                       "after": {kind: [t[key] for t in result[kind]] for kind, key in KINDS}}, ensure_ascii=False)


def format_summary(summary: Summary, delivered: bool = False) -> str:
    """The run's table; `delivered`: the results went to the CMS (said in the past tense), else
    nothing was written back (a dry run, --no-callback: what would change)."""
    outcome = f"and sent to the CMS, {summary.changed} changed" if delivered else f"{summary.changed} would change"
    lines = [f"{summary.articles} articles re-tagged{',' if not delivered else ''} {outcome}, {summary.bad_lines} bad lines skipped, "
             f"{summary.editor_kept} editor decisions kept", "", f"{'tag':<18}{'gain':>8}{'lose':>8}"]
    rows = ordered_tags(summary.as_dict()["per_tag"])
    width = max([18] + [len(name) + 2 for _, name, _ in rows])
    lines[-1] = f"{'tag':<{width}}{'gain':>8}{'lose':>8}"
    for _, name, counts in rows:
        lines.append(f"{name:<{width}}{counts['gain']:>8}{counts['lose']:>8}")
    if not summary.gains and not summary.losses:
        lines.append("(no tag changes)")
    if summary.superseded:
        lines.append(f"{summary.superseded} callbacks not sent: the service has a newer revision of the article, or it was unpublished")
    if summary.undelivered:
        lines.append(f"{summary.undelivered} callbacks wait on the service's retry schedule (see: autotag deliveries)")
    return "\n".join(lines)


def ordered_tags(per_tag: dict[str, dict]) -> list[tuple[str, str, dict]]:
    """(tag, shown name, counts) in the order of the dry run's table and report.html: topics
    first, then countries, each most changed first, ties by name; a country shown by the name
    editors know it by (South Korea (KR)), not its code. A tag that is an ISO country code is a
    country (topic labels are lower-case slugs)."""
    names = country_names()

    def key(item):
        tag, counts = item
        is_country = tag in names
        return (is_country, -(counts["gain"] + counts["lose"]), (names[tag] if is_country else tag).casefold(), tag)

    return [(tag, f"{names[tag]} ({tag})" if tag in names else tag, counts) for tag, counts in sorted(per_tag.items(), key=key)]


# --- a local run: in-process, no broker (small archives, testing) -------------------------

@dataclass
class LocalRun:
    """A resumable in-process run. Its directory holds state.json (the last line fully handled,
    and the options), delivered.txt (ids delivered since that checkpoint), changes.jsonl (per
    article, the tags added and removed and the editor decisions kept) and, at the end,
    report.json. An interrupted run continues where it stopped and never delivers twice."""

    run_id: str
    directory: Path
    input_path: Path
    processed_line: int = 0
    options: dict = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path, input_path: Path, options: dict) -> "LocalRun":
        run = cls(secrets.token_hex(6), root / "retag", input_path.resolve(), 0, options)
        run.directory = root / "retag" / run.run_id
        run.directory.mkdir(parents=True)
        run.save()
        return run

    @classmethod
    def load(cls, root: Path, run_id: str) -> "LocalRun":
        directory = root / "retag" / run_id
        try:
            state = json.loads((directory / "state.json").read_text())
        except FileNotFoundError as exc:
            raise InputError(f"no retag run {run_id!r} under {root / 'retag'}") from exc
        return cls(run_id, directory, Path(state["input"]), state["processed_line"], state["options"])

    def save(self) -> None:
        temporary = self.directory / "state.json.tmp"
        temporary.write_text(json.dumps({"input": str(self.input_path), "processed_line": self.processed_line, "options": self.options}))
        os.replace(temporary, self.directory / "state.json")

    def delivered(self) -> set[str]:
        path = self.directory / "delivered.txt"
        return set(path.read_text().split()) if path.exists() else set()

    def mark_delivered(self, message_id: str) -> None:
        with open(self.directory / "delivered.txt", "a") as handle:
            handle.write(message_id + "\n")

    def checkpoint(self, line_no: int) -> None:
        self.processed_line = line_no
        self.save()
        (self.directory / "delivered.txt").unlink(missing_ok=True)


def run_local(run: LocalRun, tagger: Tagger, *, client=None, rate: float | None, out, errors_out, max_body_bytes: int,
              progress: bool, timeout: float = 10.0, editors: EditorMemory | None = None, stories: str = "shared",
              service=None) -> Summary:
    """Stream the run's input from its checkpoint: tag in chunks (of STORY_BLOCK articles when
    stories are found, so that versions near each other in the export meet), keep editor
    decisions, write results to `out` (if given) and deliver them to `client` (unless None: a
    dry run). With `service` (a Runtime on the service's Redis) the callbacks go through its
    ledger, under the same revision rules and post lease as live ones; without it (no Redis
    configured: no live revisions exist to consult) they are posted directly."""
    from ..service.delivery import CallbackSession, post_callback
    from ..service.ledger import delivery_id

    summary = Summary()
    session = CallbackSession() if client else None
    delivered = run.delivered()
    pace = Pace(rate)
    errors: list = []
    with open(run.input_path, "rb") as stream, _progress_bar(run.input_path, progress) as bar, _StopOnInterrupt() as stop:
        lines = (line for line in read_archive(stream, max_body_bytes=max_body_bytes, errors=errors) if line.line_no > run.processed_line)
        for chunk in chunks(lines, CHUNK_SIZE if stories == "off" else STORY_BLOCK):
            changes = open(run.directory / "changes.jsonl", "a", encoding="utf-8")
            results = retag_chunk(tagger, chunk, editors, stories)
            for result, line in zip(results, chunk):
                add_to_summary(summary, result)
                entry = change_entry(line, result)
                if entry:
                    changes.write(entry + "\n")
                if out is not None:
                    out.write(json.dumps(result, ensure_ascii=False) + "\n")
                if client is not None and service is None:
                    message_id = delivery_id(client.id, f"retag-{run.run_id}-{result['id']}")
                    if message_id not in delivered:
                        pace.wait()
                        if stop.requested:  # Ctrl-C: stop between deliveries, never inside one
                            raise KeyboardInterrupt
                        _deliver_with_retries(post_callback, client, message_id, callback_payload(result, run.run_id), session, timeout)
                        run.mark_delivered(message_id)
            changes.close()
            if client is not None and service is not None:
                _deliver_through_service(service, client, run.run_id, chunk, results, rate, summary, stop)
            if out is not None:
                out.flush()
            run.checkpoint(chunk[-1].line_no)
            delivered = set()
            if stop.requested:
                raise KeyboardInterrupt
            bar.update(stream.tell() - bar.n)
            bar.set_postfix(articles=summary.articles)
    summary.bad_lines = len(errors)
    for error in errors:
        errors_out.write(json.dumps(error, ensure_ascii=False) + "\n")
    return summary


def _deliver_through_service(service, client, run_id: str, chunk: list, results: list, rate: float | None, summary: Summary, stop) -> None:
    """A local run's callbacks for one chunk, through the service's ledger, in groups so that
    Ctrl-C stops between groups (a group delivered is in the ledger: a resume never sends it twice)."""
    from .callbacks import deliver_retag_callbacks

    pending, seen = [], set()
    for line, result in zip(chunk, results):
        if str(result["id"]) not in seen:
            seen.add(str(result["id"]))
            pending.append((line, result))
    interval = 1.0 / rate if rate else 0.0
    for start in range(0, len(pending), LOCAL_GROUP):
        if stop.requested:
            raise KeyboardInterrupt
        group, now = pending[start : start + LOCAL_GROUP], time.time()
        outcomes = deliver_retag_callbacks(service, client, run_id, group, [now + i * interval for i in range(len(group))], inline=True, now=now)
        summary.superseded += outcomes["superseded"]
        summary.undelivered += outcomes["scheduled"] + outcomes["dead"]


def callback_payload(result: dict, run_id: str) -> dict:
    """The same signed payload as on publish; the event id names the run."""
    return {"type": "article.tags", "reason": "retag", "event_id": f"retag-{run_id}-{result['id']}",
            "article": {"id": result["id"], "revision": result.get("revision")},
            "model_version": result["model_version"], "topics": result["topics"], "regions": result["regions"],
            "suggested": result["suggested"], "story": result["story"]}


class Pace:
    """At most `rate` calls a second: each call waits for its slot."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = time.monotonic()

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if now < self.next_at:
            time.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval


def _deliver_with_retries(post_callback, client, message_id, payload, session, timeout, tries: int = 4) -> None:
    from ..errors import DeliveryError

    for attempt in range(1, tries + 1):
        try:
            post_callback(client, message_id, payload, timeout=timeout, session=session)
            return
        except DeliveryError as exc:
            if exc.permanent or attempt == tries:
                raise
            time.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))


class _StopOnInterrupt:
    """While active, Ctrl-C (SIGINT) only asks the run to stop at the next safe point."""

    requested = False

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._ask)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)
        return False

    def _ask(self, *_):
        self.requested = True


def _progress_bar(path: Path, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=path.stat().st_size, unit="B", unit_scale=True, disable=not enabled, desc="retag", leave=False)
