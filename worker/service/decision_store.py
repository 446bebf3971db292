"""Editors' decisions in Redis: what the service remembers, honours on every later tagging of the
article, and reports on. Everything expires with the retention (`feedback_retention_days`).

Keys (under the ledger's prefix):
    feedback:{client}:{id}      a feedback id already stored (SET NX): the same id twice is stored once
    editor:{client}:{article}   hash: "{kind}:{tag}" -> "{decision}:{revision}", the latest decision
                                per tag; one field per tag an editor touched, so it stays small
    scored:{client}:{article}   hash: the model's last result for the article (revision, model
                                version, and per tag its score and whether it was given or suggested),
                                so a decision can be related to the threshold
    decisions:{client}          stream: every decision with its score, for `autotag feedback report`;
                                entries older than the retention are trimmed as new ones arrive
    feedback_decisions          hash: "{kind}|{tag}|{decision}" -> count, for /metrics

Recording a feedback is one Lua script: the dedupe claim, the log entries, the per-tag state and
the counters are written together or not at all, so a 202 means all of it is in Redis.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

from .replica_ack import ReplicaAcks

from ..engine.decisions import Decisions
from .feedback import EFFECT, RESULT_KIND, Feedback

# KEYS: dedupe, stream, editor state, scored, decision counters, metrics
# ARGV: retention (s), trim before (ms id), revision, model version, feedback id, article id (JSON), decisions (JSON)
_RECORD = """
if not redis.call('SET', KEYS[1], 1, 'NX', 'EX', tonumber(ARGV[1])) then
  redis.call('HINCRBY', KEYS[6], 'feedback_duplicate', 1)
  return 0
end
local scored = redis.call('HMGET', KEYS[4], 'tags', 'revision', 'model_version')
local known = scored[1] and cjson.decode(scored[1]) or {}
local revision = tonumber(ARGV[3])
for _, d in ipairs(cjson.decode(ARGV[7])) do
  local field = d[1] .. ':' .. d[2]
  local score, origin = '', 'unscored'
  if known[field] then score, origin = tostring(known[field][1]), known[field][2] elseif d[5] ~= '' then score = d[5] end
  redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[2], '*', 'feedback', ARGV[5], 'article', ARGV[6], 'revision', ARGV[3],
             'model_version', ARGV[4], 'kind', d[1], 'tag', d[2], 'decision', d[3], 'editor', d[4], 'score', score,
             'origin', origin, 'scored_revision', scored[2] or '', 'scored_model', scored[3] or '')
  local current = redis.call('HGET', KEYS[3], field)
  if not current or revision >= tonumber(string.match(current, ':(%d+)$')) then
    redis.call('HSET', KEYS[3], field, d[3] .. ':' .. ARGV[3])
  end
  redis.call('HINCRBY', KEYS[5], d[1] .. '|' .. d[2] .. '|' .. d[3], 1)
