"""Draws benchmark results into a PNG, from the JSON lines run_bench.py appends.

    .cache/venv/bin/python tests/bench/plot_bench.py --results .cache/bench/results.jsonl \\
        --out docs/images/fanout-sweep.png [--sweep-id ID] [--runs 3,7]

Three panels, from one fanout sweep (default: the latest in the file):
  1. latency CDF: one line per run (each offered rate; or the --runs given,
     by line number in the results file), log-x ms, p99 marked;
  2. throughput against rate: deliveries/s achieved against offered
     (messages/s x subscribers), the line of no loss dashed, runs with loss
     marked in red;
  3. p99 against deliveries/s achieved (log-y), with the sweep's p99 limit
     (recorded by run_bench.py --p99-ms) as a line and the highest rate that
     met it (no loss, p99 under the limit) starred.
The title carries the parameters, the git revision and the machine."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

DEFAULT_RESULTS = Path(__file__).resolve().parents[2] / ".cache" / "bench" / "results.jsonl"
PLAIN = ticker.FuncFormatter(lambda v, _: f"{v:g}")  # 0.5, 10, 200 rather than 10^1
THOUSANDS = ticker.FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v else "0")


def read_results(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-empty line; exits naming a bad line."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append((n, json.loads(line)))
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{n}: not JSON ({e})") from None
    return out


def pick_sweep(runs: list[tuple[int, dict]], sweep_id: str | None) -> tuple[str, list[dict]]:
    """The runs of one sweep, by offered rate; the latest sweep when no id is given."""
    if sweep_id is None:
        ids = [o["sweep_id"] for _, o in runs if o.get("sweep_id")]
        if not ids:
            raise SystemExit("no sweep in the results file (run_bench.py --sweep RATES writes one)")
        sweep_id = ids[-1]
    rows = [o for _, o in runs if o.get("sweep_id") == sweep_id]
    if not rows:
        raise SystemExit(f"no runs with sweep_id {sweep_id}")
    return sweep_id, sorted(rows, key=lambda o: o["params"]["rate"])


def label(o: dict) -> str:
    p = o["params"]
    if o["scenario"] in ("fanout", "rooms"):
        return f"{p['rate']:g} msg/s (p99 {o['results']['p99_ms']:.1f} ms)"
    return o["scenario"]


def draw_cdf(ax, runs: list[dict]) -> None:
    cmap = plt.get_cmap("viridis")
    drawn = [o for o in runs if o.get("latency_cdf")]
    for i, o in enumerate(drawn):
        ms = [max(p[0], 1e-3) for p in o["latency_cdf"]]  # log axis: no zeros
        frac = [p[1] for p in o["latency_cdf"]]
        ax.step(ms, frac, where="post", color=cmap(i / max(1, len(drawn) - 1) * 0.9), label=label(o))
    ax.axhline(0.99, color="grey", linestyle=":", linewidth=1)
    ax.text(0.02, 0.985, "p99", transform=ax.get_yaxis_transform(), va="top", color="grey")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(PLAIN)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("latency, ms (log scale)")
    ax.set_ylabel("fraction of deliveries at or under")
    ax.set_title("latency CDF")
    ax.grid(True, which="both", alpha=0.3)
    if drawn:
        ax.legend(fontsize="small", loc="lower right")
    else:
        ax.text(0.5, 0.5, "no latency data", ha="center", transform=ax.transAxes)


def draw_throughput(ax, rows: list[dict]) -> None:
    offered = [o["params"]["rate"] * o["params"]["subscribers"] for o in rows]
    achieved = [o["results"]["deliveries_per_s"] for o in rows]
    top = max(offered + achieved) * 1.05
    ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label="no loss (achieved = offered)")
    ax.plot(offered, achieved, marker="o", color="#2563eb", label="achieved")
    for x, y, o in zip(offered, achieved, rows):
        if o["results"]["lost"]:
            ax.plot([x], [y], marker="x", color="red", markersize=10)
            ax.annotate(f"lost {o['results']['lost']}", (x, y), textcoords="offset points", xytext=(4, -12),
                        color="red", fontsize="small")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.xaxis.set_major_formatter(THOUSANDS)
    ax.yaxis.set_major_formatter(THOUSANDS)
    ax.set_xlabel("deliveries/s offered (messages/s x subscribers)")
    ax.set_ylabel("deliveries/s achieved")
    ax.set_title("throughput against rate")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")


def draw_p99(ax, rows: list[dict], p99_limit: float) -> None:
    x = [o["results"]["deliveries_per_s"] for o in rows]
    y = [max(o["results"]["p99_ms"], 1e-3) for o in rows]
    ax.plot(x, y, marker="o", color="#2563eb", label="p99")
    for xi, yi, o in zip(x, y, rows):
        ax.annotate(f"{yi:.1f}", (xi, yi), textcoords="offset points", xytext=(4, 5), fontsize="small")
        if o["results"]["lost"]:
            ax.plot([xi], [yi], marker="x", color="red", markersize=10)
    ax.axhline(p99_limit, color="red", linestyle="--", linewidth=1, label=f"p99 limit {p99_limit:g} ms")
    ok = [o for o in rows if o["results"]["lost"] == 0 and o["results"]["p99_ms"] <= p99_limit]
    if ok:
        best = max(ok, key=lambda o: o["results"]["deliveries_per_s"])
        ax.plot([best["results"]["deliveries_per_s"]], [max(best["results"]["p99_ms"], 1e-3)], marker="*",
                markersize=16, color="#f59e0b", linestyle="none",
                label=f"highest meeting it: {best['results']['deliveries_per_s']:,.0f}/s")
    ax.set_yscale("log")
    ax.set_ylim(min(y + [p99_limit]) / 2, max(y + [p99_limit]) * 3)
    ax.yaxis.set_major_formatter(PLAIN)
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlim(0, max(x) * 1.1)
    ax.xaxis.set_major_formatter(THOUSANDS)
    ax.set_xlabel("deliveries/s achieved")
    ax.set_ylabel("p99 latency, ms (log scale)")
    ax.set_title("p99 against throughput")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")


def title(sweep_id: str, rows: list[dict]) -> str:
    o = rows[0]
    p, m = o["params"], o.get("machine", {})
    revs = sorted({r.get("git_revision", "?") for r in rows})
    return (f"{o['scenario']} sweep {sweep_id}: {p['subscribers']} subscribers over {p['replicas']} replica(s), "
            f"{p['publishers']} publisher(s), {p['duration']:g} s per rate\n"
            f"git {', '.join(revs)}; {m.get('nproc', '?')} x {m.get('cpu_model', '?')}, {m.get('kernel', '?')}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    ap.add_argument("--out", type=Path, required=True, help="the PNG to write")
    ap.add_argument("--sweep-id", help="default: the latest sweep in the file")
    ap.add_argument("--runs", help="comma-separated line numbers of the results file for the CDF panel "
                    "(default: the sweep's runs)")
    ap.add_argument("--p99-ms", type=float, help="the p99 limit line (default: the one the sweep recorded, else 50)")
    args = ap.parse_args()

    runs = read_results(args.results)
    sweep_id, rows = pick_sweep(runs, args.sweep_id)
    cdf_runs = rows
    if args.runs:
        by_line = dict(runs)
        wanted = [int(n) for n in args.runs.split(",")]
        missing = [n for n in wanted if n not in by_line]
        if missing:
            raise SystemExit(f"no result on line(s) {missing} of {args.results}")
        cdf_runs = [by_line[n] for n in wanted]
    p99_limit = args.p99_ms if args.p99_ms is not None else rows[0].get("sweep_p99_limit_ms", 50.0)

    fig, axes = plt.subplots(1, 3, figsize=(18, 5.5), constrained_layout=True)
    draw_cdf(axes[0], cdf_runs)
    draw_throughput(axes[1], rows)
    draw_p99(axes[2], rows, p99_limit)
    fig.suptitle(title(sweep_id, rows), fontsize="medium")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    plt.close(fig)
    print(f"plot: {args.out} (sweep {sweep_id}, {len(rows)} rates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
