#!/usr/bin/env python3
"""What one history page costs on each FerretDB backend as the messages
collection grows.

For each backend (a real FerretDB on SQLite, and on a PostgreSQL started
for the run) and each collection size, it stores documents of the seed's
shape spread over `--rooms` rooms with the indexes ingest makes, then times
the query a history page runs (`plugins/ingest/history_reader.cpp`: one
room, sorted by `createdAt` descending, limit 50, the same projection) and
the room list's unread count (`count_documents` on one room). It prints the
median and the 90th percentile of `--queries` runs of each.

    .cache/venv/bin/python tests/bench/store_bench.py --sizes 10000,50000,100000
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

import pymongo  # noqa: E402
from bson import ObjectId  # noqa: E402

from real_servers import FerretDbServer, PostgresServer  # noqa: E402

PROJECTION = {"streamId": 1, "roomId": 1, "username": 1, "userId": 1, "text": 1}
EPOCH_MS = 1_790_000_000_000


def fill(coll, start: int, stop: int, rooms: int) -> None:
    for k in range(start, stop, 5000):
        docs = []
        for i in range(k, min(stop, k + 5000)):
            created = datetime.datetime.fromtimestamp((EPOCH_MS + i) / 1000, tz=datetime.timezone.utc)
            docs.append({"roomId": f"room{i % rooms}", "userId": ObjectId(), "username": f"user{i % 97}",
                         "text": f"message {i} " + "x" * 60, "status": "sent", "attachments": [],
                         "createdAt": created, "updatedAt": created, "streamId": f"{EPOCH_MS + i}-0"})
        coll.insert_many(docs, ordered=False)


def timed(call, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.9 * (len(samples) - 1))]


def run(url: str, sizes: list[int], rooms: int, queries: int) -> list[tuple[int, float, float, float, float]]:
    client = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000, socketTimeoutMS=120000)
    coll = client["storebench"]["messages"]
    for name, key, unique in (("streamId_1", [("streamId", 1)], True),
                              ("roomId_1_createdAt_-1", [("roomId", 1), ("createdAt", -1)], False),
                              ("userId_1", [("userId", 1)], False)):
        coll.create_index(key, name=name, unique=unique)
    out, have = [], 0
    for size in sizes:
        fill(coll, have, size, rooms)
        have = size
        room = f"room{rooms // 2}"
        page = timed(lambda: list(coll.find({"roomId": room}, PROJECTION).sort("createdAt", -1).limit(50)), queries)
        since = datetime.datetime.fromtimestamp((EPOCH_MS + size - 500) / 1000, tz=datetime.timezone.utc)
        unread = timed(lambda: coll.count_documents({"roomId": room, "createdAt": {"$gt": since}}, limit=100),
                       queries)
        out.append((size, *page, *unread))
    client.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,50000,100000", help="collection sizes, comma-separated, increasing")
    ap.add_argument("--rooms", type=int, default=200, help="rooms the documents are spread over")
    ap.add_argument("--queries", type=int, default=20, help="timed runs of each query per size")
    ap.add_argument("--backends", default="sqlite,postgresql")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if sizes != sorted(sizes) or sizes[0] <= 0:
        ap.error("--sizes must be positive and increasing")
    print("command:", shlex.join([".cache/venv/bin/python", "tests/bench/store_bench.py"] + sys.argv[1:]), flush=True)
    print(f"{'backend':<11} {'messages':>9} {'page p50 ms':>12} {'page p90 ms':>12} {'unread p50 ms':>14} "
          f"{'unread p90 ms':>14}")
    for backend in args.backends.split(","):
        with contextlib.ExitStack() as stack:
            if backend == "postgresql":
                pg = stack.enter_context(PostgresServer.start())
                store = stack.enter_context(FerretDbServer.start(postgresql_url=pg.create_database("bench")))
            elif backend == "sqlite":
                store = stack.enter_context(FerretDbServer.start())
            else:
                ap.error(f"unknown backend {backend}")
            for size, p50, p90, u50, u90 in run(store.url("storebench"), sizes, args.rooms, args.queries):
                print(f"{backend:<11} {size:>9,} {p50:>12.1f} {p90:>12.1f} {u50:>14.1f} {u90:>14.1f}", flush=True)


if __name__ == "__main__":
    main()
