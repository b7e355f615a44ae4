"""aurora.Host: an embedded Aurora host (libaurora_host) on a background thread."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any, Mapping

from ._core import EmbeddedHost


class Host:
    """``with aurora.Host(config) as host: ...`` serves until the block ends.

    ``config`` is the host config (docs/configuration.md) as a dict or JSON
    text. Plugin init runs in the constructor (errors raise
    ``aurora.HostStartError`` with ``exit_code``), the service loop runs on a
    native thread without the GIL, ``stop()`` drains and joins it.
    The embedding API has no readiness query: ``ready()`` asks GET /ready.
    """

    def __init__(self, config: Mapping[str, Any] | str):
        text = config if isinstance(config, str) else json.dumps(dict(config))
        self._host = EmbeddedHost(text)
        self.port: int = self._host.port
        self._started = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "Host":
        """Starts serving and waits until GET /health answers."""
        if not self._started:
            self._host.start()
            self._started = True
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.get("/health")[0] == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the embedded host on port {self.port} did not answer /health")
            time.sleep(0.01)

    def get(self, target: str, timeout: float = 5.0) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", target)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def ready(self) -> bool:
        """True when GET /ready answers 200 (every plugin is ready)."""
        try:
            return self.get("/ready")[0] == 200
        except OSError:
            return False

    def metrics(self) -> dict[str, float]:
        """GET /metrics as {"name{labels}": value} (Prometheus text, parsed)."""
        status, body = self.get("/metrics")
        if status != 200:
            raise RuntimeError(f"GET /metrics answered {status}")
        out: dict[str, float] = {}
        for line in body.decode().splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                continue
        return out

    def stop(self) -> int:
        """Drains, joins the service thread, unloads the plugins. Returns the exit code."""
        return self._host.stop()

    def __enter__(self) -> "Host":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
