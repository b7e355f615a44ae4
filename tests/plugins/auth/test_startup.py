"""Start-up refuses a weak or missing secret outside dev mode, with a clear
message and exit code 2; dev mode lets it through with a warning."""

from __future__ import annotations

import json
import subprocess

import pytest

from auth_support import HOST, auth_host_config, require

SEED_EXAMPLE = "use-strong-random-secret-minimum-32-characters"  # seed §12.1, 46 bytes


def check_config(tmp_path, cfg: dict, env_secret: str | None = None) -> subprocess.CompletedProcess:
    path = tmp_path / "host.json"
    path.write_text(json.dumps(cfg))
    env = {"PATH": "/usr/bin:/bin"}
    if env_secret is not None:
        env["AURORA_JWT_SECRET"] = env_secret
    return subprocess.run([require(HOST), "--check-config", str(path)], capture_output=True, text=True, env=env,
                          timeout=60)


def config_without_secret(redis_server, mongo_server, **auth) -> dict:
    cfg = auth_host_config(redis_server, mongo_server, auth_config=auth, with_echo=False)
    del cfg["jwt"]
    return cfg


@pytest.mark.parametrize("secret, reason", [
    (None, "jwt.secret is not set"),
    ("change-me", "well-known default"),
    ("secret", "well-known default"),
    (SEED_EXAMPLE, "well-known default"),
    ("x" * 31, "31 bytes; at least 32"),
    ("a" * 40, "fewer than 8 distinct"),
])
def test_weak_secret_refuses_start_up(tmp_path, redis_server, mongo_server, secret, reason):
    cfg = config_without_secret(redis_server, mongo_server)
    if secret is not None:
        cfg["jwt"] = {"secret": secret}
    out = check_config(tmp_path, cfg)
    assert out.returncode == 2, out.stderr
    assert reason in out.stderr and "dev_mode" in out.stderr, out.stderr


def test_weak_secret_from_the_environment_is_refused_too(tmp_path, redis_server, mongo_server):
    out = check_config(tmp_path, config_without_secret(redis_server, mongo_server), env_secret="change-me")
    assert out.returncode == 2 and "well-known default" in out.stderr, out.stderr
    out = check_config(tmp_path, config_without_secret(redis_server, mongo_server),
                       env_secret="0123456789abcdef0123456789abcdef")
    assert out.returncode == 0, out.stderr


def test_dev_mode_allows_a_weak_secret_with_a_warning(tmp_path, redis_server, mongo_server):
    cfg = config_without_secret(redis_server, mongo_server, dev_mode=True)
    cfg["jwt"] = {"secret": "change-me"}
    out = check_config(tmp_path, cfg)
    assert out.returncode == 0, out.stderr
    assert "dev mode" in out.stderr
    out = check_config(tmp_path, config_without_secret(redis_server, mongo_server, dev_mode=True))
    assert out.returncode == 0 and "random secret" in out.stderr, out.stderr


@pytest.mark.parametrize("auth, message", [
    ({"cors_origins": ["*"]}, "may contain"),
    ({"jwt_algorithm": "none"}, "HS256, HS384 or HS512"),
    ({"password_scheme": "md5"}, "bcrypt or yescrypt"),
    ({"bcrypt_cost": 3}, "bcrypt_cost"),
    ({"no_such_setting": 1}, "unknown setting"),
])
def test_bad_settings_refuse_start_up(tmp_path, redis_server, mongo_server, auth, message):
    out = check_config(tmp_path, auth_host_config(redis_server, mongo_server, auth_config=auth, with_echo=False))
    assert out.returncode == 2 and message in out.stderr, out.stderr
