"""The deployment files agree: docker-compose.yml runs what the Procfile runs, with the
environment the settings read, and the Makefile offers the two documented commands.

Plain file checks: no database, no broker.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..web_server import procfile

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ("web", "worker", "beat")
# Every variable automation/settings.py needs to point a container at shared services and
# keep secrets equal across web and workers (a worker must decrypt what web encrypted).
REQUIRED_ENVIRONMENT = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEY")


def compose_services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services: dict[str, Any] = compose["services"]
    return services


def shell_command(service: dict[str, Any]) -> str:
    """The command a compose service runs, as the shell sees it (compose turns $$ into $)."""
    command = service["command"]
    if isinstance(command, list):
        assert command[:2] == ["sh", "-c"], f"expected a shell command, got {command!r}"
        command = command[2]
    return " ".join(str(command).replace("$$", "$").split())


def environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE form
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def test_the_procfile_defines_web_worker_and_beat() -> None:
    assert set(PROCESSES) <= set(procfile())


def test_the_worker_serves_both_modes_of_the_default_group_unless_told_otherwise() -> None:
    worker = procfile()["worker"]
    assert "-Q ${WORKER_QUEUES:-default.productive,default.development}" in worker
    assert "-P prefork" in worker


def test_beat_uses_the_scheduler_that_the_settings_name() -> None:
    # A --scheduler on the command line would override CELERY_BEAT_SCHEDULER.
    assert "--scheduler" not in procfile()["beat"]


@pytest.mark.parametrize("name", PROCESSES)
def test_each_compose_service_runs_exactly_its_procfile_command(name: str) -> None:
    expected = " ".join(procfile()[name].split())
    assert shell_command(compose_services()[name]) == expected


def test_the_remote_worker_runs_the_worker_command_on_the_remote_queues() -> None:
    services = compose_services()
    remote = services["worker-remote"]
    assert shell_command(remote) == shell_command(services["worker"])
    assert environment(remote)["WORKER_QUEUES"] == "remote.productive,remote.development"


@pytest.mark.parametrize("name", [*PROCESSES, "worker-remote"])
def test_each_compose_service_gets_every_variable_the_settings_need(name: str) -> None:
    missing = [v for v in REQUIRED_ENVIRONMENT if v not in environment(compose_services()[name])]
    assert not missing, f"{name} lacks {missing}"


def test_workers_get_their_concurrency_and_queues_from_the_environment() -> None:
    for name in ("worker", "worker-remote"):
        env = environment(compose_services()[name])
        assert "WORKER_CONCURRENCY" in env and "WORKER_QUEUES" in env, name


def test_the_worker_can_be_scaled_because_it_has_no_fixed_name_or_host_port() -> None:
    worker = compose_services()["worker"]
    assert "container_name" not in worker
    assert not worker.get("ports"), "a published host port can be bound by one replica only"


def test_the_services_point_at_the_compose_postgres_and_redis() -> None:
    services = compose_services()
    assert {"postgres", "redis"} <= set(services)
    assert "healthcheck" in services["postgres"]
    env = environment(services["worker"])
    assert "@postgres:5432/" in env["DATABASE_URL"]
    # Flow code can reach both servers over the network: neither answers without a password.
    assert env["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:-") and "@redis:6379/" in env["REDIS_URL"]
    assert "--requirepass" in " ".join(services["redis"]["command"])
    assert "${POSTGRES_PASSWORD:-" in env["DATABASE_URL"]
    # The workers start flow hosts as the image's unprivileged `flow` user; web never as root.
    assert services["worker"]["user"] == "root" and "user" not in services["web"]
    assert "ENV AUTOMATION_FLOW_USER=flow" in (ROOT / "Dockerfile").read_text()


def test_the_makefile_has_the_run_and_test_targets() -> None:
    targets = set(re.findall(r"^([A-Za-z][\w.-]*):", (ROOT / "Makefile").read_text(), re.M))
    assert {"run", "test", "lint", "bench", "venv"} <= targets
