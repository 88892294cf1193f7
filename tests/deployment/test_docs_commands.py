"""Every shell and curl command of the README and the guides (docs/*.md) works when copied.

The commands are taken from the Markdown (tests/deployment/markdown_commands.py), never
copied by hand into a test. They run as a reader runs them on a fresh clone: first the
README's own `make run`, on the embedded default (no DATABASE_URL, REDIS_URL or SECRET_KEY;
a var/ of the test's own), then each document's commands in their order, in a shell whose
PATH has no virtualenv (a command must say `.venv/bin/python`), and what each prints is
checked against what the Markdown says it prints.

What the Markdown cannot mean literally is adapted by these rules, and by no others:
- 127.0.0.1:8000 is the port `make run` listens on here; another port a document names
  (flower's 5555) is a free one, the same one wherever the document names it;
- a number in an API path (`/api/executions/42/`) is the id of that kind that the
  document's answers gave last (`"id"` of an answer, or of the first of its `results`);
- `export NAME=...` with `...` in its value takes field `name` of the answer before it (the
  token the README tells the reader to copy); any other `export` runs as written;
- a variable a document uses and never sets (`$FLOWER_PASSWORD`) is the reader's own
  secret: a random one;
- a command that starts a service (a worker, flower) runs in the background until it says
  it is ready (a worker) or until the document ends (flower, which later commands call).

A command in NOT_RUN is not run, for the reason given there; any other command that is
not run fails the test, so a new example is tested from the day it is written.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from ..private_services import free_port
from ..workers import ROOT, stop_process_group
from .markdown_commands import Command, commands, matches, printed, text_pattern

# Not `core`: it makes its own embedded default whatever the session runs on, so CI's second
# run on the embedded default would only repeat it.
pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="the documents' examples use curl")

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MAKE_RUN = "make run"
STARTED_SERVICES: set[str] = set()  # a worker two documents show is started once

# command (a regular expression matching its start) -> why it is not run here
NOT_RUN = {
    r"make test\b": "the suite this test is part of",
    r"\.venv/bin/python -m pytest|AUTOMATION_LOAD_N=": "tests of this suite, run by `make test`",
    r"make bench|\.venv/bin/python -m bench": "the benchmarks take 15 to 30 minutes; `make bench`",
    r"apt-get ": "installs Debian packages on the machine; .ci/run does that",
    r"\.venv/bin/pip install pip-audit": "asks the package index, off this machine",
    r"(SECRET_KEY|BROKER_URL)=\S+ .*make run": "names the reader's own servers (db, redis, rabbitmq)",
    r"export (DATABASE_URL|SECRET_KEY|FIELD_ENCRYPTION_KEY|ALLOWED_HOSTS|AUTOMATION_HTTPS)=":
        "the reader's production settings; tests/api/test_security.py checks them with check --deploy",
    r"\.venv/bin/python manage.py check --deploy":
        "with the reader's production settings: tests/api/test_security.py runs it with them",
    r"\.venv/bin/python manage.py run_flow welcome":
        "the tutorial's; tests/deployment/test_readme.py runs it after saving the tutorial's flows",
    r"curl .*-X POST .*/api/executions/ .*\"connection\": \"warehouse\"":
        "connects to the reader's database at db.internal, off this machine",
}


@dataclass
class MadeRun:
    process: subprocess.Popen[bytes]
    url: str
    env: dict[str, str]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _readme_make_run() -> Command:
    found = [c for c in commands(ROOT / "README.md") if c.text == MAKE_RUN]
    assert found, "the README says `make run`"
    return found[0]


@pytest.fixture(scope="module")
def made_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadeRun]:
    """The README's `make run` on a fresh embedded default, stopped by pid at the end."""
    home = tmp_path_factory.mktemp("make-run")
    port = free_port()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
        "AUTOMATION_VAR_DIR": str(home / "var"), "STATIC_ROOT": str(home / "static"),
        "AUTOMATION_EMBEDDED_REDIS_PORT": str(free_port()), "PORT": str(port),
    }
    log_path = home / "make-run.log"
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            ["bash", "-c", _readme_make_run().text], cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    run = MadeRun(process, f"http://127.0.0.1:{port}", env, log_path)
    try:
        deadline = time.monotonic() + 240
        while not _ready(run.url):
            assert process.poll() is None, f"make run ended:\n{run.log()[-4000:]}"
            assert time.monotonic() < deadline, f"make run not ready in 240 s:\n{run.log()[-4000:]}"
            time.sleep(0.5)
        yield run
    finally:
        stop_process_group(process, signal.SIGTERM, timeout=40)


