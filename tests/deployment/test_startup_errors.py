"""A bad setting stops each entry point with one line naming the variable, no traceback:
manage.py (the first step of `make run`), the Celery app (worker, beat) and gunicorn."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..web_server import procfile_command
from ..workers import ROOT

# A server database without SECRET_KEY: the settings refuse it (automation/settings.py).
BROKEN = {"DATABASE_URL": "postgres://nobody@127.0.0.1:9/none", "DEBUG": "", "SECRET_KEY": ""}


def run(command: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ, **BROKEN, "AUTOMATION_VAR_DIR": str(tmp_path), "PORT": "0",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "manage.py", "migrate", "--noinput"],
        [sys.executable, "-m", "celery", "-A", "automation", "beat", "--help"],
        ["sh", "-c", procfile_command("web")],
    ],
    ids=["manage.py", "celery", "web"],
)
def test_a_missing_secret_key_is_one_line_naming_it(command: list[str], tmp_path: Path) -> None:
    result = run(command, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if "configuration error" in line]
    assert len(lines) == 1, output
    assert "SECRET_KEY is not set" in lines[0] and "secrets.token_urlsafe" in lines[0]


def test_a_bad_number_names_its_variable(tmp_path: Path) -> None:
    env_command = [sys.executable, "manage.py", "check"]
    result = subprocess.run(
        env_command, cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "AUTOMATION_VAR_DIR": str(tmp_path), "DATABASE_URL": "",
             "AUTOMATION_WEB_DB_POOL_SIZE": "lots"},
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "configuration error: AUTOMATION_WEB_DB_POOL_SIZE='lots' is not a number."
    ]
