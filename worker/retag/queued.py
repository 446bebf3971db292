"""Re-tagging fanned out through Celery: the CLI streams the export into chunk tasks; workers tag
each chunk as one batch and post its callbacks themselves, paced to the run's rate; the CLI
collects results and counts as chunks finish.

Run state lives in Redis under {prefix}:retag:{run}: `meta` (options, totals), `done` (chunk
indices finished), `tags` (per-tag gains and losses), `changes` and `results` (lists the CLI
drains into files), `settled` (articles whose callback is in the ledger's durable schedule). The chunk is the unit of durability: it commits its counts and outputs
in one script together with its index in `done`, after its callbacks are settled, so a chunk run
again (a worker killed mid-chunk, a resume) counts once and posts only what is not settled.
Callbacks go through the ledger like live ones (retag/callbacks.py): the same revision rules,
the same post lease, the same retries; their ids derive from the run and the article, so the
webhook-id is the same on every try.
"""

from __future__ import annotations

import json
import time
from collections import Counter

from ..engine.archive import ArchiveLine
from ..engine.tagging import ArticleInput
from ..service.ledger import Ledger
from .callbacks import deliver_retag_callbacks
from .export import EditorMemory, Summary, add_to_summary, change_entry, retag_chunk
from .runs import list_run, load_run, run_keys

MAX_CHUNKS_IN_FLIGHT = 16  # bounds what the queue holds for one run
INLINE_PACING = 20.0  # a chunk whose callbacks fit in this many seconds posts them itself

_COMMIT_CHUNK = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
local counts = cjson.decode(ARGV[2])
for field, amount in pairs(counts.meta) do redis.call('HINCRBY', KEYS[2], field, amount) end
for field, amount in pairs(counts.tags) do redis.call('HINCRBY', KEYS[3], field, amount) end
for _, line in ipairs(counts.changes) do redis.call('RPUSH', KEYS[4], line) end
for _, line in ipairs(counts.results) do redis.call('RPUSH', KEYS[5], line) end
redis.call('HSET', KEYS[2], 'updated_at', ARGV[4])
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, tonumber(ARGV[3])) end
return 1
"""
RUN_TTL = 30 * 24 * 3600  # a run's state (for --status and --resume) is kept this long after its last chunk
# Reserve n callback slots `interval` apart, after the run's last reserved slot (or now).
_RESERVE_SLOTS = """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(last, tonumber(ARGV[1]))
redis.call('SET', KEYS[1], tostring(start + tonumber(ARGV[2]) * tonumber(ARGV[3])), 'EX', 2592000)  -- RUN_TTL
return tostring(start)
"""


def encode_line(line: ArchiveLine) -> dict:
    return {"line": line.line_no, "id": line.article.id, "title": line.article.title, "body": line.article.body,
            "revision": line.revision, "current": line.current,
            "removed": {kind: sorted(values) for kind, values in line.removed_by_editor.items()}}


def decode_line(data: dict) -> ArchiveLine:
    return ArchiveLine(data["line"], ArticleInput(data["id"], data["title"], data["body"]), data["revision"], data["current"],
                       {kind: set(values) for kind, values in data["removed"].items()})


def process_chunk(runtime, run_id: str, index: int, encoded: list[dict]) -> str:
    """Worker side: tag one chunk, settle its callbacks, commit its counts once."""
    ledger = runtime.ledger
    keys = run_keys(ledger, run_id)
    if ledger.redis.sismember(keys["done"], index):
        return "duplicate"
    meta = {k.decode(): v.decode() for k, v in ledger.redis.hgetall(keys["meta"]).items()}
    options = json.loads(meta["options"])
    lines = [decode_line(item) for item in encoded]
    editors = _editor_memory(runtime, options)
    results = retag_chunk(runtime.tagger, lines, editors, options.get("stories", "shared"))

    summary = Summary()
    for result in results:
        add_to_summary(summary, result)
    delivered = Counter() if options["no_callback"] else _settle_callbacks(runtime, run_id, keys, options, lines, results)
    counts = {
        "meta": {"articles": summary.articles, "changed": summary.changed, "editor_kept": summary.editor_kept,
                 "superseded": delivered["superseded"]},
        "tags": {**{f"gain:{t}": n for t, n in summary.gains.items()}, **{f"lose:{t}": n for t, n in summary.losses.items()}},
        "changes": [entry for entry in (change_entry(line, result) for line, result in zip(lines, results)) if entry],
        "results": [json.dumps(result, ensure_ascii=False) for result in results] if options.get("out") else [],
    }
    committed = ledger.redis.register_script(_COMMIT_CHUNK)(
        keys=[keys["done"], keys["meta"], keys["tags"], keys["changes"], keys["results"], keys["settled"]],
        args=[index, json.dumps(counts), RUN_TTL, time.time()])
    return "done" if committed else "duplicate"


def _editor_memory(runtime, options: dict) -> EditorMemory | None:
    """Whose remembered decisions apply: the run's client, or the only one configured."""
    client_id = options.get("client") or (runtime.settings.clients[0].id if len(runtime.settings.clients) == 1 else None)
    return EditorMemory(runtime.decisions, client_id, remember=not options["no_callback"]) if client_id else None


