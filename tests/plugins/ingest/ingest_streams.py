"""Producing chat-shaped stream entries and checking what reached MongoDB."""

from __future__ import annotations

import datetime
import threading
import time

from bson import ObjectId

from ingest_support import oid


def chat_fields(i: int, room: str = "general", user: int | None = None) -> dict:
    """The chat plugin's field layout (chat_scripts.h)."""
    u = i % 7 if user is None else user
    return {"roomId": room, "userId": oid(u + 1), "text": f"message {i}", "username": f"user{u}"}


def xadd_many(r, stream: str, fields: list[dict], chunk: int = 500) -> list[str]:
    ids = []
    for k in range(0, len(fields), chunk):
        p = r.pipeline(transaction=False)
        for f in fields[k:k + chunk]:
            p.xadd(stream, f)
        ids.extend(p.execute())
    return ids


class SteadyProducer(threading.Thread):
    """XADDs `total` entries at about `rate` per second, in small pipelined
    ticks, until done or stopped."""

    def __init__(self, r, stream: str, total: int, rate: float, tick_s: float = 0.02):
        super().__init__(daemon=True)
        self.r, self.stream, self.total, self.rate, self.tick_s = r, stream, total, rate, tick_s
        self.ids: list[str] = []
        self.error: BaseException | None = None
        self._stop_flag = threading.Event()

    def run(self) -> None:
        try:
            start = time.monotonic()
            while len(self.ids) < self.total and not self._stop_flag.is_set():
                due = min(self.total, int((time.monotonic() - start) * self.rate) + 1)
                n = due - len(self.ids)
                if n > 0:
                    base = len(self.ids)
                    self.ids.extend(xadd_many(self.r, self.stream, [chat_fields(base + j) for j in range(n)]))
                self._stop_flag.wait(self.tick_s)  # pacing the send rate
        except BaseException as e:  # noqa: BLE001 - reported by finish()
            self.error = e

    def finish(self, timeout: float = 120.0) -> list[str]:
        self.join(timeout)
        assert not self.is_alive(), "producer did not finish"
        if self.error:
            raise self.error
        return self.ids

    def stop(self) -> None:
        self._stop_flag.set()


def assert_exactly_once(coll, expected_ids: list[str]) -> None:
    """One document per stream id: none missing, none duplicated, none extra."""
    got = [d["streamId"] for d in coll.find({}, {"streamId": 1, "_id": 0})]
    missing = set(expected_ids) - set(got)
    extra = set(got) - set(expected_ids)
    dups = len(got) - len(set(got))
    assert (len(missing), dups, len(extra)) == (0, 0, 0), \
        f"{len(missing)} lost (e.g. {sorted(missing)[:3]}), {dups} duplicated, {len(extra)} unexpected"
    assert len(got) == len(expected_ids)


def assert_seed_schema(coll, entries: dict[str, dict]) -> None:
    """Every document has exactly the seed's fields (+ streamId) with the
    entry's values: userId an ObjectId, createdAt the id's milliseconds."""
    want_keys = {"_id", "roomId", "userId", "username", "text", "status", "attachments", "createdAt",
                 "updatedAt", "streamId"}
    n = 0
    for d in coll.find({}):
        n += 1
        assert set(d) == want_keys, d
        f = entries[d["streamId"]]
        ms = int(d["streamId"].split("-")[0])
        created = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc).replace(tzinfo=None)
        assert (d["roomId"], d["userId"], d["username"], d["text"]) == \
            (f["roomId"], ObjectId(f["userId"]), f["username"], f["text"]), d
        assert d["status"] == "sent" and d["attachments"] == [], d
        assert d["createdAt"] == created and d["updatedAt"] == created, d
    assert n == len(entries)
