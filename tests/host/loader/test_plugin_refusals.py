"""The loader refuses bad plugins and bad configs: exit code 2, and stderr
names the file and the reason (DESIGN §2, §8; docs/configuration.md).

Each plugin fixture (tests/host/loader/*.c) is wrong in exactly one way. The
config gives it by "path", so the error must name that path. Keys are named
as docs/configuration.md names them: dotted, e.g. `listen.port`.
"""

from __future__ import annotations

import json
import os
import subprocess
import re
from pathlib import Path

import pytest
from native import plugin_descriptor  # tests/support

REPO_ROOT = Path(__file__).resolve().parents[3]


def host_abi() -> tuple[int, int]:
    """AURORA_ABI_MAJOR/MINOR as the host is built, from the public header."""
    text = (REPO_ROOT / "sdk/include/aurora/common.h").read_text()
    major = re.search(r"#define AURORA_ABI_MAJOR (\d+)", text)
    minor = re.search(r"#define AURORA_ABI_MINOR (\d+)", text)
    assert major and minor, "AURORA_ABI_MAJOR/MINOR not found in sdk/include/aurora/common.h"
    return int(major.group(1)), int(minor.group(1))


MAJOR, MINOR = host_abi()
V1_0_SIZE = 104  # AURORA_PLUGIN_V1_0_SIZE on LP64 (pinned by tests/sdk/abi_layout_test.c)
EXIT_BAD_CONFIG = 2
# A config that binds nothing fixed, so that checks can run side by side.
BASE = {"listen": {"host": "127.0.0.1", "port": 0}}


def mentions_version(text: str, version: str) -> bool:
    """True if `version` ("1.0") appears as a version, not inside "11.0" or "1.0.3"."""
    return re.search(rf"(?<![\d.]){re.escape(version)}(?!\.?\d)", text) is not None


def describe(result) -> str:
    return (f"exit code {result.returncode}\n--- stderr ---\n{result.stderr}"
            f"--- stdout ---\n{result.stdout}")


def assert_refused(result, *must_mention: str) -> None:
    assert result.returncode == EXIT_BAD_CONFIG, describe(result)
    for word in must_mention:
        assert word in result.stderr, f"stderr should mention {word!r}\n{describe(result)}"
    assert "config ok" not in result.stdout, describe(result)


def assert_names_file(result, path: Path) -> None:
    assert str(path) in result.stderr or os.path.realpath(path) in result.stderr, \
        f"stderr should name the file {path}\n{describe(result)}"


def plugin_config(name: str, path: Path) -> dict:
    return {**BASE, "plugins": [{"name": name, "path": str(path)}]}


# fixture -> what the refusal must mention besides the file. Versions are
# checked separately (mentions_version), everything else as a substring.
REFUSALS = {
    "wrong_major": {"versions": ["2.0", f"{MAJOR}.{MINOR}"], "words": []},
    "newer_minor": {"versions": [f"{MAJOR}.{MINOR + 1}", f"{MAJOR}.{MINOR}"], "words": []},
    "no_entry": {"versions": [], "words": ["aurora_plugin_entry"]},
    "null_descriptor": {"versions": [], "words": ["aurora_plugin_entry"]},
    "null_name": {"versions": [], "words": ["name"]},
    "bad_name": {"versions": [], "words": ["name", "Bad Name!"]},
    "small_struct": {"versions": [], "words": ["struct_size"]},
    "missing_dep": {"versions": [], "words": ["libaurora_loader_gone.so", "cannot open shared object file"]},
    "init_fails": {"versions": [], "words": ["this fixture always fails its init"]},
}


@pytest.mark.parametrize("fixture", sorted(REFUSALS))
def test_bad_plugin_is_refused(fixture, loader_fixture, check_config):
    path = loader_fixture(fixture)
    result = check_config(plugin_config(fixture, path))
    assert_refused(result, *REFUSALS[fixture]["words"])
    assert_names_file(result, path)
    for version in REFUSALS[fixture]["versions"]:
        assert mentions_version(result.stderr, version), \
            f"stderr should name ABI version {version}\n{describe(result)}"


def test_init_fails_gets_no_shutdown(loader_fixture, check_config):
    # init_fails.so aborts (exit code -6) if its shutdown hook is called.
    result = check_config(plugin_config("init_fails", loader_fixture("init_fails")))
    assert "BUG: shutdown called" not in result.stderr, describe(result)
    assert result.returncode == EXIT_BAD_CONFIG, describe(result)


def test_bad_plugin_after_a_good_one_is_refused(echo_plugin, loader_fixture, check_config):
    # The good plugin is loaded (and initialised) first; the refusal of the
    # second must still end in exit code 2, not a crash while unwinding.
    path = loader_fixture("wrong_major")
    result = check_config({**BASE, "plugins": [
        {"name": "echo", "path": str(echo_plugin)},
        {"name": "wrong_major", "path": str(path)},
    ]})
    assert_refused(result)
    assert_names_file(result, path)


# ---- Plugins found (or not) on disk --------------------------------------------


