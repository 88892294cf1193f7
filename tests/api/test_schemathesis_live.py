"""schemathesis with all its checks over every operation of the schema, against the web
server as the Procfile starts it (gunicorn): the answers are those the schema documents,
in status, content type, headers and body. Bounded: a few examples per operation and a
time budget of about a minute.

One check is left out: `positive_data_acceptance` expects every body the schema allows to
be accepted, but some are refused for what no schema can say (a wrong password, a script
without `handler`, a flow or connector type that does not exist): those are 400s naming
the field, as they should be.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..web_server import WebServer, running_web

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
BUDGET_SECONDS = 50


@pytest.fixture
def web(static_root: Path, tmp_path: Path, broker_purged: None) -> Iterator[WebServer]:
    # No worker: starts stay PENDING; every wait is short, so no call holds the run up.
    with running_web(
        tmp_path, static_root,
        AUTOMATION_MAX_API_WAIT_SECONDS="0.2", AUTOMATION_WEBHOOK_WAIT_SECONDS="0.2",
    ) as server:
        yield server


def _token(user: Any) -> str:
    from executions.api.auth import issue_token

    return str(issue_token(user)["token"])


def _schemathesis(web: WebServer, token: str, cwd: Path, *options: str, timeout: float) -> None:
    command = [
        SCHEMATHESIS, "run", f"{web.url}/api/schema/", "-H", f"Authorization: Token {token}",
        "--checks", "all", "--exclude-checks", "positive_data_acceptance",
        "--phases", "examples,fuzzing", "--seed", "19", "-w", "2", "--request-timeout", "10",
        "--no-color", "--include-path-regex", "^/api/", *options,
    ]
    # In a directory of its own: schemathesis keeps a cache there, replayed by later runs.
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    report = done.stdout + done.stderr
    failures = report[report.find("FAILURES"):report.find("WARNINGS")] if "FAILURES" in report else ""
    assert done.returncode == 0, (failures or report)[:15000]


@pytest.mark.timeout(240)
def test_every_operation_answers_as_the_schema_says(
    web: WebServer, django_user_model: Any, tmp_path: Path
) -> None:
    user = django_user_model.objects.create_superuser("fuzzer", password="fuzz" * 4)
    # Logging out revokes the token the run uses: those two operations go last, alone.
    _schemathesis(
        web, _token(user), tmp_path, "-n", "10", "--max-time", str(BUDGET_SECONDS),
        "--exclude-path-regex", "/api/auth/logout", timeout=BUDGET_SECONDS + 60,
    )
    _schemathesis(
        web, _token(user), tmp_path, "-n", "3", "--max-time", "15", "--include-path-regex",
        "/api/auth/logout", timeout=60,
    )
