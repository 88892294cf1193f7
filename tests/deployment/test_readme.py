"""The README's tutorial works when copied: its flows, taken from the Markdown (never copied
by hand into the test), are saved as a user saves them and run on the real worker, and the
shell command it gives prints what the README says it prints. Its curl examples that send a
body say it is JSON (without the header the API silently ignores the body)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.conf import settings

from executions.models import Flow

from ..workers import ROOT, database_url

README = (ROOT / "README.md").read_text()
GUIDES = sorted((ROOT / "docs").glob("*.md"))


def tutorial() -> str:
    start = README.index("## A first flow in five minutes")
    return README[start:README.index("\n## ", start + 1)]


def tutorial_flows() -> dict[str, str]:
    """flow name -> source, for each ```python block, named by the step that shows it."""
    text = tutorial()
    flows: dict[str, str] = {}
    for block in re.finditer(r"```python\n(.*?)\n\s*```", text, re.DOTALL):
        names = re.findall(r"flow named `([^`]+)`", text[:block.start()])
        assert names, f"no flow name before the block at {block.start()}"
        flows[names[-1]] = textwrap.dedent(block.group(1)) + "\n"
    return flows


def promised_outputs() -> dict[str, object]:
    found = re.search(r"Its outputs are `(\{.*?\})`", tutorial())
    assert found, "the tutorial says what its flow returns"
    return json.loads(found.group(1))


def shell_commands() -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)\n\s*```", tutorial(), re.DOTALL)
    return [shlex.split(line) for block in blocks for line in block.splitlines() if line.strip()]


@pytest.mark.core  # also on the embedded default, as a new user runs it
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
def test_the_tutorial_flows_greet_ada_in_the_admin_and_from_the_shell(run_flow):
    flows = tutorial_flows()
    assert len(flows) == 2, flows
    for name, source in flows.items():
        flow = Flow(name=name, script=source)
        flow.full_clean()  # what the admin's form checks when the user saves it
        flow.save()
    parent = next(name for name, source in flows.items() if "this.flow(" in source)

    assert promised_outputs() == {"child_said": "Hello, Ada!"}
    tried = run_flow(parent, mode="development")  # the Try button
    assert tried.status == "ENDED_SUCCESS", tried.message
    assert tried.output_value == promised_outputs()

    [command] = shell_commands()
    assert command[:2] == [".venv/bin/python", "manage.py"], command
    env = {
        "DATABASE_URL": database_url(), "REDIS_URL": settings.REDIS_URL,
        "BROKER_URL": settings.BROKER_URL, "SECRET_KEY": settings.SECRET_KEY,
        "PATH": "/usr/bin:/bin",
    }
    shown = subprocess.run(
        [sys.executable, *command[1:], "--timeout", "30"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=90,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["output_value"] == promised_outputs()


def test_the_tutorial_flows_take_no_name_of_a_bundled_example():
    bundled = {path.stem for path in (ROOT / "examples").glob("*.py")}
    assert not set(tutorial_flows()) & bundled


@pytest.mark.parametrize("document", [ROOT / "README.md", *GUIDES], ids=lambda p: p.name)
def test_every_curl_that_sends_a_body_says_it_is_json(document: Path):
    lines = document.read_text().replace("\\\n", " ").splitlines()  # join continued lines
    commands = [line.strip() for line in lines if line.strip().startswith("curl ")]
    senders = [c for c in commands if re.search(r"\s(-d|--data\S*)\s", c)]
    if document.name == "README.md":
        assert senders, "the README's curl examples were found"
    for command in senders:
        assert "Content-Type: application/json" in command, command