def _ready(url: str) -> bool:
    with contextlib.suppress(requests.RequestException):
        return requests.get(f"{url}/ready", timeout=5).status_code == 200
    return False


def test_make_run_prints_the_admin_user_and_where_to_log_in(made_run: MadeRun) -> None:
    log = made_run.log()
    assert "Admin user created: admin / admin" in log, log[-3000:]
    assert f"Log in at {made_run.url}/admin/" in log, log[-3000:]
    login = requests.post(f"{made_run.url}/api/auth/token/", json={"username": "admin", "password": "admin"}, timeout=10)
    assert login.status_code == 201, login.text


@dataclass
class Reader:
    """What a reader's shell holds while they follow one document."""
    run: MadeRun
    env: dict[str, str]
    ports: dict[str, str] = field(default_factory=dict)
    last_ids: dict[str, int] = field(default_factory=dict)
    last_answer: Any = None
    services: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: Path = Path()

    def adapt(self, text: str) -> str:
        def port(found: re.Match[str]) -> str:
            number = self.ports.setdefault(found.group(2), str(free_port()))
            return found.group(1) + number
        text = re.sub(r"(127\.0\.0\.1:|--port=)(?!8000\b)(\d{4,5})\b", port, text)
        text = text.replace("127.0.0.1:8000", self.run.url.removeprefix("http://"))

        def known_id(found: re.Match[str]) -> str:
            kind = found.group(1)
            assert kind in self.last_ids, f"the document used a {kind} id before any answer gave one"
            return f"/api/{kind}/{self.last_ids[kind]}/"
        return re.sub(r"/api/(\w+)/\d+/", known_id, text)

    def remember(self, command: str, body: str) -> None:
        try:
            answer = json.loads(body)
        except ValueError:
            return
        self.last_answer = answer
        # A create or a list names its kind (`/api/executions/`); a webhook call starts one.
        kind = re.search(r"/api/(\w+)/(?:[\s'\"?]|$)", command)
        name = "executions" if "/call" in command else kind.group(1) if kind else None
        if not isinstance(answer, dict) or name is None:
            return
        results = answer.get("results")
        if isinstance(answer.get("id"), int):
            self.last_ids[name] = answer["id"]
        elif isinstance(results, list) and results and isinstance(results[0].get("id"), int):
            self.last_ids[name] = results[0]["id"]


def _not_run_reason(text: str) -> str | None:
    return next((why for pattern, why in NOT_RUN.items() if re.match(pattern, text, re.DOTALL)), None)


def _with_status(text: str) -> str:
    """The curl command, also printing its HTTP status on a last line of its own."""
    write_out = " --write-out '\\n%{http_code}'"
    here = re.search(r"\s<<", text)
    return text[:here.start()] + write_out + text[here.start():] if here else text + write_out


def _starts_a_service(text: str) -> str | None:
    if text.startswith("curl "):
        return None
    if re.search(r"\bworker\b", text) and "--print" not in text:
        return "worker"
    if re.search(r"\bflower\b", text):
        return "flower"
    return None


def _start_service(reader: Reader, command: Command, text: str, kind: str) -> None:
    if kind == "worker" and not re.search(r"\s(-l|--loglevel)\b", text):
        text += " -l info"  # a worker says "ready." at INFO only
    log_path = reader.logs / f"{command.document}-{command.line}.log"
    with open(log_path, "wb") as out:
        process = subprocess.Popen(
            ["bash", "-c", text], cwd=ROOT, env=reader.env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    reader.services.append(process)
    deadline = time.monotonic() + 90
    while True:
        log = log_path.read_text(errors="replace")
        if kind == "worker" and " ready." in log:
            stop_process_group(process, signal.SIGTERM, timeout=30)  # it started and serves: enough
            return
        if kind == "flower" and "Visit me at" in log:
            return
        assert process.poll() is None, f"{command} ended at once:\n{log[-3000:]}"
        assert time.monotonic() < deadline, f"{command} not ready within 90 s:\n{log[-3000:]}"
        time.sleep(0.3)


def _unset_variables(reader: Reader, text: str) -> None:
    for name in re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text):
        reader.env.setdefault(name, secrets.token_hex(8))


