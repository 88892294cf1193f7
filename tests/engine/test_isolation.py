"""The attack suite of flow isolation: what a Developer's Try can reach, tried for real.

Each attack is a SCRIPT a user of the Developers group (may edit and Try flows, may not Run
them) starts in development mode through the API. Each must fail or find nothing, while the
execution still ends with a clear status; then the worker must still serve. The flows catch
their own errors and return what they found, so a leak shows in the outputs.
"""

from __future__ import annotations

import os
import textwrap
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.test import APIClient

from connectors.models import Connection
from executions.engine.isolation import isolation
from executions.models import Message

from ..workers import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("worker"),
    pytest.mark.skipif(
        isolation().level != "full",
        reason=f"full flow isolation is not possible on this machine: {isolation().description}",
    ),
]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def developer(django_user_model):
    from django.apps import apps

    from executions.permissions import sync_groups

    sync_groups(apps)  # the groups of the migrations, gone after an earlier test's flush
    user = django_user_model.objects.create_user("dev1", password="x" * 12)
    user.groups.add(Group.objects.get(name="Developers"))
    client = APIClient()
    client.force_authenticate(user)
    return client


def _try(developer, source: str, inputs: dict | None = None, wait: float = 60) -> dict:
    answer = developer.post("/api/executions/", {
        "type": "SCRIPT", "script": textwrap.dedent(source), "mode": "development",
        "input_value": inputs or {}, "wait": wait,
    }, format="json")
    assert answer.status_code in (200, 201), answer.content
    body = answer.json()
    assert body["status"] in ("ENDED_SUCCESS", "ENDED_ERROR"), body
    return body


def _still_serves(developer) -> None:
    after = _try(developer, "def handler(system, this):\n    return {'ok': True}\n")
    assert after["status"] == "ENDED_SUCCESS" and after["output_value"] == {"ok": True}


def test_the_engine_s_variables_are_not_in_the_flow_s_environment(developer):
    body = _try(developer, """
        import os

        def handler(system, this):
            return {'names': sorted(os.environ), 'values': '\\n'.join(os.environ.values())}
    """)
    assert body["status"] == "ENDED_SUCCESS"
    names = set(body["output_value"]["names"])
    for secret in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DATABASE_URL", "REDIS_URL", "BROKER_URL"):
        assert secret not in names
    assert names <= {"PATH", "LANG", "LC_ALL", "TZ", "HOME", "TMPDIR", "TMP", "TEMP",
                     "AUTOMATION_TEST_WORKER"}
    assert settings.SECRET_KEY not in body["output_value"]["values"]


def test_the_secret_key_encryption_key_and_database_files_cannot_be_opened(developer):
    var = Path(settings.VAR_DIR)
    targets = [str(var / name) for name in ("secret_key", "field_encryption_key", "db.sqlite3")]
    body = _try(developer, """
        import os

        def handler(system, this, inputs):
            found = {}
            for path in inputs['paths'] + [inputs['var']]:
                try:
                    if os.path.isdir(path):
                        found[path] = os.listdir(path)
                    else:
                        with open(path, 'rb') as f:
                            found[path] = f.read(64).hex()
                except OSError as exc:
                    found[path] = type(exc).__name__
            return found
    """, {"paths": targets, "var": str(var)})
    assert body["status"] == "ENDED_SUCCESS"
    assert set(body["output_value"].values()) == {"PermissionError"}, body["output_value"]


def test_django_with_the_project_s_settings_cannot_change_a_user(developer, django_user_model):
    body = _try(developer, """
        import os, sys

        def handler(system, this, inputs):
            sys.path.insert(0, inputs['root'])
            os.environ['DJANGO_SETTINGS_MODULE'] = 'automation.settings'
            try:
                import django
                django.setup()
                from django.contrib.auth.models import User
                return {'promoted': User.objects.filter(username='dev1').update(is_superuser=True)}
            except BaseException as exc:
                return {'refused': f'{type(exc).__name__}: {exc}'[:500]}
    """, {"root": str(ROOT)})
    assert body["status"] == "ENDED_SUCCESS"
    assert "refused" in body["output_value"], body["output_value"]
    assert not django_user_model.objects.get(username="dev1").is_superuser


