#!/usr/bin/env python3
"""What keeping a permessage-deflate context costs per connection, in memory.

A context kept between messages ("context takeover", RFC 7692 §7.1.1) is a
zlib stream that lives as long as the connection. aurora-host keeps none on
its side (it always answers server_no_context_takeover, so a broadcast is
compressed once for everyone) and, by default, asks clients not to keep
theirs (client_no_context_takeover, so one shared inflater serves every
client). This program measures what the alternatives would cost: N zlib
streams, each fed M chat messages, and the RSS they add per stream. zlib is
the same library the host links (Python's zlib module wraps it).

    .cache/venv/bin/python tests/bench/compression_memory.py [--streams 2000] [--messages 1,50]

The host-side number for compression.client_context_takeover = true comes
from the idle benchmark (docs/performance.md, "Compression").
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import zlib

WORDS = ("the meeting moved to three o'clock can you send me the notes from yesterday thanks see you soon "
         "deploy is green again lunch at noon").split()


def rss_kb() -> int:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def message(i: int) -> bytes:
    text = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(12 + i % 20))
    return ('{"type":"message","id":"1733270000000-%d","room":"general","user":"u%d","text":"%s"}'
            % (i, i % 97, text)).encode()


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


def measure(kind: str, streams: int, messages: int) -> float:
    base = rss_kb()
    keep = []
    for s in range(streams):
        if kind == "deflate":  # what the server would keep with server context takeover
            z = zlib.compressobj(1, zlib.DEFLATED, -15, 8)
            for i in range(messages):
                z.compress(message(s + i))
                z.flush(zlib.Z_SYNC_FLUSH)
        else:  # what the server keeps per client with client context takeover
            z = zlib.decompressobj(-15)
            for i in range(messages):
                z.decompress(raw_deflate(message(s + i)) + b"\x00\x00\xff\xff")
        keep.append(z)
    return (rss_kb() - base) / streams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=2000)
    ap.add_argument("--messages", default="1,50", help="comma-separated messages per stream")
    ap.add_argument("--one", nargs=2, metavar=("KIND", "MESSAGES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # one measurement, in a fresh process (freed memory of another would be reused)
        print(f"{measure(args.one[0], args.streams, int(args.one[1])):.1f}")
        return
    print(f"command: tests/bench/compression_memory.py --streams {args.streams} --messages {args.messages}")
    print(f"zlib {zlib.ZLIB_RUNTIME_VERSION}, window 15 bits, deflate level 1 memLevel 8")
    for m in (int(x) for x in args.messages.split(",")):
        for kind, label in (("deflate", "server context takeover (a deflate stream per connection)"),
                            ("inflate", "client context takeover (an inflate stream per connection)")):
            out = subprocess.run([sys.executable, __file__, "--streams", str(args.streams), "--one", kind, str(m)],
                                 capture_output=True, text=True, check=True).stdout.strip()
            print(f"{label}, after {m} message(s): {out} KB per connection")


if __name__ == "__main__":
    main()
