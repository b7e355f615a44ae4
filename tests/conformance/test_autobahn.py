"""RFC 6455 and RFC 7692 conformance of aurora-host: Autobahn|Testsuite's
fuzzingclient, sections 1-7 and 10 (framing, pings, reserved bits, opcodes,
fragmentation, UTF-8, closing handshake, auto-fragmentation) and the first
case of each permessage-deflate group (every negotiation variant), against
the echo plugin in raw mode, through scripts/autobahn.sh --host BUILD --ci.

The script installs the suite on first use (a Python 2.7 environment in
.cache/autobahn, about a minute), starts the host from AURORA_BUILD_DIR on a
free port and stops it. The test fails on any FAILED case, on a run that did
not finish, or on a host that did not exit 0; the summary table and the
failing cases with Autobahn's reasons are in the failure message. The full
suite (limits/performance and compression too) is one command, given in
tests/conformance/README.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from aurora_host import REPO_ROOT, build_dir  # noqa: E402

SCRIPT = REPO_ROOT / "scripts" / "autobahn.sh"
# Measured: ~60 s to install from PyPI on first use, then ~15 s for the 260
# cases against the Release host. wstest itself is stopped a minute earlier.
DEADLINE_S = 900


def run_script(args: list[str]) -> tuple[int, str]:
    """Runs scripts/autobahn.sh in its own process group; on the deadline the
    whole group (script, wstest, aurora-host) gets SIGTERM, then SIGKILL."""
    proc = subprocess.Popen([str(SCRIPT), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        out += f"\n(stopped after {DEADLINE_S} s)"
    return proc.returncode, out


def test_autobahn_fuzzingclient_ci_sections(tmp_path):
    build = build_dir()
    reports = tmp_path / "reports"
    rc, out = run_script(["--host", str(build), "--ci", "--reports", str(reports),
                          "--timeout", str(DEADLINE_S - 60)])
    print(out)  # the summary: shown with pytest -s or -rA, and on failure
    assert rc == 0, (f"scripts/autobahn.sh --host {build} --ci exited {rc}; "
                     f"report {reports}/index.html:\n{out[-20000:]}")