def _run(reader: Reader, command: Command) -> None:
    text = reader.adapt(command.text)
    export = re.fullmatch(r"export (\w+)=(.*)", text, re.DOTALL)
    if export and "..." in export.group(2):
        name = export.group(1)
        assert isinstance(reader.last_answer, dict) and name.lower() in reader.last_answer, (
            f"{command}: the answer before it has no {name.lower()!r}: {reader.last_answer!r}")
        reader.env[name] = str(reader.last_answer[name.lower()])
        return
    _unset_variables(reader, text)
    if export:
        value = subprocess.run(
            ["bash", "-c", f'{text} && printf %s "${export.group(1)}"'], cwd=ROOT, env=reader.env,
            capture_output=True, text=True, timeout=120,
        )
        assert value.returncode == 0 and value.stdout, f"{command}: {value.stderr}"
        reader.env[export.group(1)] = value.stdout
        return
    service = _starts_a_service(text)
    if service:
        _start_service(reader, command, text, service)
        STARTED_SERVICES.add(command.text)
        return
    is_curl = text.startswith("curl ")
    done = subprocess.run(
        ["bash", "-c", _with_status(text) if is_curl else text], cwd=ROOT, env=reader.env,
        capture_output=True, text=True, timeout=120,
    )
    out = done.stdout
    status = None
    if is_curl:
        out, _, code = out.rpartition("\n")
        status = int(code) if code.isdigit() else None
    said = f"{command}\n-> exit {done.returncode}, status {status}: {out[-2000:]}{done.stderr[-2000:]}"
    assert done.returncode == 0, said
    reader.remember(text, out)
    expected = printed(reader.adapt(command.printed)) if command.printed else None
    if is_curl:
        wanted = expected.status if expected and expected.status else None
        assert status == wanted if wanted else status is not None and 200 <= status < 300, said
    if expected is None:
        return
    if expected.text is not None:
        assert text_pattern(expected.text).search(out), f"{said}\nexpected: {expected.text}"
    else:
        assert matches(expected.json, json.loads(out)), f"{said}\nexpected: {expected.json}"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_command_of_the_document_does_what_it_says(
    document: Path, made_run: MadeRun, tmp_path: Path
) -> None:
    reader = Reader(made_run, {**made_run.env}, logs=tmp_path)
    ran = skipped = 0
    try:
        for command in commands(document):
            if command.text == MAKE_RUN or command.text in STARTED_SERVICES:
                ran += 1  # the fixture ran it, or another document's test started it
                continue
            if _not_run_reason(command.text):
                skipped += 1
                continue
            _run(reader, command)
            ran += 1
    finally:
        for service in reader.services:
            stop_process_group(service, signal.SIGTERM, timeout=30)
    print(f"{document.name}: {ran} commands run, {skipped} not run (NOT_RUN)")


def test_every_reason_not_to_run_a_command_still_names_one() -> None:
    """A NOT_RUN entry whose command left the documents goes too."""
    texts = [c.text for path in DOCUMENTS for c in commands(path)]
    unused = [pattern for pattern in NOT_RUN if not any(re.match(pattern, t, re.DOTALL) for t in texts)]
    assert not unused, unused


def test_the_commands_are_found_with_what_they_print() -> None:
    """The extraction itself: continuations, multi-line quotes, here-documents, comments."""
    api = commands(ROOT / "docs" / "README-api.md")
    flow = next(c for c in api if "/api/flows/ -d @-" in c.text)
    assert flow.text.endswith("EOF") and '"name": "greet"' in flow.text
    started = next(c for c in api if '"flow": "greet"' in c.text)
    assert started.printed and printed(started.printed).json["status"] == "ENDED_SUCCESS"
    health = next(c for c in commands(ROOT / "README.md") if c.text.endswith("/health"))
    assert printed(health.printed or "").json == {"status": "ok"}
    assert all("\\\n" not in c.text for path in DOCUMENTS for c in commands(path))


