"""Static files from web_root, path traversal, and which paths upgrade."""

from __future__ import annotations

import http.client

import pytest
from websockets.exceptions import InvalidStatus

from ws_client import connect, echo_round_trip

INDEX = b"<!doctype html><title>aurora e2e</title><p>index of the e2e web root</p>\n"
HELLO = b"hello from the web root\n"
SECRET = b"SECRET-OUTSIDE-WEB-ROOT-6f1c\n"

TRAVERSALS = [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/a/../../secret.txt",
    "/sub/../../secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/..\\secret.txt",
    "/....//secret.txt",
    "/%252e%252e/secret.txt",
    "/../etc/passwd",
    "/%2e%2e/etc/passwd",
    "/..%2fetc%2fpasswd",
    "/a/../../x",
    "/../../../../../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "//etc/passwd",
    "/etc/passwd",
]

# An encoded NUL names no file: the request must be refused, not cut short.
NUL_PATHS = ["/%00/../secret.txt", "/%00", "/%00x", "/hello.txt%00.png", "/x%00/../hello.txt"]


@pytest.fixture
def web_host(start_host, artefacts, tmp_path):
    root = tmp_path / "www"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "hello.txt").write_bytes(HELLO)
    (root / "sub" / "page.html").write_bytes(b"<p>sub page</p>\n")
    (tmp_path / "secret.txt").write_bytes(SECRET)  # next to web_root, never served
    return start_host([artefacts.echo_plugin()], web_root=str(root))


def test_index_is_served_at_root(web_host):
    resp = web_host.get("/")
    assert resp.status == 200, resp
    assert resp.body == INDEX
    assert resp.headers.get("content-type", "").startswith("text/html"), resp.headers


def test_files_are_served(web_host):
    resp = web_host.get("/hello.txt")
    assert resp.status == 200 and resp.body == HELLO, resp
    assert resp.headers.get("content-type", "").startswith("text/plain"), resp.headers
    resp = web_host.get("/sub/page.html")
    assert resp.status == 200 and resp.body == b"<p>sub page</p>\n", resp


def test_missing_file_is_404(web_host):
    assert web_host.get("/missing.txt").status == 404


@pytest.mark.parametrize("target", TRAVERSALS)
def test_path_traversal_never_leaves_web_root(web_host, target):
    resp = web_host.get(target)
    assert SECRET not in resp.body, f"GET {target} served a file outside web_root: {resp.status}"
    assert b"root:" not in resp.body, f"GET {target} served /etc/passwd: {resp.status}"
    assert resp.status in (400, 403, 404), f"GET {target} -> {resp.status} {resp.body[:200]!r}"
    # The server still answers after the attempt.
    assert web_host.get("/hello.txt").body == HELLO


@pytest.mark.parametrize("target", NUL_PATHS)
def test_encoded_nul_in_path_is_refused(web_host, target):
    try:
        resp = web_host.get(target)
    except (http.client.HTTPException, ConnectionError) as e:
        pytest.fail(f"GET {target}: the connection ended without an HTTP response ({type(e).__name__}: {e})")
    assert SECRET not in resp.body, f"GET {target} served a file outside web_root"
    assert resp.status in (400, 404), f"GET {target} -> {resp.status} {resp.body[:100]!r} (expected 400 or 404)"


@pytest.mark.parametrize("path", ["/", "/ws"])
def test_upgrade_on_websocket_paths(web_host, path):
    with connect(web_host, path) as ws:
        echo_round_trip(ws)


@pytest.mark.parametrize("path", ["/nope", "/hello.txt", "/ws/extra", "/health"])
def test_upgrade_elsewhere_is_refused(web_host, path):
    with pytest.raises(InvalidStatus) as refused:
        with connect(web_host, path):
            pass
    assert refused.value.response.status_code == 404, \
        f"upgrade on {path}: expected 404, got {refused.value.response.status_code}"
