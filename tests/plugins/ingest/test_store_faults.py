"""The store path under faults that leave no error to see: a store that
stops answering (SIGSTOP), a worker killed while it holds a batch, and the
dead consumers restarts used to leave in the group. docs/ingest.md,
"Failure behaviour", states the bounds these tests hold the plugin to."""

from __future__ import annotations

import json
import signal
import time


from ingest_support import CHAT, SECRET, Ctx, oid, require, wait_for, wait_ready
from ingest_streams import SteadyProducer, assert_exactly_once, chat_fields, xadd_many
from real_servers import FerretDbServer  # noqa: F401 (the type of private_mongo)
from tokens import make_token

# mongo_timeout_ms 1000 and stats_interval_ms 500: a frozen store is reported
# within 1.5 s (docs/ingest.md); the writers' operations give up after 2 s.
FAST = {"claim_interval_ms": 250, "block_ms": 300, "backoff_initial_ms": 50, "backoff_max_ms": 500,
        "mongo_timeout_ms": 1000, "mongo_op_timeout_ms": 2000, "stats_interval_ms": 500, "redis_timeout_ms": 500}
REPORT_BOUND_S = 1.0 + 0.5  # mongo_timeout_ms + stats_interval_ms
SLACK_S = 2.0  # a loaded 2-core machine, sanitizer builds


def frozen(srv: FerretDbServer, on: bool) -> None:
    srv.proc.proc.send_signal(signal.SIGSTOP if on else signal.SIGCONT)


def gauge(host, name: str) -> float:
    return host.metrics().total(name)


def test_a_frozen_store_is_reported_and_the_chat_tier_stays_ready(redis_server, private_mongo, start_host):
    """FerretDB frozen for 6 s under steady sending. The worker replica
    reports it within the bound (mongo_up 0, a log line, /ready 503); the
    chat replica (chat + ingest serving history only, the chat-service
    profile) stays ready, and its history requests get 503 `unavailable`
    within the operation deadline instead of hanging. Then both recover and
    every message is stored once."""
    ctx = Ctx(redis_server, private_mongo)
    try:
        worker = start_host(ctx.host_config([ctx.ingest_plugin(workers=1, claim_idle_ms=30000, **FAST)]), "worker")
        chat = start_host(ctx.host_config(
            [{"name": "chat", "path": require(CHAT), "config": {"stream": ctx.stream}},
             ctx.ingest_plugin(workers=0, history=True, **FAST)]), "chat")
        wait_ready(worker)
        wait_ready(chat)
        tok = make_token({"userId": oid(1), "username": "reader", "exp": int(time.time()) + 600}, SECRET)
        auth = {"Authorization": f"Bearer {tok}"}
        assert chat.get("/api/rooms/general/messages", headers=auth).status == 200

        producer = SteadyProducer(ctx.r, ctx.stream, total=10**9, rate=200)
        producer.start()
        wait_for(lambda: ctx.coll.count_documents({}) > 50, "documents before the freeze", timeout=20)

        frozen(private_mongo, True)
        frozen_at = time.monotonic()
        wait_for(lambda: gauge(worker, "aurora_ingest_mongo_up") == 0, "mongo_up 0 on the worker",
                 timeout=REPORT_BOUND_S + SLACK_S, interval=0.05)
        reported_s = time.monotonic() - frozen_at
        assert worker.get("/ready").status == 503
        wait_for(lambda: any("MongoDB unavailable" in line for line in worker.stderr_lines()), "the log line",
                 timeout=2)  # written just after the gauge
        # The chat replica: ready, and history answers within the op deadline.
        assert chat.get("/ready").status == 200, chat.get("/ready").body
        t0 = time.monotonic()
        page = chat.get("/api/rooms/general/messages", headers=auth, timeout=15)
        answered_s = time.monotonic() - t0
        assert page.status == 503 and "unavailable" in json.loads(page.body)["error"], (page.status, page.body)
        assert answered_s <= 2.0 + 1.0 + SLACK_S, answered_s  # mongo_op_timeout_ms + server selection
        wait_for(lambda: time.monotonic() - frozen_at >= 6, "the freeze to last 6 s", timeout=10, interval=0.1)
        assert chat.get("/ready").status == 200

        frozen(private_mongo, False)
        wait_ready(worker, timeout=30)
        producer.stop()
        ids = producer.finish()
        wait_for(ctx.drained, "the backlog to drain", timeout=60, interval=0.25)
        assert_exactly_once(ctx.coll, ids)
        assert chat.get("/api/rooms/general/messages", headers=auth).status == 200
        print(f"\nfrozen store reported after {reported_s:.2f} s (bound {REPORT_BOUND_S} s); "
              f"a history request during the freeze answered 503 after {answered_s:.2f} s")
        for h in (worker, chat):
            assert h.stop() == (0, False), h.stderr_tail()
    finally:
        ctx.close()


