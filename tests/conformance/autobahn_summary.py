"""Summarises an Autobahn|Testsuite fuzzingclient report folder (index.json
and the per-case JSON files next to it) for scripts/autobahn.sh.

Prints, per section (the first number of the case id), how many cases ended
OK / NON-STRICT / INFORMATIONAL / UNIMPLEMENTED / FAILED, plus CLOSE: cases
whose closing handshake went wrong (behaviorClose FAILED, UNCLEAN or WRONG
CODE; Autobahn does not count these as failures, so neither does the exit
status, but they are listed). Then every FAILED and UNIMPLEMENTED case with
its description and Autobahn's result line, so a developer sees why without
opening the HTML report.

    python3 tests/conformance/autobahn_summary.py REPORTS_DIR [--expected N]
        [--allow-unimplemented] [--wall-seconds S]

Exit status: 0 if every case ran and none FAILED (nor was UNIMPLEMENTED,
unless allowed), 1 otherwise, 2 if the report cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections import Counter, defaultdict
from pathlib import Path

COLUMNS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
# Autobahn's other verdicts ("WRONG CODE", "UNCLEAN", "NO_CLOSE", ...) are all
# shown as "Fail" in its HTML report: count them as FAILED.
BAD_CLOSE = ("FAILED", "UNCLEAN", "WRONG CODE")

SECTION_NAMES = {
    "1": "Framing", "2": "Pings/Pongs", "3": "Reserved Bits", "4": "Opcodes",
    "5": "Fragmentation", "6": "UTF-8 Handling", "7": "Close Handling",
    "9": "Limits/Performance", "10": "Misc", "12": "Compression (messages)",
    "13": "Compression (parameters)",
}


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(p) for p in case_id.split("."))


def verdict(behavior: str) -> str:
    return behavior if behavior in COLUMNS else "FAILED"


def load(reports: Path) -> dict[str, dict]:
    """case id -> index entry with the per-case report merged in."""
    index = json.loads((reports / "index.json").read_text())
    if not index:
        raise ValueError("no case ran (could wstest connect? see wstest.log)")
    if len(index) != 1:
        raise ValueError(f"expected one agent in index.json, found {sorted(index)}")
    (agent, cases), = index.items()
    out = {}
    for case_id, entry in cases.items():
        detail = {}
        report = reports / entry.get("reportfile", "")
        if entry.get("reportfile") and report.is_file():
            detail = json.loads(report.read_text())
        out[case_id] = {**detail, **entry, "agent": agent}
    return out


def one_line(text) -> str:
    return " ".join(str(text or "").split())


def print_table(cases: dict[str, dict], wall_seconds: float | None) -> None:
    by_section: dict[str, Counter] = defaultdict(Counter)
    for case_id, c in cases.items():
        section = case_id.split(".")[0]
        by_section[section][verdict(c["behavior"])] += 1
        if c.get("behaviorClose") in BAD_CLOSE:
            by_section[section]["CLOSE"] += 1
    heads = ("section", *COLUMNS, "CLOSE", "cases", "seconds")
    widths = (27, 4, 10, 13, 13, 6, 5, 5, 7)
    row = "  ".join(f"{{:>{w}}}" if i else f"{{:<{w}}}" for i, w in enumerate(widths))
    print(row.format(*heads))
    total: Counter = Counter()
    for section in sorted(by_section, key=int):
        counts = by_section[section]
        seconds = sum(c.get("duration", 0) for cid, c in cases.items() if cid.split(".")[0] == section) / 1000
        n = sum(counts[k] for k in COLUMNS)
        name = f"{section} {SECTION_NAMES.get(section, '')}".strip()
        print(row.format(name, *(counts[k] for k in COLUMNS), counts["CLOSE"], n, f"{seconds:.1f}"))
        total.update(counts)
        total["seconds"] += seconds
    n = sum(total[k] for k in COLUMNS)
    print(row.format("total", *(total[k] for k in COLUMNS), total["CLOSE"], n, f"{total['seconds']:.1f}"))
    if wall_seconds is not None:
        print(f"wall time {wall_seconds:.1f} s (case durations above add up to {total['seconds']:.1f} s)")


def describe(case_id: str, c: dict, close: bool = False) -> str:
    head = f"  {case_id:<10} {c['behavior']}/{c.get('behaviorClose', '?')}, close code {c.get('remoteCloseCode')}"
    lines = [head]
    if c.get("description"):
        lines.append(textwrap.shorten("case: " + one_line(c["description"]), 160))
    if c.get("expectation"):
        lines.append(textwrap.shorten("wants: " + one_line(c["expectation"]), 160))
    result = c.get("resultClose") if close else c.get("result")
    if result:
        lines.append(textwrap.shorten("got: " + one_line(result), 240))
    if c.get("reportfile"):
        lines.append("report: " + c["reportfile"].replace(".json", ".html"))
    return "\n".join([lines[0]] + ["               " + ln for ln in lines[1:]])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("reports", type=Path)
    ap.add_argument("--expected", type=int, help="how many cases were asked for")
    ap.add_argument("--allow-unimplemented", action="store_true")
    ap.add_argument("--wall-seconds", type=float)
    args = ap.parse_args()
    try:
        cases = load(args.reports)
    except (OSError, ValueError) as e:
        print(f"autobahn: cannot read the report in {args.reports}: {e}", file=sys.stderr)
        return 2

    print_table(cases, args.wall_seconds)
    ids = sorted(cases, key=case_key)
    failed = [i for i in ids if verdict(cases[i]["behavior"]) == "FAILED"]
    unimplemented = [i for i in ids if cases[i]["behavior"] == "UNIMPLEMENTED"]
    bad_close = [i for i in ids if cases[i].get("behaviorClose") in BAD_CLOSE and i not in failed]
    for title, chosen, close in (("FAILED", failed, False), ("UNIMPLEMENTED", unimplemented, False),
                                 ("closing handshake not OK (not counted as failures)", bad_close, True)):
        if chosen:
            print(f"\n{title}: {len(chosen)} case(s)")
            for i in chosen:
                print(describe(i, cases[i], close))

    ok = not failed and (args.allow_unimplemented or not unimplemented)
    if args.expected is not None and len(cases) != args.expected:
        print(f"\nautobahn: {args.expected} cases were asked for, the report has {len(cases)} "
              f"(the run stopped early: the server went away?)")
        ok = False
    print(f"\nreport: {args.reports / 'index.html'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