def test_no_process_s_environment_or_memory_can_be_read(developer, worker):
    body = _try(developer, """
        import os

        def handler(system, this, inputs):
            leaks, refused = [], 0
            for pid in [p for p in os.listdir('/proc') if p.isdigit()] + [str(inputs['worker'])]:
                for name in ('environ', 'mem'):
                    try:
                        with open(f'/proc/{pid}/{name}', 'rb') as f:
                            data = f.read(1 << 16)
                    except OSError:
                        refused += 1
                        continue
                    if b'SECRET_KEY' in data or b'DATABASE_URL' in data:
                        leaks.append(f'{pid}/{name}')
            return {'leaks': leaks, 'refused': refused}
    """, {"worker": worker.pid})
    assert body["status"] == "ENDED_SUCCESS"
    assert body["output_value"]["leaks"] == []
    assert body["output_value"]["refused"] > 0


def test_the_engine_s_redis_does_not_answer_the_flow(developer):
    url = urlparse(settings.REDIS_URL)
    if not url.password:
        pytest.skip("the engine's Redis (REDIS_URL) has no password here: a flow could reach it "
                    "(docs/README-security.md); CI and the embedded default set one")
    body = _try(developer, """
        import socket

        def handler(system, this, inputs):
            with socket.create_connection((inputs['host'], inputs['port']), timeout=5) as s:
                s.sendall(b'*2\\r\\n$4\\r\\nKEYS\\r\\n$1\\r\\n*\\r\\n')
                return {'answer': s.recv(200).decode(errors='replace')}
    """, {"host": url.hostname or "127.0.0.1", "port": url.port or 6379})
    assert body["status"] == "ENDED_SUCCESS"
    assert body["output_value"]["answer"].startswith("-NOAUTH"), body["output_value"]


def test_a_stored_connection_s_password_is_not_handed_to_the_flow(developer):
    Connection.objects.create(
        name="billing", connector_type="REST", value={"url": "http://127.0.0.1:9/"},
        secrets={"password": "hunter2-very-secret"},
    )
    body = _try(developer, """
        import flow_api

        def handler(system, this):
            record = flow_api.port.get().connection_record('billing')
            return {'record': repr(record), 'value': repr(system.connection('billing').get('value'))}
    """)
    assert body["status"] == "ENDED_SUCCESS"
    assert "hunter2-very-secret" not in repr(body["output_value"])
    assert "billing" in body["output_value"]["record"]


def test_a_flow_past_its_memory_limit_ends_in_error_and_the_next_flow_runs(developer):
    body = _try(developer, """
        def handler(system, this):
            hoard = []
            while True:
                hoard.append(bytearray(64 * 1024 * 1024))
    """)
    assert body["status"] == "ENDED_ERROR"
    limit = settings.AUTOMATION["FLOW_MAX_MEMORY_MB"]
    assert f"ran out of memory: its limit is {limit} MB" in body["message"]
    _still_serves(developer)


