"""Aurora from Python: drive plugins in-process, run embedded hosts, and
speak Aurora's protocol from test scripts. docs/python.md is the manual.

- ``aurora.Plugin.load(path, config)``: one plugin ``.so`` loaded through the
  host's own loader and ABI checks, with a host API that records what it does.
- ``aurora.Host(config)``: an embedded host (libaurora_host) serving on a
  background thread.
- ``aurora.jwt``: tokens with the auth plugin's rules.
- ``aurora.client``: a small synchronous WebSocket client.
- ``aurora.server``: a typed client for the server API, and the webhook
  signature check.
"""

from __future__ import annotations

import atexit
import json
import weakref
from typing import Any, Mapping

from . import _core
from ._core import (ABI_MAJOR, ABI_MINOR, ABI_VERSION, AuthResult, HostStartError, HttpResponse, Message,
                    PluginInitError, PluginLoadError, __version__, host_version)
from .host import Host

__all__ = ["ABI_MAJOR", "ABI_MINOR", "ABI_VERSION", "AuthResult", "Host", "HostStartError", "HttpResponse",
           "Message", "Plugin", "PluginInitError", "PluginLoadError", "__version__", "host_version"]

_open_plugins: "weakref.WeakSet[Plugin]" = weakref.WeakSet()


class Plugin(_core.Plugin):
    """A plugin loaded in-process with a recording host API (see _core.pyi)."""

    @classmethod
    def load(cls, path: str, config: Mapping[str, Any] | str | None = None, *,
             settings: Mapping[str, str] | None = None, name: str = "") -> "Plugin":
        text = config if isinstance(config, str) else json.dumps(dict(config or {}))
        plugin = cls(str(path), text, dict(settings or {}), name)
        _open_plugins.add(plugin)
        return plugin


@atexit.register
def _close_plugins() -> None:
    # Before the interpreter goes away: join every plugin's native threads
    # while they can still take the GIL.
    for plugin in list(_open_plugins):
        plugin.close()