def consumers(ctx: Ctx) -> dict[str, int]:
    return {c["name"]: c["pending"] for c in ctx.r.xinfo_consumers(ctx.stream, "mongo_workers")}


def test_a_restarted_worker_drains_its_own_pending_entries_at_once(redis_server, private_mongo, start_host, tmp_path):
    """A worker killed while it holds a batch (the store frozen, so the batch
    is surely in flight) comes back under the same default consumer name and
    stores that batch at once, long before claim_idle_ms (60 s) would let
    anyone else claim it; the group has one consumer, not two."""
    ctx = Ctx(redis_server, private_mongo)
    try:
        cfg = ctx.host_config([ctx.ingest_plugin(workers=1, claim_idle_ms=60000, consumer_reap_idle_ms=0,
                                                 consumer_lock_dir=str(tmp_path), **FAST)])
        host = start_host(cfg, "first")
        wait_ready(host)
        frozen(private_mongo, True)
        ids = xadd_many(ctx.r, ctx.stream, [chat_fields(i) for i in range(300)])
        held = wait_for(lambda: {n: p for n, p in consumers(ctx).items() if p > 0}, "a batch held by the worker",
                        timeout=10)
        assert len(held) == 1, held
        (name, _), = held.items()
        assert name.endswith("-s0-0"), name  # <hostname>-s<slot>-<worker>
        host.proc.send_signal(signal.SIGKILL)
        host.proc.wait()
        frozen(private_mongo, False)

        # The store takes the insert it had read before the freeze: the batch
        # is stored but not acknowledged. The restarted worker finds it pending.
        again = start_host(cfg, "again")
        t0 = time.monotonic()
        wait_for(lambda: consumers(ctx) == {name: 0}, "the held batch acknowledged", timeout=15, interval=0.05)
        drained_s = time.monotonic() - t0
        wait_for(ctx.drained, "the rest read and stored", timeout=15, interval=0.1)
        assert again.metrics().total("aurora_ingest_reclaimed_total") == 0  # its own, not claimed
        assert_exactly_once(ctx.coll, ids)
        print(f"\nrestarted worker {name} stored its held batch of {held[name]} after {drained_s:.2f} s")
        assert again.stop() == (0, False), again.stderr_tail()
    finally:
        ctx.close()


def test_consumers_that_are_gone_are_deleted_and_pending_ones_kept(ctx, start_host, tmp_path):
    """Two consumers left by processes that are gone: one with nothing
    pending is deleted once idle past consumer_reap_idle_ms; one that still
    holds an entry is kept (deleting it would lose the entry from the
    group). The live worker stays, although on Redis 7.0 a consumer's idle
    time counts from its last delivery (it is this process's own)."""
    ctx.r.xgroup_create(ctx.stream, "mongo_workers", id="0", mkstream=True)
    ctx.r.execute_command("XGROUP", "CREATECONSUMER", ctx.stream, "mongo_workers", "ghost-empty")
    held = xadd_many(ctx.r, ctx.stream, [chat_fields(0)])
    got = ctx.r.xreadgroup("mongo_workers", "ghost-holding", {ctx.stream: ">"}, count=1)
    assert got and got[0][1][0][0] == held[0]
    assert consumers(ctx) == {"ghost-empty": 0, "ghost-holding": 1}
    host = start_host(ctx.host_config([ctx.ingest_plugin(workers=1, claim_idle_ms=600000, consumer_reap_idle_ms=1500,
                                                         consumer_lock_dir=str(tmp_path), **FAST)]))
    wait_ready(host)
    wait_for(lambda: "ghost-empty" not in consumers(ctx), "the empty ghost deleted", timeout=10, interval=0.1)
    ids = xadd_many(ctx.r, ctx.stream, [chat_fields(i) for i in range(1, 50)])
    wait_for(lambda: ctx.coll.count_documents({}) == len(ids), "the live worker stores", timeout=15)
    # Four more seconds of housekeeping (8 rounds): nothing else goes.
    wait_for(lambda: host.metrics().total("aurora_ingest_consumers_reaped_total") >= 1, "the metric", timeout=5)
    end = time.monotonic() + 4
    while time.monotonic() < end:
        left = consumers(ctx)
        assert left.get("ghost-holding") == 1 and any(n.endswith("-s0-0") for n in left), left
        time.sleep(0.25)  # sampling the group while the monitor runs its rounds, bounded
    assert host.metrics().total("aurora_ingest_consumers_reaped_total") == 1
    assert any("deleted 1 consumer(s)" in line for line in host.stderr_lines()), host.stderr_tail()
    assert host.stop() == (0, False), host.stderr_tail()