# --- The flows of the documents ----------------------------------------------------------
# Each ```python block that defines `handler`, saved through the API of `make run` and run
# there; the forms it asks are answered (every field filled by its element) as they open.
# What a flow needs beside itself (the flows and connections it names) is set up by SETUP;
# the flow's code is the Markdown's, with 127.0.0.1:8000 adapted as for the commands.
def _python_flows() -> list[tuple[str, int, str]]:
    found = []
    for path in DOCUMENTS:
        text = path.read_text()
        for block in re.finditer(r"^([ \t]*)```python\n(.*?)^[ \t]*```", text, re.MULTILINE | re.DOTALL):
            source = textwrap.dedent(block.group(2))
            if re.search(r"^def handler\(", source, re.MULTILINE):
                found.append((path.name, text.count("\n", 0, block.start()) + 1, source))
    return found


# a line of the flow -> why it is not run here
FLOWS_NOT_RUN = {
    "this.flow('welcome-child'": "the tutorial's: tests/deployment/test_readme.py runs it as the tutorial says",
    "this.sleep(3600)": "sleeps an hour; its replay is tested in tests/faults/test_replay_recovery.py",
    "https://example.org/health": "calls example.org and the reader's database, off this machine",
}
CHILD = "def handler(system, this):\n    return this.success('child ran')\n"


def _api(run: MadeRun, method: str, path: str, **json_body: Any) -> Any:
    answer = requests.request(
        method, f"{run.url}/api/{path}", auth=("admin", "admin"), timeout=60,
        json=json_body or None,
    )
    assert answer.status_code < 300, f"{method} {path}: {answer.status_code} {answer.text[:2000]}"
    return answer.json()


def _setup_for(run: MadeRun, source: str) -> None:
    if "this.flow('child'" in source:
        with contextlib.suppress(AssertionError):  # another flow's setup made it already
            _api(run, "POST", "flows/", name="child", script=CHILD)
    if "this.connect('my-database'" in source:
        if not _postgresql_answers():
            pytest.skip("the flow queries a PostgreSQL database; none answers on 127.0.0.1:5432")
        with contextlib.suppress(AssertionError):
            _api(run, "POST", "connections/", name="my-database", connector_type="SQLPG",
                 value={"host": "127.0.0.1", "port": 5432, "database": "postgres", "user": "postgres"})


def _postgresql_answers() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 5432), timeout=2):
        return True
    return False


def _fill(body: dict[str, Any]) -> dict[str, Any]:
    """An answer to a form: each field filled as a person would, by its element."""
    by_element = {"number": 2, "toggle": True, "time": "06:30", "submit": None}
    answer = {}
    for key, spec in (body.get("properties") or {}).items():
        value = by_element.get(spec.get("element"), "Ada")
        if value is not None:
            answer[key] = value
    return answer


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "document,line,source", _python_flows(), ids=[f"{d}:{n}" for d, n, _ in _python_flows()]
)
def test_every_flow_of_the_documents_runs(document: str, line: int, source: str, made_run: MadeRun) -> None:
    why = next((why for marker, why in FLOWS_NOT_RUN.items() if marker in source), None)
    if why:
        pytest.skip(why)
    _setup_for(made_run, source)
    source = source.replace("127.0.0.1:8000", made_run.url.removeprefix("http://"))
    name = f"doc-{document.removesuffix('.md').lower()}-{line}"
    _api(made_run, "POST", "flows/", name=name, script=source)
    execution = _api(made_run, "POST", "executions/", flow=name)
    deadline = time.monotonic() + 120
    while execution["status"] not in ("ENDED_SUCCESS", "ENDED_ERROR", "ENDED_CANCELLED"):
        assert time.monotonic() < deadline, f"{name} still {execution['status']} after 120 s"
        forms = _api(made_run, "GET", f"messages/?status=open&execution={execution['id']}")["results"]
        for form in forms:
            _api(made_run, "POST", f"messages/{form['id']}/respond/", response=_fill(form.get("body") or {}))
        time.sleep(0.5)
        execution = _api(made_run, "GET", f"executions/{execution['id']}/")
    assert execution["status"] == "ENDED_SUCCESS", f"{document}:{line}: {execution['message']}"


def test_every_reason_not_to_run_a_flow_still_names_one() -> None:
    sources = [source for _, _, source in _python_flows()]
    assert [m for m in FLOWS_NOT_RUN if not any(m in s for s in sources)] == []