def _settle_callbacks(runtime, run_id: str, keys: dict, options: dict, lines: list[ArchiveLine], results: list[dict]) -> Counter:
    """Settle the chunk's callbacks not yet settled for this run, each at its slot on the run's
    clock: scheduled in the ledger under the live revision rules (superseded lines are never
    sent), then marked settled (the ledger owns them from here, durably); when the slots fit
    within INLINE_PACING seconds this task posts them itself over the client's
    `callback_connections`, otherwise the dispatcher does at their slots. A worker killed
    mid-chunk leaves them to the dispatcher; a chunk run again finds them settled."""
    ledger = runtime.ledger
    client = runtime.settings.client(options["client"])
    pending, seen = [], set()
    for line, result in zip(lines, results):
        if str(result["id"]) not in seen:  # an article twice in one chunk is called back once
            seen.add(str(result["id"]))
            pending.append((line, result))
    settled = ledger.redis.smismember(keys["settled"], [str(result["id"]) for _, result in pending]) if pending else []
    pending = [item for item, done in zip(pending, settled) if not done]
    if not pending:
        return Counter()
    interval = 1.0 / options["rate"] if options.get("rate") else 0.0
    start = float(ledger.redis.register_script(_RESERVE_SLOTS)(keys=[keys["clock"]], args=[time.time(), interval, len(pending)]))
    slots = [start + offset * interval for offset in range(len(pending))]
    return deliver_retag_callbacks(runtime, client, run_id, pending, slots, inline=slots[-1] - time.time() <= INLINE_PACING,
                                   now=time.time(), on_scheduled=lambda: ledger.redis.sadd(keys["settled"], *[str(r["id"]) for _, r in pending]))


def start_run(ledger: Ledger, input_path, options: dict) -> str:
    import secrets

    run_id = secrets.token_hex(6)
    now = time.time()
    ledger.redis.hset(run_keys(ledger, run_id)["meta"], mapping={"input": str(input_path), "options": json.dumps(options),
                                                                  "started_at": now, "submitted_all": 0})
    list_run(ledger, run_id, now)
    return run_id


def run_queued(app, ledger: Ledger, run_id: str, *, max_body_bytes: int, changes_out, results_out, errors_out, progress: bool) -> dict:
    """CLI side: stream the export into chunk tasks (skipping chunks already done, so a resumed
    run picks up where it stopped), drain results as they come, and wait for the last chunk."""
    from tqdm import tqdm

    from ..engine.archive import read_archive
    from .export import chunks

    keys = run_keys(ledger, run_id)
    meta = load_run(ledger, run_id)
    queue = app.autotag_queue_prefix + "autotag.retag"
    done = {int(i) for i in ledger.redis.smembers(keys["done"])}
    errors: list = []
    submitted = 0
    bar = tqdm(unit="chunk", disable=not progress, desc="retag", leave=False)
    with open(meta["input"], "rb") as stream:
        for index, chunk in enumerate(chunks(read_archive(stream, max_body_bytes=max_body_bytes, errors=errors))):
            submitted = index + 1
            if index in done:
                continue
            while index - ledger.redis.scard(keys["done"]) >= MAX_CHUNKS_IN_FLIGHT:
                _drain(ledger, keys, changes_out, results_out)
                time.sleep(0.1)
            app.send_task("autotag.retag_chunk", args=[run_id, index, [encode_line(line) for line in chunk]], queue=queue)
            bar.update(1)
    ledger.redis.hset(keys["meta"], mapping={"submitted_all": 1, "total_chunks": submitted, "bad_lines": len(errors)})
    for error in errors:
        errors_out.write(json.dumps(error, ensure_ascii=False) + "\n")
    while ledger.redis.scard(keys["done"]) < submitted:
        _drain(ledger, keys, changes_out, results_out)
        bar.set_postfix(done=ledger.redis.scard(keys["done"]))
        time.sleep(0.1)
    _drain(ledger, keys, changes_out, results_out)
    bar.close()
    meta = load_run(ledger, run_id)
    tags = {k.decode(): int(v) for k, v in ledger.redis.hgetall(keys["tags"]).items()}
    names = sorted({name.split(":", 1)[1] for name in tags})
    return {"articles": int(meta.get("articles", 0)), "bad_lines": len(errors), "changed": int(meta.get("changed", 0)),
            "superseded": int(meta.get("superseded", 0)),
            "editor_decisions_kept": int(meta.get("editor_kept", 0)),
            "per_tag": {n: {"gain": tags.get(f"gain:{n}", 0), "lose": tags.get(f"lose:{n}", 0)} for n in names}}


def _drain(ledger: Ledger, keys: dict, changes_out, results_out) -> None:
    for key, out in ((keys["changes"], changes_out), (keys["results"], results_out)):
        while True:
            batch = ledger.redis.lpop(key, 500)
            if not batch:
                break
            if out is not None:
                out.write("".join(item.decode() + "\n" for item in batch))
