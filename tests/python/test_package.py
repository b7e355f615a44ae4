"""The package as a user gets it: pip install into a fresh virtual
environment, import, and the stubs type-check the samples (mypy)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from aurora_py_support import PY_BUILD, REPO

PIP_TIMEOUT_S = 1200  # one full configure + build of _core at -j1


def test_pip_install_into_a_fresh_venv(tmp_path):
    venv = tmp_path / "venv"
    # The interpreter behind the project's venv (a venv's own python would nest).
    base = subprocess.run([sys.executable, "-c", "import sys; print(sys.base_prefix)"], capture_output=True,
                          text=True, check=True).stdout.strip()
    subprocess.run([os.path.join(base, "bin", "python3"), "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    env = {**os.environ, "CMAKE_BUILD_PARALLEL_LEVEL": os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "1")}
    env.pop("PYTHONPATH", None)
    t0 = time.monotonic()
    out = subprocess.run([str(py), "-m", "pip", "install", str(REPO / "bindings" / "python")], capture_output=True,
                         text=True, timeout=PIP_TIMEOUT_S, env=env, cwd=tmp_path)
    took = time.monotonic() - t0
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    print(f"pip install ./bindings/python took {took:.0f} s")
    got = subprocess.run([str(py), "-c", "import aurora; print(aurora.__version__, aurora.ABI_VERSION)"],
                         capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert (got.returncode, got.stdout.strip()) == (0, "0.1.0 1.3"), got.stderr
    # The installed package is complete: stubs, markers, the policy API.
    site = subprocess.run([str(py), "-c", "import aurora, aurora_policy, os; "
                           "print(os.path.dirname(aurora.__file__)); print(aurora_policy.allow().kind)"],
                          capture_output=True, text=True, env=env, cwd=tmp_path).stdout.split()
    assert site[1] == "allow"
    assert {"_core.pyi", "py.typed", "jwt.py", "client.py", "host.py", "server.py"} <= set(os.listdir(site[0]))


def test_stubs_type_check_the_samples():
    env = {**os.environ, "MYPYPATH": str(PY_BUILD)}
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                          "samples/python/profanity_policy.py", "samples/python/test_echo_plugin.py",
                          "bindings/python/src/aurora", "bindings/python/src/aurora_policy"],
                         capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success: no issues found in 9 source files" in out.stdout


def test_profanity_policy_is_at_most_ten_lines_of_policy():
    src = (REPO / "samples" / "python" / "profanity_policy.py").read_text()
    body = src.split('"""', 2)[2]  # after the docstring
    code = [ln for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("#")
            and not ln.startswith(("import", "from"))]
    assert len(code) <= 10, code
