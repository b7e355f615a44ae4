"""Draws servers side by side from the JSON lines run_bench.py appends: p99
latency and server CPU per delivery against the offered rate, one column per
shape (fanout: one room of N; rooms: many small rooms), one line per label.

    .cache/venv/bin/python tests/bench/plot_peers.py --results .cache/bench/peers.jsonl \\
        --out docs/images/peers.png

A run's label is its git_revision field (run_bench.py records it; set
AURORA_GIT_REV=label to name the runs, e.g. "aurora 1a2b3c4" and "centrifugo
v6.9.1"). Several runs of one label, shape and rate are drawn as their median
(the spread is in the results file)."""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402


def load(path: Path) -> dict:
    """(shape, label) -> rate -> list of (p99 ms, us per delivery)."""
    out: dict = defaultdict(lambda: defaultdict(list))
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            o = json.loads(line)
        except json.JSONDecodeError as e:
            raise SystemExit(f"{path}:{n}: not JSON ({e})") from None
        shape, r = o.get("scenario"), o.get("results", {})
        if shape not in ("fanout", "rooms") or "p99_ms" not in r or r.get("lost", 0):
            continue
        out[(shape, o.get("git_revision", "?"))][o["params"]["rate"]].append(
            (r["p99_ms"], r["host_cpu_us_per_delivery"]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    data = load(args.results)
    if not data:
        raise SystemExit(f"no fanout or rooms runs without loss in {args.results}")
    shapes = [s for s in ("fanout", "rooms") if any(k[0] == s for k in data)]
    fig, axes = plt.subplots(2, len(shapes), figsize=(6 * len(shapes), 8), squeeze=False)
    for col, shape in enumerate(shapes):
        for (s, label), by_rate in sorted(data.items()):
            if s != shape:
                continue
            rates = sorted(by_rate)
            p99 = [statistics.median(v[0] for v in by_rate[r]) for r in rates]
            cpu = [statistics.median(v[1] for v in by_rate[r]) for r in rates]
            axes[0][col].plot(rates, p99, marker="o", label=label)
            axes[1][col].plot(rates, cpu, marker="o", label=label)
        what = "one room of 1,000" if shape == "fanout" else "rooms of 5"
        axes[0][col].set_title(f"{shape} ({what}): p99 latency")
        axes[0][col].set_ylabel("p99 ms")
        axes[0][col].set_yscale("log")
        axes[1][col].set_title(f"{shape}: server CPU per delivery")
        axes[1][col].set_ylabel("µs per delivery")
        axes[1][col].set_ylim(bottom=0)
        for ax in (axes[0][col], axes[1][col]):
            ax.set_xlabel("messages/s offered")
            ax.grid(True, alpha=0.3)
            ax.legend()
    fig.suptitle("Same generator (aurora-bench), same machine, 1 node each, Redis on loopback")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
