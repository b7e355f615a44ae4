"""Retention (docs/ingest.md, "Retention"): the stream is trimmed only past
what every consumer group has acknowledged, never an entry a worker holds
unacknowledged, however old; stored messages (and their changes) expire
globally and per room. Real Redis, real FerretDB (both backends)."""

from __future__ import annotations

import time

import pytest

from ingest_support import Ctx, oid, wait_for, wait_ready
from ingest_streams import chat_fields

FAST = {"claim_idle_ms": 600000, "claim_interval_ms": 250, "block_ms": 200, "stats_interval_ms": 100,
        "consumer_reap_idle_ms": 0}


@pytest.fixture
def hosts(start_host):
    started = []

    def start(config: dict, name: str = ""):
        h = start_host(config, name)
        started.append(h)
        return h

    yield start
    for h in started:
        assert h.stop() == (0, False), h.stderr_tail()


def trim_passes(host) -> int:
    for line in host.get("/metrics").body.decode().splitlines():
        if line.startswith("aurora_ingest_stream_trim_passes_total "):
            return int(float(line.split()[1]))
    return 0


def after_trim_passes(host, n: int) -> None:
    """Waits until `n` more trim passes have run: a check that nothing was
    trimmed then means something."""
    start = trim_passes(host)
    wait_for(lambda: trim_passes(host) >= start + n, f"{n} trim passes", timeout=10)


def old_ids(n: int, age_s: int) -> list[str]:
    ms = int(time.time() * 1000) - age_s * 1000
    return [f"{ms}-{i}" for i in range(n)]


def test_the_stream_is_trimmed_only_past_what_every_group_acknowledged(ctx: Ctx, hosts):
    ids = old_ids(30, 3600)
    ctx.r.xgroup_create(ctx.stream, "mongo_workers", id="0", mkstream=True)
    for i, sid in enumerate(ids):
        ctx.r.xadd(ctx.stream, chat_fields(i), id=sid)
    # A worker that took the first five entries and died holding them
    # (and is never claimed from here: claim_idle_ms is 10 minutes).
    held = ctx.r.xreadgroup("mongo_workers", "dead-worker", {ctx.stream: ">"}, count=5)
    assert [e[0] for e in held[0][1]] == ids[:5]
    host = hosts(ctx.host_config([ctx.ingest_plugin(workers=1, stream_keep_s=60, **FAST)]))
    wait_ready(host)
    wait_for(lambda: ctx.coll.count_documents({}) == 25, "the other 25 stored", timeout=20)
    # An hour old, stored by ingest, yet kept: the oldest pending entry
    # holds the trim back, pass after pass.
    after_trim_passes(host, 3)
    assert ctx.r.xlen(ctx.stream) == 30
    # The dead worker's entries acknowledged (as a claim and store would):
    # everything older than stream_keep_s goes; fresh entries stay.
    fresh = [ctx.r.xadd(ctx.stream, chat_fields(100 + i)) for i in range(3)]
    ctx.r.xack(ctx.stream, "mongo_workers", *ids[:5])
    wait_for(lambda: ctx.r.xlen(ctx.stream) == 3, "the stream trimmed to the fresh entries", timeout=10)
    assert [e[0] for e in ctx.r.xrange(ctx.stream)] == fresh
    metrics = host.get("/metrics").body.decode()
    assert "aurora_ingest_stream_trimmed_total 30" in metrics, [l for l in metrics.splitlines() if "trimmed" in l]


def test_without_a_group_nothing_is_trimmed(ctx: Ctx, hosts):
    """A stream nobody consumes yet (no group): nothing is known stored, nothing goes."""
    for i, sid in enumerate(old_ids(10, 3600)):
        ctx.r.xadd(ctx.stream, chat_fields(i), id=sid)
    host = hosts(ctx.host_config([ctx.ingest_plugin(workers=0, stream_keep_s=1, **FAST)]))
    wait_ready(host)
    after_trim_passes(host, 3)
    assert ctx.r.xlen(ctx.stream) == 10


def test_stored_messages_expire_globally_and_per_room(ctx: Ctx, hosts):
    old, new = old_ids(4, 7200), old_ids(2, 60)
    rows = [("expiring", old[0]), ("expiring", old[1]), ("kept-longer", old[2]), ("forever", old[3]),
            ("expiring", new[0]), ("kept-longer", new[1])]
    for i, (room, sid) in enumerate(rows[:4]):
        ctx.r.xadd(ctx.stream, chat_fields(i, room=room), id=sid)
    # An edit of an old message, itself old: it goes with its message.
    ctx.r.xadd(ctx.stream, {"roomId": "expiring", "userId": oid(1), "username": "u", "kind": "edit",
                            "target": old[0], "text": "edited"}, id=f"{old[0].split('-')[0]}-9")
    for i, (room, sid) in enumerate(rows[4:]):
        ctx.r.xadd(ctx.stream, chat_fields(4 + i, room=room), id=sid)
    host = hosts(ctx.host_config([ctx.ingest_plugin(
        workers=1, retention_s=3600, room_retention=["kept-longer=86400", "forever=0"], retention_interval_s=1,
        **FAST)]))
    wait_ready(host)
    wait_for(lambda: ctx.coll.count_documents({"roomId": "expiring"}) == 1, "the old messages of 'expiring' gone",
             timeout=20)
    left = sorted((d["roomId"], d["streamId"]) for d in ctx.coll.find({}, {"roomId": 1, "streamId": 1}))
    assert left == sorted([("expiring", new[0]), ("kept-longer", old[2]), ("forever", old[3]),
                           ("kept-longer", new[1])])
    wait_for(lambda: ctx.mongo[ctx.db]["message_changes"].count_documents({}) == 0, "the old edit gone", timeout=10)
    assert "aurora_ingest_messages_expired_total 2" in host.get("/metrics").body.decode()