def test_missing_plugin_file_is_refused(tmp_path, check_config):
    path = tmp_path / "no_such_plugin.so"
    result = check_config(plugin_config("no_such_plugin", path))
    assert_refused(result)
    assert_names_file(result, path)


def test_plugin_missing_from_plugin_path_is_refused(tmp_path, check_config):
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    result = check_config({**BASE, "plugin_path": str(plugin_dir), "plugins": [{"name": "ghost"}]})
    assert_refused(result, "ghost.so")
    assert_names_file(result, plugin_dir / "ghost.so")


def test_plugin_found_by_name_in_plugin_path(echo_plugin, check_config):
    result = check_config({**BASE, "plugin_path": str(echo_plugin.parent), "plugins": [{"name": "echo"}]})
    assert result.returncode == 0, describe(result)
    assert "config ok" in result.stdout + result.stderr, describe(result)


def test_relative_plugin_path_is_relative_to_the_config_file(echo_plugin, tmp_path, check_config):
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    relative = os.path.relpath(echo_plugin, config_dir)
    config = config_dir / "aurora.json"
    config.write_text(json.dumps({**BASE, "plugins": [{"name": "echo", "path": relative}]}))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    result = check_config.on_file(config, cwd=elsewhere)
    assert result.returncode == 0, describe(result)


def test_duplicate_plugin_names_are_refused(echo_plugin, check_config):
    result = check_config({**BASE, "plugins": [
        {"name": "echo", "path": str(echo_plugin)},
        {"name": "echo", "path": str(echo_plugin)},
    ]})
    assert_refused(result, "echo")


# ---- The config file itself --------------------------------------------------------


def test_unknown_top_level_key_is_refused(check_config):
    assert_refused(check_config({**BASE, "listn": {"port": 8080}}), "listn")


def test_unknown_nested_key_is_refused(check_config):
    assert_refused(check_config({"listen": {"host": "127.0.0.1", "port": 0, "prot": 1}}), "listen.prot")


def test_wrong_type_is_refused_naming_the_key(check_config):
    assert_refused(check_config({"listen": {"host": "127.0.0.1", "port": "8080"}}), "listen.port")


def test_out_of_range_port_is_refused(check_config):
    assert_refused(check_config({"listen": {"host": "127.0.0.1", "port": 70000}}), "listen.port")


def test_unknown_key_in_a_plugin_entry_is_refused(echo_plugin, check_config):
    result = check_config({**BASE, "plugins": [{"name": "echo", "path": str(echo_plugin), "pth": "x"}]})
    assert_refused(result, "pth")


def test_invalid_json_is_refused(tmp_path, check_config):
    result = check_config('{"listen": {"port": 0},', file_name="broken.json")
    assert_refused(result)
    assert_names_file(result, tmp_path / "broken.json")


def test_missing_config_file_is_refused(tmp_path, check_config):
    path = tmp_path / "absent.json"
    result = check_config.on_file(path)
    assert_refused(result)
    assert_names_file(result, path)


# ---- A plugin's own settings (samples/echo) ----------------------------------------


def test_echo_accepts_its_settings(echo_plugin, check_config):
    result = check_config({**BASE, "plugins": [
        {"name": "echo", "path": str(echo_plugin), "config": {"tick_ms": 1000, "tick_room": "ticks"}}]})
    assert result.returncode == 0, describe(result)


@pytest.mark.parametrize("config, word", [
    ({"tick_msx": 1}, "tick_msx"),
    ({"tick_ms": "1000"}, "tick_ms"),
    ({"tick_ms": -5}, "tick_ms"),
    ({"tick_room": ""}, "tick_room"),
])
def test_echo_refuses_a_bad_setting(config, word, echo_plugin, check_config):
    result = check_config({**BASE, "plugins": [{"name": "echo", "path": str(echo_plugin), "config": config}]})
    assert_refused(result, word)


# ---- The fixtures are what they claim (no host needed) ------------------------------


@pytest.mark.parametrize("fixture, major, minor, name", [
    ("wrong_major", 2, 0, "wrong_major"),
    ("newer_minor", MAJOR, MINOR + 1, "newer_minor"),
    ("null_name", MAJOR, MINOR, None),
    ("bad_name", MAJOR, MINOR, "Bad Name!"),
    ("small_struct", MAJOR, MINOR, "small_struct"),
])
def test_fixture_descriptor(fixture, major, minor, name, loader_fixture):
    d = plugin_descriptor(loader_fixture(fixture))
    assert (d["abi_major"], d["abi_minor"], d["name"]) == (major, minor, name)
    if fixture == "small_struct":
        assert d["struct_size"] < V1_0_SIZE
    else:
        assert d["struct_size"] >= V1_0_SIZE


def test_missing_dep_fixture_cannot_be_opened(loader_fixture):
    d = plugin_descriptor(loader_fixture("missing_dep"))
    assert "libaurora_loader_gone.so: cannot open shared object file" in d.get("error", ""), d


def test_no_entry_fixture_has_no_entry(loader_fixture):
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(loader_fixture("no_entry"))],
                             capture_output=True, text=True, check=True).stdout.split()
    assert "aurora_plugin_entry" not in symbols
