"""Acceptance: messages sent through the chat plugin end up in MongoDB exactly
once, with the seed's schema, consumed by two ingest processes; and a SIGTERM
never acknowledges what is not stored."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from aurora_host import AsyncRawWebSocket, AuroraHost, HostStartError, text_frame
from ingest_support import CHAT, HOST, INGEST, PROBE, SECRET, oid, require, wait_for, wait_ready
from ingest_streams import SteadyProducer, assert_exactly_once, assert_seed_schema, chat_fields, xadd_many
from tokens import make_token

CLIENTS = 10
PER_CLIENT = 2000  # 20,000 messages in all


async def send_through_chat(port: int) -> dict[int, list[dict]]:
    """Each client joins its own room and sends PER_CLIENT messages; returns
    the live envelopes each got back."""

    async def one(i: int) -> list[dict]:
        ws = await AsyncRawWebSocket.connect(port, f"/?user={oid(100 + i)}")
        await ws.send_json({"type": "join", "room": f"room{i}"})
        while (await ws.recv_json()).get("type") != "joined":
            pass
        for k in range(PER_CLIENT):
            ws.writer.write(text_frame({"type": "message", "room": f"room{i}", "text": f"c{i} m{k}"}))
            if k % 200 == 199:
                await ws.writer.drain()
        await ws.writer.drain()
        live = []
        while len(live) < PER_CLIENT:
            f = await asyncio.wait_for(ws.recv_json(), 60)
            if f.get("type") == "message":
                live.append(f)
            else:
                assert f.get("type") in ("presence", "joined"), f
        await ws.close()
        return live

    results = await asyncio.gather(*(one(i) for i in range(CLIENTS)))
    return dict(enumerate(results))


def test_20000_messages_through_chat_with_two_ingest_workers(ctx, start_host):
    chat = start_host(ctx.host_config(
        [{"name": "probe", "path": require(PROBE)},
         {"name": "chat", "path": require(CHAT), "config": {"stream": ctx.stream, "auto_join": False}}],
        # A bulk load: each client pipelines its messages, over the default
        # per-connection budgets (frames/s, messages in flight).
        limits={"send_queue_max_frames": 100000, "send_queue_max_bytes": 64 << 20, "frames_per_s": 1000000,
                "frames_burst": 1000000, "max_pending_per_conn": 100000}), "chat")
    workers = [start_host(ctx.host_config([ctx.ingest_plugin(workers=1, history=(i == 0))]), f"ingest{i}")
               for i in range(2)]
    for w in workers:
        wait_ready(w)

    live = asyncio.run(send_through_chat(chat.port))
    assert sum(len(v) for v in live.values()) == 20000
    assert ctx.r.xlen(ctx.stream) == 20000

    wait_for(ctx.drained, "the group to drain (lag 0, pending 0)", timeout=120, interval=0.25)
    entries = dict(ctx.r.xrange(ctx.stream))
    assert len(entries) == 20000
    assert_exactly_once(ctx.coll, list(entries))
    assert_seed_schema(ctx.coll, entries)
    info = ctx.group_info()
    assert (info["pending"], info["lag"]) == (0, 0)
    assert ctx.r.xpending(ctx.stream, "mongo_workers")["pending"] == 0
    # Both processes took a share of the work.
    shares = [w.metrics().total("aurora_ingest_persisted_total") for w in workers]
    assert all(s > 0 for s in shares) and sum(shares) == 20000, shares

    # History serves the same objects as the live path (one rendering for both).
    token = make_token({"userId": oid(100), "username": "user-x", "exp": int(time.time()) + 600}, SECRET)
    # FerretDB/SQLite takes 3-5 s for this first query right after the bulk load on a busy 2-core machine.
    resp = workers[0].get("/api/rooms/room0/messages?limit=5", headers={"Authorization": f"Bearer {token}"},
                          timeout=30)
    assert resp.status == 200, resp.body
    page = resp.json()
    assert page["messages"] == list(reversed(live[0][-5:]))
    for w in workers + [chat]:
        assert w.stop() == (0, False), w.stderr_tail()


def test_sigterm_stores_or_abandons_the_batch_and_exits_fast(ctx, start_host):
    cfg = ctx.host_config([ctx.ingest_plugin(workers=2, consumer_name="graceful", batch=50)])
    host = start_host(cfg)
    wait_ready(host)
    # Idle: consumers are blocked in XREADGROUP BLOCK 5000; SIGTERM must not wait for it.
    t0 = time.monotonic()
    assert host.stop() == (0, False), host.stderr_tail()
    assert time.monotonic() - t0 < 2.0

    producer = SteadyProducer(ctx.r, ctx.stream, total=3000, rate=1500)
    producer.start()
    host = start_host(cfg)
    wait_for(lambda: ctx.coll.count_documents({}) > 200, "some documents", timeout=30)
    assert host.stop() == (0, False), host.stderr_tail()  # mid-stream
    # Nothing acknowledged is missing: acked = stored.
    ids = producer.finish()
    pending = {p["message_id"] for p in ctx.r.xpending_range(ctx.stream, "mongo_workers", "-", "+", 100000)}
    stored = {d["streamId"] for d in ctx.coll.find({}, {"streamId": 1})}
    delivered = ctx.group_info()["last-delivered-id"]
    acked = [i for i in ids if _le(i, delivered) and i not in pending]
    assert set(acked) <= stored, f"{len(set(acked) - stored)} acknowledged but not stored"

    host = start_host(cfg)  # same consumer names: drains its own pending entries first
    wait_for(ctx.drained, "the group to drain", timeout=60, interval=0.2)
    assert_exactly_once(ctx.coll, ids)
    assert host.stop() == (0, False), host.stderr_tail()


def _le(a: str, b: str) -> bool:
    pa, pb = tuple(map(int, a.split("-"))), tuple(map(int, b.split("-")))
    return pa <= pb


def test_one_entry_per_field_layout_is_stored_like_the_seed(ctx, start_host):
    """Direct XADDs with the chat's layout (and a `ref`, which is not stored)."""
    fields = [chat_fields(i, room=f"r{i % 3}") for i in range(300)]
    fields[5]["ref"] = "client-ref-1"
    ids = xadd_many(ctx.r, ctx.stream, fields)
    host = start_host(ctx.host_config([ctx.ingest_plugin(workers=1)]))
    wait_for(ctx.drained, "the group to drain", timeout=30)
    entries = {i: {k: v for k, v in f.items() if k != "ref"} for i, f in zip(ids, fields)}
    assert_exactly_once(ctx.coll, ids)
    assert_seed_schema(ctx.coll, entries)
    names = {ix["name"]: ix for ix in ctx.coll.list_indexes()}
    assert names["streamId_1"].get("unique") is True
    assert dict(names["roomId_1_createdAt_-1"]["key"]) == {"roomId": 1, "createdAt": -1}
    assert dict(names["userId_1"]["key"]) == {"userId": 1}
    m = host.metrics()
    assert m.total("aurora_ingest_persisted_total") == 300
    assert m.has_family("aurora_ingest_consumer_lag") and m.has_family("aurora_ingest_batch_size")
    assert json.loads(host.get("/ready").body)["status"] == "ready"


