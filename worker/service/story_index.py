"""The live story index in Redis: which recent articles are versions of one story, and what the
model said of each, within a time window (`story_window_days`, default 3).

Keys (under the ledger's prefix, all expiring with the window):
    story:{client}:entry:{article}   hash: signature, the model's own result, revision, story id,
                                     the story's first version, and a digest of the tags last sent
    story:{client}:recent:{key}      list of the latest article ids under one candidate key (a name
                                     or term), newest first, at most RECENT_PER_KEY
    story:{client}:members:{story}   set of the story's article ids
    story:{client}:lock              held while one article is placed: two versions arriving at
                                     once on two workers must see each other

Per article that is one hash of about 3 KB and its place in 16 key lists, gone after the window.
A new article reads those 16 lists (at most 3,200 ids) and scores the MAX_CANDIDATES articles
sharing the most keys with it: its cost does not grow with the window's size.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import redis

from ..engine.stories import LIKELY_STORY, Signature, candidate_keys, joins, similarity, story_id

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
LOCK_SECONDS = 10  # a worker killed while holding the lock holds it this long at most
MAX_CANDIDATES = 16  # recent articles scored against a new one: those sharing the most keys with it
MAX_STORY_VERSIONS = 20  # bounds what one publish reads and re-sends (copies of a boilerplate text)
RECENT_PER_KEY = 200  # a candidate key lists its latest articles only: a common one costs no more than a rare one


@dataclass
class Version:
    """One version of a story as the index holds it."""

    article_id: object
    revision: int | None
    result: dict  # the model's own result (no story, no editor decisions)
    sent: str | None  # digest of the tag set last sent to the CMS for it


@dataclass
class Placed:
    story_id: str
    versions: list[Version]  # the article placed first, then the others
    best: float = 0.0  # its closest match's score
    first: str = ""  # the story's first version (its article id as JSON)
    newer_known: bool = False  # the index already holds a newer revision of this article: nothing is recorded


class StoryIndex:
    def __init__(self, client: redis.Redis, prefix: str, window_days: int):
        self.redis = client
        self.prefix = prefix
        self.ttl = window_days * 24 * 3600
        self.window_days = window_days
        self._release = client.register_script(_RELEASE)

    def key(self, client_id: str, *parts) -> str:
        return ":".join([self.prefix, "story", client_id, *map(str, parts)])

    def place(self, client_id: str, article_id, revision: int | None, signature: Signature, result: dict, *,
              write: bool = True) -> Placed:
        """Find the article's story among recent articles, as a batch does (engine.stories.story_to_join:
        the story of its closest recent article that also matches that story's first version),
        or start one; record it there with the model's result (unless `write` is False: a
        preview only looks); return every version's latest result."""
        if not write:
            placed = self._find(client_id, article_id, revision, signature, result)
        else:
            token = self._lock(client_id)  # held only while the story is chosen and the article recorded
            try:
                placed = self._find(client_id, article_id, revision, signature, result)
                if not placed.newer_known:
                    self._record(client_id, article_id, revision, signature, result, placed)
            finally:
                self._release(keys=[self.key(client_id, "lock")], args=[token])
        placed.versions.extend(self._other_versions(client_id, article_id, placed.story_id))
        return placed

    def mark_sent(self, client_id: str, sent: dict) -> None:
        """Remember the tag sets just sent (article id -> digest): a version is re-sent only when
        its story's tags change."""
        with self.redis.pipeline(transaction=False) as pipe:
            for article_id, digest in sent.items():
                pipe.hset(self.key(client_id, "entry", article_id), "sent", digest)
            pipe.execute()

    def forget(self, client_id: str, article_id) -> None:
        """An unpublished article leaves its story (its tags no longer count)."""
        entry = self.key(client_id, "entry", article_id)
        sid = self.redis.hget(entry, "story")
        with self.redis.pipeline(transaction=False) as pipe:
            if sid:
                pipe.srem(self.key(client_id, "members", sid.decode()), json.dumps(article_id))
            pipe.delete(entry)
            pipe.execute()

    def _find(self, client_id: str, article_id, revision, signature: Signature, result: dict) -> Placed:
        me = json.dumps(article_id)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self.key(client_id, "entry", article_id), "story", "revision", "first")
            for key in candidate_keys(signature):
                pipe.lrange(self.key(client_id, "recent", key), 0, -1)
            (own_story, own_revision, own_first), *found = pipe.execute()
        shared = Counter(member for members in found for member in set(members))  # a new revision is listed again
        shared.pop(me.encode(), None)
        # the versions of one story share many of their keys; a window of thousands of articles
        # still costs one article at most MAX_CANDIDATES signatures read and scored
        candidates = sorted(sorted(shared, key=lambda member: (-shared[member], member))[:MAX_CANDIDATES])
        best, best_story, first = 0.0, None, None
        if candidates:
            with self.redis.pipeline(transaction=False) as pipe:
                for candidate in candidates:
                    pipe.hmget(self.key(client_id, "entry", json.loads(candidate)), "signature", "story", "first")
                entries = pipe.execute()
            stories: dict[str, tuple[float, bytes]] = {}  # story -> its closest version's score, its first version
            for raw_signature, raw_story, raw_first in entries:
                if raw_signature is None:
                    continue  # expired, or forgotten on unpublish
                score = similarity(signature, Signature.from_json(json.loads(raw_signature)), self.window_days)
                best = max(best, score)
                if score >= LIKELY_STORY and score > stories.get(raw_story.decode(), (0.0,))[0]:
                    stories[raw_story.decode()] = (score, raw_first)
            best_story, first = self._story_to_join(client_id, signature, stories, (own_story or b"").decode())
        if best_story is None and own_story:  # a new revision that matches nothing stays in its story
            best_story, first = own_story.decode(), own_first
        sid = best_story or story_id(article_id)
        first = first.decode() if isinstance(first, bytes) else first
        newer = own_revision not in (None, b"") and revision is not None and int(own_revision) > revision
        return Placed(sid, [Version(article_id, revision, result, None)], best, first or me, newer_known=newer)

    def _story_to_join(self, client_id: str, signature: Signature, stories: dict[str, tuple[float, bytes]],
                       own_story: str) -> tuple[str | None, bytes | None]:
        """As `engine.stories.story_to_join`: the closest look-alike's story if it also matches
        that story's first version (and is not full), else the next closest's; one round trip."""
        ordered = sorted(stories.items(), key=lambda item: -item[1][0])  # closest first; ties as the candidates came
        if not ordered:
            return None, None
        with self.redis.pipeline(transaction=False) as pipe:
            for sid, (_, first) in ordered:
                pipe.hget(self.key(client_id, "entry", json.loads(first)), "signature")
                pipe.scard(self.key(client_id, "members", sid))
            replies = pipe.execute()
        for index, (sid, (score, first)) in enumerate(ordered):
            first_signature, story_size = replies[2 * index], replies[2 * index + 1]
            # a first version gone (expired, unpublished) no longer holds its story to what it began as
            to_first = similarity(signature, Signature.from_json(json.loads(first_signature)), self.window_days) if first_signature else score
            if joins(score, to_first) and (sid == own_story or story_size < MAX_STORY_VERSIONS):  # a full story takes no more
                return sid, first
        return None, None

    def _other_versions(self, client_id: str, article_id, sid: str) -> list[Version]:
        """The story's other versions, each with the model's own result for it."""
        others = [m for m in (json.loads(m) for m in self.redis.smembers(self.key(client_id, "members", sid))) if m != article_id]
        versions = []
        if others:
            with self.redis.pipeline(transaction=False) as pipe:
                for other in others:
                    pipe.hmget(self.key(client_id, "entry", other), "result", "revision", "sent")
                for other, (raw_result, raw_revision, sent) in zip(others, pipe.execute()):
                    if raw_result is not None:
                        versions.append(Version(other, int(raw_revision) if raw_revision else None, json.loads(raw_result),
                                                sent.decode() if sent else None))
        return versions

    def _record(self, client_id: str, article_id, revision, signature: Signature, result: dict, placed: Placed) -> None:
        entry = self.key(client_id, "entry", article_id)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(entry, mapping={"signature": json.dumps(signature.as_json(), ensure_ascii=False),
                                      "result": json.dumps(_compact(result), ensure_ascii=False),
                                      "revision": "" if revision is None else revision, "story": placed.story_id,
                                      "first": placed.first})
            pipe.expire(entry, self.ttl)
            for key in candidate_keys(signature):
                recent = self.key(client_id, "recent", key)
                pipe.lpush(recent, json.dumps(article_id))
                pipe.ltrim(recent, 0, RECENT_PER_KEY - 1)
                pipe.expire(recent, self.ttl)
            members = self.key(client_id, "members", placed.story_id)
            pipe.sadd(members, json.dumps(article_id))
            pipe.expire(members, self.ttl)
            pipe.execute()

    def _lock(self, client_id: str) -> str:
        token, name, deadline = uuid.uuid4().hex, self.key(client_id, "lock"), time.monotonic() + 2 * LOCK_SECONDS
        while not self.redis.set(name, token, nx=True, ex=LOCK_SECONDS):
            if time.monotonic() > deadline:
                raise redis.TimeoutError(f"story index of client {client_id} stayed locked")
            time.sleep(0.0005)
        return token


def tag_digest(result: dict) -> str:
    """What a CMS sees of a result's tags: the topics and countries given, and the suggested."""
    given = [sorted(t["tag"] for t in result["topics"]), sorted(r["code"] for r in result["regions"]),
             sorted(t["tag"] for t in result["suggested"]["topics"]), sorted(r["code"] for r in result["suggested"]["regions"])]
    return hashlib.sha256(json.dumps(given).encode()).hexdigest()[:16]


def _compact(result: dict) -> dict:
    """The result as the story needs it later: tags with scores and evidence, nothing else."""
    return {key: result[key] for key in ("id", "model_version", "topics", "regions", "suggested")}