end
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[1]))
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[1]))
redis.call('HINCRBY', KEYS[6], 'feedback_received', 1)
return 1
"""


@dataclass(frozen=True)
class LoggedDecision:
    """One decision as the report reads it back."""

    at: float  # when the service stored it (seconds)
    client: str
    feedback: str
    article: str
    revision: int
    model_version: str
    kind: str
    tag: str
    decision: str
    editor: str
    score: float | None
    origin: str  # given (the model gave the tag), suggested, or unscored (the model did not offer it)


class DecisionStore:
    def __init__(self, client: redis.Redis, prefix: str, retention: int, acks: ReplicaAcks | None = None):
        """`acks`: a stored feedback is answered once a replica has it (see replica_ack.py)."""
        self.redis = client
        self.prefix = prefix
        self.retention = retention
        self.acks = acks or ReplicaAcks(0, 1.0)
        self._record = client.register_script(_RECORD)

    def key(self, *parts) -> str:
        return ":".join([self.prefix, *map(str, parts)])

    def record(self, client_id: str, feedback: Feedback) -> bool:
        """Store a feedback's decisions durably (False: this id was stored before)."""
        article = feedback.article_id
        decisions = [[d.kind, d.tag, d.decision, d.editor or "", "" if d.score is None else repr(d.score)] for d in feedback.decisions]
        trim_before = int((time.time() - self.retention) * 1000)
        stored = self.acks.run_script(
            self.redis, self._record,
            keys=[self.key("feedback", client_id, feedback.id), self.key("decisions", client_id),
                  self.key("editor", client_id, article), self.key("scored", client_id, article),
                  self.key("feedback_decisions"), self.key("metrics")],
            args=[self.retention, trim_before, feedback.revision, feedback.model_version or "", feedback.id, json.dumps(article),
                  json.dumps(decisions, ensure_ascii=False)])
        return bool(stored)

    def remember_result(self, client_id: str, article_id, revision: int | None, result: dict, pipe=None) -> None:
        """Keep the model's own result (before any decision) for the article: the score a later
        decision is judged against. Queued on `pipe` when given."""
        tags = {}
        for kind, result_kind in RESULT_KIND.items():
            key = "tag" if kind == "topic" else "code"
            tags.update({f"{kind}:{t[key]}": [t["score"], "given"] for t in result[result_kind]})
            tags.update({f"{kind}:{t[key]}": [t["score"], "suggested"] for t in result["suggested"][result_kind]})
        target = pipe if pipe is not None else self.redis.pipeline(transaction=False)
        name = self.key("scored", client_id, article_id)
        target.hset(name, mapping={"tags": json.dumps(tags), "revision": "" if revision is None else revision,
                                   "model_version": result["model_version"]})
        target.expire(name, self.retention)
        if pipe is None:
            target.execute()

    def decisions_for(self, client_id: str, article_id) -> Decisions:
        return self.decisions_for_many(client_id, [article_id])[0]

    def decisions_for_many(self, client_id: str, article_ids: list) -> list[Decisions]:
        """The latest decision per tag for each article, in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for article_id in article_ids:
                pipe.hgetall(self.key("editor", client_id, article_id))
            states = pipe.execute()
        return [_decisions(state) for state in states]

    def exchange(self, client_id: str, tagged: list[tuple]) -> list[Decisions]:
        """For freshly tagged articles ((article id, revision, model result) each): remember the
        results and read the editors' decisions to apply to them, in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for article_id, revision, result in tagged:
                self.remember_result(client_id, article_id, revision, result, pipe=pipe)
                pipe.hgetall(self.key("editor", client_id, article_id))
            answers = pipe.execute()
        return [_decisions(state) for state in answers[2::3]]

    def log(self, client_id: str, since: float | None = None, batch: int = 1000):
        """Every decision stored for the client since `since` (seconds), oldest first, streamed."""
        start = f"{int(max(since or 0, time.time() - self.retention) * 1000)}-0"
        name = self.key("decisions", client_id)
        while True:
            entries = self.redis.xrange(name, min=start, count=batch)
            for entry_id, fields in entries:
                yield _logged(client_id, entry_id, fields)
            if len(entries) < batch:
                return
            start = "(" + entries[-1][0].decode()

    def decision_counts(self) -> dict[tuple[str, str, str], int]:
        """(kind, tag, decision) -> decisions stored, over the service's life (for /metrics)."""
        raw = self.redis.hgetall(self.key("feedback_decisions"))
        return {tuple(field.decode().split("|", 2)): int(count) for field, count in raw.items()}


def _decisions(state: dict) -> Decisions:
    chosen = {"topic": {}, "region": {}}
    for field, value in state.items():
        kind, _, tag = field.decode().partition(":")
        decision = value.decode().rpartition(":")[0]
        if kind in chosen and decision in EFFECT:
            chosen[kind][tag] = EFFECT[decision]
    return Decisions(chosen["topic"], chosen["region"])


def _logged(client_id: str, entry_id: bytes, raw: dict) -> LoggedDecision:
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    return LoggedDecision(
        at=int(entry_id.split(b"-")[0]) / 1000, client=client_id, feedback=fields["feedback"], article=json.loads(fields["article"]),
        revision=int(fields["revision"]), model_version=fields["model_version"] or fields["scored_model"] or "unknown",
        kind=fields["kind"], tag=fields["tag"], decision=fields["decision"], editor=fields["editor"],
        score=float(fields["score"]) if fields["score"] else None, origin=fields["origin"])