def test_without_secondary_indexes_only_the_unique_streamid_index_is_made(ctx, start_host):
    """secondary_indexes: false (for FerretDB on SQLite) keeps exactly-once:
    the unique streamId index is still created before any insert."""
    ids = xadd_many(ctx.r, ctx.stream, [chat_fields(i) for i in range(100)])
    start_host(ctx.host_config([ctx.ingest_plugin(workers=1, secondary_indexes=False)]))
    wait_for(ctx.drained, "the group to drain", timeout=30)
    assert_exactly_once(ctx.coll, ids)
    names = {ix["name"]: ix for ix in ctx.coll.list_indexes()}
    assert set(names) == {"_id_", "streamId_1"}, names
    assert names["streamId_1"].get("unique") is True


def test_the_room_scoped_unique_key_replaces_the_seeds_without_a_gap(ctx, start_host):
    """The road to a sharded collection (docs/ingest.md): a collection made
    with the seed's unique {streamId}; ingest restarted with unique_key
    "roomId,streamId" builds the compound index beside it and says the old
    one is left; once the old one is dropped, the compound index alone makes
    a redelivered entry a duplicate: stored once, counted, acknowledged."""
    first = xadd_many(ctx.r, ctx.stream, [chat_fields(i, room=f"r{i % 4}") for i in range(100)])
    h = start_host(ctx.host_config([ctx.ingest_plugin(workers=1)]))
    wait_for(ctx.drained, "the group to drain", timeout=30)
    h.stop()
    assert set(ix["name"] for ix in ctx.coll.list_indexes()) >= {"streamId_1"}

    room_scoped = ctx.host_config([ctx.ingest_plugin(workers=1, unique_key="roomId,streamId")])
    h = start_host(room_scoped)
    wait_for(lambda: any("streamId_1 is still there" in line for line in h.stderr_lines()),
             "the note that the seed's index is left", timeout=20)
    h.stop()
    names = {ix["name"]: ix for ix in ctx.coll.list_indexes()}
    assert names["roomId_1_streamId_1"].get("unique") is True
    assert dict(names["roomId_1_streamId_1"]["key"]) == {"roomId": 1, "streamId": 1}

    ctx.coll.drop_index("streamId_1")
    fields = [chat_fields(i, room=f"r{i % 4}") for i in range(100, 200)]
    second = xadd_many(ctx.r, ctx.stream, fields)
    # Ten of them stored before ingest reads them: a worker that inserted its
    # batch and died before XACK, as the next delivery finds it.
    ctx.coll.insert_many([{"streamId": sid, "roomId": f["roomId"], "text": f["text"]}
                          for sid, f in list(zip(second, fields))[:10]])
    h = start_host(room_scoped)
    wait_for(ctx.drained, "the group to drain", timeout=30)
    assert_exactly_once(ctx.coll, first + second)
    assert h.metrics().total("aurora_ingest_duplicates_total") == 10
    assert h.metrics().total("aurora_ingest_persisted_total") == 90
    assert "streamId_1" not in {ix["name"] for ix in ctx.coll.list_indexes()}
    assert not any("streamId_1 is still there" in line for line in h.stderr_lines())


@pytest.mark.parametrize("settings,why", [
    ({"unique_key": "roomId"}, 'setting \\"unique_key\\" must be \\"streamId\\" or \\"roomId,streamId\\"'),
    ({"batch": 0}, '\\"batch\\"'),
    ({"consumer_reap_idle_ms": 100}, 'setting \\"consumer_reap_idle_ms\\" must be 0 or more than'),
    ({"history": True}, "history needs jwt.secret"),
])
def test_a_bad_setting_is_refused_at_start_naming_it(redis_server, tmp_path, settings, why):
    """Refused before anything starts, with exit code 2; on the asan leg an
    init that failed must also leave nothing leaked (exit code 1 then)."""
    cfg = {"log": {"format": "json"}, "redis": {"url": redis_server.url},
           "mongo": {"url": "mongodb://127.0.0.1:9/unused"},
           "plugins": [{"name": "ingest", "path": require(INGEST), "config": {"history": False, **settings}}]}
    with pytest.raises(HostStartError) as err:
        AuroraHost.start(Path(require(HOST)), tmp_path, cfg)
    text = str(err.value)
    assert "exited with code 2" in text and why in text, text[-3000:]
