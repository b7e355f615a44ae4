"""Reading a plugin's descriptor from Python without loading it into pytest.

A plugin built with sanitizers (AURORA_SANITIZE) cannot be dlopen'ed into an
uninstrumented Python ("ASan runtime does not come first"), so the read
happens in a child Python that preloads the sanitizer runtimes the library
needs. The same code path runs for plain builds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import ctypes, json, os, sys
class D(ctypes.Structure):  # the v1.0 prefix of aurora_plugin
    _fields_ = [("struct_size", ctypes.c_uint32), ("abi_major", ctypes.c_uint16),
                ("abi_minor", ctypes.c_uint16), ("name", ctypes.c_char_p)]
try:
    lib = ctypes.CDLL(sys.argv[1], mode=os.RTLD_NOW | os.RTLD_LOCAL)
except OSError as e:
    print(json.dumps({"error": str(e)})); sys.exit(0)
entry = lib.aurora_plugin_entry
entry.restype = ctypes.POINTER(D)
d = entry().contents
print(json.dumps({"struct_size": d.struct_size, "abi_major": d.abi_major, "abi_minor": d.abi_minor,
                  "name": d.name.decode() if d.name else None}))
"""


def _sanitizer_preload(lib: Path) -> str:
    """The sanitizer runtimes `lib` needs (from its dynamic section), as an LD_PRELOAD value."""
    out = subprocess.run(["ldd", str(lib)], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].startswith(("libasan", "libubsan", "libtsan")) and "=>" in parts:
            found.append(parts[parts.index("=>") + 1])
    return ":".join(found)


def plugin_descriptor(lib: Path) -> dict:
    """{"struct_size", "abi_major", "abi_minor", "name"} or {"error": dlopen's message}."""
    env = dict(os.environ)
    preload = _sanitizer_preload(lib)
    if preload:
        env["LD_PRELOAD"] = preload
        env["ASAN_OPTIONS"] = "detect_leaks=0"  # Python itself is not leak-clean
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(lib)], capture_output=True, text=True, env=env,
                          timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"reading the descriptor of {lib} failed (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)


def python_child_env(**extra: str) -> dict:
    """The environment for a Python child process that imports the aurora
    module: in a sanitizer leg (tests/conftest.py) the sanitizer runtime is
    preloaded again, with Python's own leaks ignored."""
    env = {**os.environ, **extra}
    preload = os.environ.get("AURORA_PYTHON_PRELOAD")
    if preload:
        env["LD_PRELOAD"] = preload
        env["ASAN_OPTIONS"] = "detect_leaks=0"
    return env
