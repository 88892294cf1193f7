"""`manage.py run_flow` and `load_flows` from the shell, as a user types them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from executions.models import Execution, Flow

from ..workers import ROOT, database_url, running_worker, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"), pytest.mark.core]


def manage_env() -> dict[str, str]:
    return {
        "DATABASE_URL": database_url(), "REDIS_URL": settings.REDIS_URL,
        "BROKER_URL": settings.BROKER_URL, "SECRET_KEY": settings.SECRET_KEY, "PATH": "/usr/bin:/bin",
    }


def manage(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=manage_env(), capture_output=True,
        text=True, timeout=timeout,
    )


def test_load_flows_creates_one_flow_per_file_and_updates_changed_ones_only_when_asked(
    tmp_path: Path,
):
    (tmp_path / "one.py").write_text("def handler(system, this):\n    pass\n")
    (tmp_path / "two.py").write_text("def handler(system, this):\n    return {'v': 2}\n")
    assert manage("load_flows", str(tmp_path)).returncode == 0
    assert set(Flow.objects.values_list("name", flat=True)) == {"one", "two"}
    (tmp_path / "two.py").write_text("def handler(system, this):\n    return {'v': 3}\n")
    out = manage("load_flows", "--update", str(tmp_path))
    assert "updated two (revision 2)" in out.stdout
    assert "unchanged one" in out.stdout


def test_loading_the_examples_again_keeps_a_flow_the_user_edited(tmp_path: Path, admin):
    (tmp_path / "hello.py").write_text("def handler(system, this):\n    return {'v': 'example'}\n")
    assert manage("load_flows", str(tmp_path)).returncode == 0
    flow = Flow.objects.get(name="hello")
    edited = "def handler(system, this):\n    return {'v': 'mine'}\n"
    flow.script = edited
    flow.revision_author = admin  # type: ignore[attr-defined]  # as the admin saves it
    flow.save()

    out = manage("load_flows", str(tmp_path))  # what `make run` does on every start

    assert out.returncode == 0, out.stderr
    assert "skipped hello: a flow of that name exists" in out.stdout
    flow.refresh_from_db()
    assert (flow.script, flow.revision) == (edited, 2)
    assert flow.revisions.latest("revision").author == admin


def test_load_flows_refuses_a_file_that_does_not_compile(tmp_path: Path):
    (tmp_path / "broken.py").write_text("def handler(system, this)\n    pass\n")
    result = manage("load_flows", str(tmp_path))
    assert result.returncode != 0
    assert "line 1" in result.stderr
    assert not Flow.objects.exists()


def test_run_flow_waits_prints_json_and_exits_zero_on_success(make_flow):
    make_flow("greeter", """
        def handler(system, this, inputs):
            return {'hi': inputs['name'], 'n': inputs['n'], 'extra': inputs['extra']}
    """)
    result = manage(
        "run_flow", "greeter", "--input", "name=Ada", "--input", "n=3",
        "--input-json", '{"extra": [1, 2]}', "--wait", "--timeout", "30",
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["status"] == "ENDED_SUCCESS"
    assert shown["output_value"] == {"hi": "Ada", "n": 3, "extra": [1, 2]}
    assert Execution.objects.get(pk=shown["id"]).trigger == "cli"


def test_run_flow_wait_names_the_queue_no_worker_serves_and_keeps_waiting(
    make_flow, tmp_path: Path,
):
    make_flow("unserved", "def handler(system, this):\n    return {'ok': True}\n", queue="nobody")
    stderr_path = tmp_path / "stderr"
    with open(stderr_path, "w") as stderr:
        command = subprocess.Popen(
            [sys.executable, "manage.py", "run_flow", "unserved", "--wait", "--timeout", "90"],
            cwd=ROOT, env=manage_env(), stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    try:
        wait_until(lambda: "no worker serves" in stderr_path.read_text(), timeout=30)
        assert "no worker serves queue nobody.productive" in stderr_path.read_text()
        assert command.poll() is None, "it stopped waiting"
        with running_worker(queues=["nobody.productive"], name="nobody", tmp_dir=tmp_path):
            stdout, _ = command.communicate(timeout=60)
    finally:
        command.kill()
        command.wait()
    assert command.returncode == 0, stderr_path.read_text()
    assert json.loads(stdout)["status"] == "ENDED_SUCCESS"


def test_run_flow_exits_non_zero_when_the_flow_fails(make_flow):
    make_flow("failing", "def handler(system, this):\n    return this.error('nope')\n")
    result = manage("run_flow", "failing", "--wait", "--development", "--timeout", "30")
    assert result.returncode == 1
    shown = json.loads(result.stdout)
    assert (shown["status"], shown["message"], shown["mode"]) == ("ENDED_ERROR", "nope", "development")


def test_run_flow_names_an_unknown_flow():
    result = manage("run_flow", "ghost", "--wait")
    assert result.returncode != 0
    assert "no flow named 'ghost'" in result.stderr


def test_the_example_flows_all_run(run_flow):
    assert manage("load_flows", str(ROOT / "examples")).returncode == 0
    for name, expected in [
        ("hello", {"greeting": "Hello, world!"}),
        ("parent_and_child", {}),
        ("fan_out", {"total": 90}),
        ("handle_errors", {}),
    ]:
        execution = run_flow(name)
        assert execution.status == "ENDED_SUCCESS", (name, execution.message)
        assert execution.output_value == expected
    failed = run_flow("handle_errors", {"fail": True})
    assert failed.status == "ENDED_ERROR"
    assert failed.message == "RuntimeError: asked to fail (line 12 of <flow handle_errors>)"
