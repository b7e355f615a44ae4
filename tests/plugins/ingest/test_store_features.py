"""docs/ingest.md's table of what each FerretDB backend has, checked against
the backends: every row is probed on SQLite and on PostgreSQL and must say
what the server does. A FerretDB upgrade that adds or drops a feature fails
here until the table (and what Aurora does about it) is brought in step."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import gridfs
import pymongo
import pytest
from pymongo.errors import AutoReconnect, OperationFailure

DOC = Path(__file__).resolve().parents[3] / "docs" / "ingest.md"
HEADING = "### What each backend has"


def table() -> dict[str, dict[str, bool]]:
    """{feature: {"sqlite": bool, "postgresql": bool}} from the doc."""
    text = DOC.read_text()
    assert HEADING in text, f"{DOC} lost its section {HEADING!r}"
    rows, started = {}, False
    for line in text[text.index(HEADING):].splitlines()[1:]:
        if line.startswith("|"):
            started = True
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cells[0] in ("feature", "") or set(cells[0]) <= {"-"}:
                continue
            def yes(cell: str) -> bool:
                assert re.match(r"^(yes|no)\b", cell), f"{cells[0]}: a cell must start with yes or no: {cell!r}"
                return cell.startswith("yes")
            rows[cells[0]] = {"sqlite": yes(cells[1]), "postgresql": yes(cells[2])}
        elif started:
            break
    return rows


def supported(call) -> bool:
    try:
        call()
        return True
    except OperationFailure:
        return False


def several_indexes_twice(db) -> bool:
    cmd = {"createIndexes": "m", "indexes": [{"key": {"roomId": 1, "createdAt": -1}, "name": "a"},
                                             {"key": {"userId": 1}, "name": "b"}]}
    db.command(cmd)
    try:
        db.command(cmd)  # FerretDB 1.24 panics here and drops the connection
        return True
    except AutoReconnect:
        return False


def pushdown(db, what: str, filter_: dict, sort: dict | None = None) -> bool:
    cmd = {"find": "m", "filter": filter_, "limit": 5}
    if sort:
        cmd["sort"] = sort
    return bool(db.command({"explain": cmd}).get(what))


def duplicates_per_document(db) -> bool:
    db.u.create_index("streamId", unique=True)
    reply = db.command({"insert": "u", "documents": [{"streamId": "1-0"}, {"streamId": "1-0"}, {"streamId": "2-0"}],
                        "ordered": False})
    return reply["n"] == 2 and [(e["index"], e["code"]) for e in reply.get("writeErrors", [])] == [(1, 11000)]


def gridfs_round_trip(db) -> bool:
    fs = gridfs.GridFS(db)
    data = bytes(range(256)) * 1200  # several chunks
    return fs.get(fs.put(data, filename="f.bin")).read() == data


def transaction(client, db) -> bool:
    with client.start_session() as s:
        return supported(lambda: s.with_transaction(lambda ss: db.m.insert_one({"t": 1}, session=ss)))


PROBES = {
    "`$text` indexes and queries": lambda c, db: supported(lambda: db.m.create_index([("text", "text")]))
    and supported(lambda: list(db.m.find({"$text": {"$search": "hello"}}))),
    "`$regex` queries": lambda c, db: db.m.count_documents({"text": {"$regex": "world [12]$"}}) == 2,
    "several indexes in one `createIndexes` that exist already": lambda c, db: several_indexes_twice(db),
    "unique indexes, one duplicate-key error (11000) per document in an unordered insert":
        lambda c, db: duplicates_per_document(db),
    "filter pushdown of `_id`": lambda c, db: pushdown(db, "filterPushdown", {"_id": "x"}),
    "filter pushdown of `roomId`": lambda c, db: pushdown(db, "filterPushdown", {"roomId": "r1"}),
    "sort pushdown": lambda c, db: pushdown(db, "sortPushdown", {"roomId": "r1"}, {"createdAt": -1}),
    "TTL indexes (`expireAfterSeconds`)":
        lambda c, db: supported(lambda: db.m.create_index("createdAt", expireAfterSeconds=60)),
    "partial indexes": lambda c, db: supported(
        lambda: db.m.create_index("userId", partialFilterExpression={"userId": {"$exists": True}})),
    "hashed indexes": lambda c, db: supported(lambda: db.m.create_index([("roomId", "hashed")])),
    "sharding (`shardCollection`)": lambda c, db: supported(
        lambda: c.admin.command({"shardCollection": f"{db.name}.m", "key": {"roomId": 1, "streamId": 1}})),
    "transactions": transaction,
    "change streams": lambda c, db: supported(lambda: db.m.watch(max_await_time_ms=50).try_next()),
    "collation": lambda c, db: supported(lambda: list(db.m.find({}, collation={"locale": "en"}))),
    "GridFS (files and chunks through a driver)": lambda c, db: gridfs_round_trip(db),
}


def test_the_table_lists_every_probe_and_nothing_else():
    assert set(table()) == set(PROBES), (set(table()) ^ set(PROBES))


@pytest.mark.parametrize("feature", sorted(PROBES))
def test_the_backend_does_what_the_table_says(mongo_server, feature):
    name = f"features_{uuid.uuid4().hex[:8]}"
    client = pymongo.MongoClient(mongo_server.url(name), serverSelectionTimeoutMS=5000, socketTimeoutMS=10000)
    try:
        db = client[name]
        db.m.insert_many([{"roomId": f"r{i % 3}", "streamId": f"{1000 + i}-0", "createdAt": i,
                           "text": f"hello world {i}"} for i in range(9)])
        got = PROBES[feature](client, db)
        want = table()[feature][mongo_server.backend]
        assert got == want, f"{feature} on {mongo_server.backend}: the server says {got}, docs/ingest.md says {want}"
    finally:
        client.close()  # a fresh client: the probe may have left this one's connection dropped
        with pymongo.MongoClient(mongo_server.url(name), serverSelectionTimeoutMS=5000) as c:
            c.drop_database(name)