def _processes_with(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


def test_nothing_the_flow_started_outlives_it(developer):
    marker = f"300.{uuid.uuid4().int % 10**9}"  # a sleep of 300 s that only this test starts
    body = _try(developer, """
        import os, subprocess

        def handler(system, this, inputs):
            plain = subprocess.Popen(['sleep', inputs['marker']])
            detached = subprocess.Popen(['sleep', inputs['marker']], start_new_session=True)
            if os.fork() == 0:  # a daemon the classic way: fork, setsid, fork
                os.setsid()
                if os.fork() == 0:
                    os.execvp('sleep', ['sleep', inputs['marker']])
                os._exit(0)
            return {'started': [plain.pid, detached.pid]}
    """, {"marker": marker})
    assert body["status"] == "ENDED_SUCCESS"
    wait_until(lambda: not _processes_with(marker), timeout=5, interval=0.1)


_PLANT = """
    import builtins, os

    def handler(system, this, inputs):
        found = {'planted': getattr(builtins, 'planted_by', None),
                 'home': sorted(os.listdir('.')), 'env': os.environ.get('PLANTED')}
        builtins.planted_by = os.environ['PLANTED'] = inputs['who']
        with open('left-behind.txt', 'w') as f:
            f.write(inputs['who'])
        return found
"""


def _plant(client, who: str, mode: str) -> dict:
    answer = client.post("/api/executions/", {
        "type": "SCRIPT", "script": textwrap.dedent(_PLANT), "mode": mode,
        "input_value": {"who": who}, "wait": 60,
    }, format="json")
    assert answer.status_code in (200, 201), answer.content
    assert answer.json()["status"] == "ENDED_SUCCESS", answer.json()
    return answer.json()["output_value"]


def test_a_host_runs_again_only_for_its_user_and_mode_and_cleaned(developer, django_user_model):
    """A host may run several executions of one user in one mode (that is what keeps them
    fast), never another user's or another mode's; and each finds an empty home and the
    environment as it was, whatever the one before left there."""
    boss = APIClient()
    boss.force_authenticate(django_user_model.objects.create_superuser("boss", password="x" * 12))
    assert _plant(developer, "dev1", "development") == {"planted": None, "home": [], "env": None}
    again = _plant(developer, "dev1", "development")
    assert again["home"] == [] and again["env"] is None
    assert again["planted"] in (None, "dev1")  # None where this machine gives no host reuse
    for mode in ("development", "productive"):
        assert _plant(boss, f"boss-{mode}", mode)["planted"] is None


def test_the_project_s_code_cannot_be_written(developer):
    target = ROOT / "flow_api" / "__init__.py"
    before = target.read_bytes()
    body = _try(developer, """
        import os, sys

        def handler(system, this, inputs):
            tried = {}
            for path in [inputs['file'], os.path.join(inputs['root'], 'planted.py'),
                         os.path.join(os.path.dirname(os.__file__), 'planted.py')]:
                try:
                    with open(path, 'a') as f:
                        f.write('import os; os.system("id")\\n')
                    tried[path] = 'written'
                except OSError as exc:
                    tried[path] = type(exc).__name__
            return tried
    """, {"file": str(target), "root": str(ROOT)})
    assert body["status"] == "ENDED_SUCCESS"
    assert set(body["output_value"].values()) == {"PermissionError"}, body["output_value"]
    assert target.read_bytes() == before
    assert not (ROOT / "planted.py").exists()


def test_a_flow_cannot_reach_another_user_s_execution(developer, django_user_model):
    other = django_user_model.objects.create_superuser("boss", password="x" * 12)
    from executions import engine

    theirs = engine.start_execution(
        type="SCRIPT", script="def handler(system, this):\n    this.sleep(30)\n", user=other,
    )

    body = _try(developer, """
        import flow_api

        def handler(system, this, inputs):
            port = flow_api.port.get()
            tried = {}
            for name, call in [
                ('save', lambda: port.save(inputs['id'], output_value={'x': 1}, name=None, message='owned')),
                ('log', lambda: port.log(inputs['id'], 'INFO', 'planted', {})),
                ('cancel', lambda: port.cancel(inputs['id'])),
            ]:
                try:
                    call()
                    tried[name] = 'done'
                except flow_api.PermissionDenied as exc:
                    tried[name] = 'PermissionDenied'
            return tried
    """, {"id": theirs.pk})
    assert body["status"] == "ENDED_SUCCESS"
    assert body["output_value"] == {"save": "PermissionDenied", "log": "PermissionDenied",
                                    "cancel": "PermissionDenied"}
    theirs.refresh_from_db()
    assert theirs.message != "owned" and theirs.status != "ENDED_CANCELLED"
    engine.cancel_execution(theirs)


def test_cancel_reaches_a_flow_that_ignores_it_and_ends_it_only_once_it_stopped(developer):
    from executions.models import Execution, ExecutionLog

    pk = _start(developer, """
        import time

        def handler(system, this):
            this.log('looping')
            while True:
                try:
                    time.sleep(0.05)
                except BaseException:
                    pass
    """)
    # In its loop (a cancel during its log call would end it there, before it can ignore one).
    wait_until(lambda: ExecutionLog.objects.filter(execution_id=pk, text="looping").exists(), 30)
    grace = settings.AUTOMATION["CANCEL_GRACE_SECONDS"]
    answers: list = []

    def cancel() -> None:
        try:
            answers.append(developer.post(f"/api/executions/{pk}/cancel/"))
        finally:
            connection.close()  # this thread's own: left open, it outlives the test database

    canceller = threading.Thread(target=cancel, daemon=True)
    started = time.monotonic()
    canceller.start()
    # While its code still runs it is not shown as cancelled: it is RUNNING, asked to stop.
    wait_until(lambda: Execution.objects.get(pk=pk).stop_status == "ENDED_CANCELLED", 5, interval=0.05)
    during = developer.get(f"/api/executions/{pk}/").json()
    assert during["status"] == "RUNNING"
    assert during["stop_status"] == "ENDED_CANCELLED" and during["stop_requested_at"]
    canceller.join(grace + 10)
    # The answer waited for the kill after the grace: by then it had ended.
    assert answers and answers[0].status_code == 200, answers and answers[0].content
    assert answers[0].json()["status"] == "ENDED_CANCELLED"
    assert grace - 0.5 <= time.monotonic() - started < grace + 5
    ended = Execution.objects.get(pk=pk)
    assert ended.ended_at is not None and ended.stop_requested_at is not None
    assert (ended.ended_at - ended.stop_requested_at).total_seconds() >= grace - 0.5
    _still_serves(developer)  # its host was killed: the worker's slot serves again


def _start(developer, source: str, inputs: dict | None = None) -> int:
    answer = developer.post("/api/executions/", {
        "type": "SCRIPT", "mode": "development", "script": textwrap.dedent(source),
        "input_value": inputs or {},
    }, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()["id"]


def test_a_cancel_stops_a_flow_that_blocks_its_signal_and_everything_it_started(developer, worker):
    from executions.models import Execution, ExecutionLog

    marker = f"300.{uuid.uuid4().int % 10**9}"
    pk = _start(developer, """
        import os, signal, subprocess, time

        def handler(system, this, inputs):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})  # deaf to the interrupt
            for _ in range(5):
                subprocess.Popen(['sleep', inputs['marker']])
                subprocess.Popen(['sleep', inputs['marker']], start_new_session=True)
            if os.fork() == 0:  # a daemon the classic way: fork, setsid, fork
                os.setsid()
                if os.fork() == 0:
                    os.execvp('sleep', ['sleep', inputs['marker']])
                os._exit(0)
            this.log('started')
            while True:
                time.sleep(0.05)
    """, {"marker": marker})
    wait_until(lambda: ExecutionLog.objects.filter(execution_id=pk, text="started").exists(), 30)
    assert len(_processes_with(marker)) >= 11

    answer = developer.post(f"/api/executions/{pk}/cancel/")

    # Answered once it ended, and it ended once nothing it started runs any more.
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "ENDED_CANCELLED"
    assert Execution.objects.get(pk=pk).status == "ENDED_CANCELLED"
    assert _processes_with(marker) == []
    assert worker.wait_idle(5)  # its host was killed: the process runs nothing any more


def test_a_flow_that_catches_its_cancel_cannot_write_after_it(developer, worker):
    from executions.models import Setting

    pk = _start(developer, """
        import time

        def handler(system, this):
            system.setting('before-cancel').save(value='written')  # it may write settings
            try:
                while True:
                    time.sleep(0.05)
            except BaseException:
                system.setting('after-cancel').save(value='written')  # refused: it was cancelled
    """)
    wait_until(lambda: Setting.objects.filter(name="before-cancel").exists(), 30)

    answer = developer.post(f"/api/executions/{pk}/cancel/")

    assert answer.status_code == 200 and answer.json()["status"] == "ENDED_CANCELLED"
    assert worker.wait_idle(5)  # it had stopped when it was shown cancelled
    assert not Setting.objects.filter(name="after-cancel").exists()


def test_a_user_who_may_only_try_cannot_read_other_executions_or_their_forms(django_user_model):
    from django.contrib.auth.models import Permission

    from executions import engine

    trier = django_user_model.objects.create_user("trier", password="x" * 12)
    trier.user_permissions.add(Permission.objects.get(codename="try_execution"))
    client = APIClient()
    client.force_authenticate(trier)
    theirs = engine.start_execution(type="SCRIPT", script="def handler(system, this):\n    pass\n", run=False)
    form = Message.objects.create(execution=theirs, subject="card", response={"pin": "4711"})
    body = _try(client, """
        import flow_api

        def handler(system, this, inputs):
            port, tried = flow_api.port.get(), {}
            for name, call in [
                ('read', lambda: port.read(inputs['id'])),
                ('form', lambda: port.message('read', this.id, id=inputs['form'])),
                ('list', lambda: system.executions()),
            ]:
                try:
                    tried[name] = repr(call())[:200]
                except flow_api.PermissionDenied:
                    tried[name] = 'PermissionDenied'
            return tried
    """, {"id": theirs.pk, "form": form.pk})
    assert body["status"] == "ENDED_SUCCESS"
    assert body["output_value"] == {"read": "PermissionDenied", "form": "PermissionDenied",
                                    "list": "PermissionDenied"}
