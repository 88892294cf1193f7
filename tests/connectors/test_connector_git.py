"""The GIT connector from flows on a real worker, against a `git daemon` on loopback that
serves a bare repository the test creates."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from executions.models import ExecutionLog

from ..connector_peers import GitPeer, git, git_daemon, git_repository, http_server

pytestmark = [
    pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker"),
    pytest.mark.skipif(shutil.which("git") is None, reason="the GIT connector runs the git program, which is not installed here"),
]


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[GitPeer]:
    git_repository(tmp_path, "flows.git", [
        {"flows/hello.py": "print('v1')\n", "README.md": "# flows\n", "_message": "first"},
        {"flows/hello.py": "print('v2')\n", "flows/bye.py": "print('bye')\n",
         "logo.png": b"\x89PNG\r\n\x1a\n\xff\x00", "_message": "second\n\nwith a body"},
    ])
    with git_daemon(tmp_path) as peer:
        yield peer


def test_a_flow_gets_the_files_of_a_repository(make_flow, run_flow, repo):
    make_flow("git-get", """
        def handler(system, this):
            url = this.get('input_value')['url']
            files = this.connect(
                connector_type='GIT',
                command='get',
                repository_url=url,
                files_path=['flows/*.py', 'logo.png'],
            ).get('output_value')
            return {'content': files['content'], 'skipped': files['skipped'],
                    'files': files['files'], 'message': files['commit']['message'],
                    'author': files['commit']['author']}
    """)
    ended = run_flow("git-get", {"url": repo.url("flows.git")})
    assert ended.status == "ENDED_SUCCESS", ended.message
    out = ended.output_value
    assert out["content"] == {"flows/bye.py": "print('bye')\n", "flows/hello.py": "print('v2')\n"}
    assert out["skipped"] == {"logo.png": "binary"}
    assert out["files"] == ["README.md", "flows/bye.py", "flows/hello.py", "logo.png"]
    assert out["message"] == "second\n\nwith a body" and out["author"] == "Ada"


def test_metadata_lists_the_refs_and_clone_reads_a_tag(make_flow, run_flow, repo):
    make_flow("git-meta", """
        def handler(system, this, inputs):
            meta = this.connect(connector_type='GIT', command='metadata',
                                repository_url=inputs['url'], ref='main').get('output_value')
            old = this.connect(connector_type='GIT', command='clone', repository_url=inputs['url'],
                               ref='v1').get('output_value')
            return {'refs': sorted(meta['refs']), 'head': meta['commit'],
                    'old_files': old['files'], 'old_message': old['commit']['message'],
                    'tag_sha': meta['refs']['refs/tags/v1'], 'old_sha': old['commit']['sha']}
    """)
    ended = run_flow("git-meta", {"url": repo.url("flows.git")})
    assert ended.status == "ENDED_SUCCESS", ended.message
    out = ended.output_value
    assert out["refs"] == ["HEAD", "refs/heads/main", "refs/tags/v1"]
    assert out["head"]["message"] == "second\n\nwith a body"
    assert out["head"]["email"] == "ada@example.org" and len(out["head"]["sha"]) == 40
    assert out["old_files"] == ["README.md", "flows/hello.py"]
    assert out["old_message"] == "first" and out["tag_sha"] == out["old_sha"]


PULL = """
    def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
        pulled = this.task('GIT', inputs={
            'command': 'pull',
            'repository_url': inputs['url'],
            'ref': 'main',
        })
        output = pulled.get('output_value')
        return {'sha': output['commit']['sha'], 'message': output['commit']['message'],
                'files': output['files']}
"""


def test_pull_brings_the_repository_up_to_date(make_flow, run_flow, repo):
    make_flow("git-pull", PULL)
    first = run_flow("git-pull", {"url": repo.url("flows.git")})
    assert first.status == "ENDED_SUCCESS", first.message
    assert first.output_value["message"] == "second\n\nwith a body"

    # Someone pushes a commit: the next pull reports it and its files.
    work = repo.base / "flows.git-work"
    (work / "flows" / "new.py").write_text("print('new')\n")
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "third", cwd=work)
    git("push", "--quiet", str(repo.base / "flows.git"), "main", cwd=work)

    second = run_flow("git-pull", {"url": repo.url("flows.git")})
    assert second.status == "ENDED_SUCCESS", second.message
    out = second.output_value
    assert out["message"] == "third" and out["sha"] != first.output_value["sha"]
    assert out["sha"] == git("rev-parse", "main", cwd=repo.base / "flows.git").strip()
    assert out["files"] == ["README.md", "flows/bye.py", "flows/hello.py", "flows/new.py", "logo.png"]


def test_a_missing_ref_a_local_path_a_bad_command_and_a_missing_repository_end_in_errors(make_flow, run_flow, repo):
    make_flow("git-bad", """
        def handler(system, this, inputs):
            return this.connect(connector_type='GIT', **inputs).get('output_value')
    """)
    missing = run_flow("git-bad", {"command": "metadata", "repository_url": repo.url("flows.git"),
                                   "ref": "nope"})
    assert missing.status == "ENDED_ERROR"
    assert "no branch or tag 'nope'" in missing.message
    local = run_flow("git-bad", {"repository_url": f"file://{repo.base}/flows.git"})
    assert local.status == "ENDED_ERROR"
    assert "only git://, http:// and https:// repositories are allowed" in local.message
    wrong = run_flow("git-bad", {"repository_url": repo.url("flows.git"), "command": "push"})
    assert "command must be one of metadata, clone, pull, get, not 'push'" in wrong.message
    gone = run_flow("git-bad", {"repository_url": repo.url("nothing.git")})
    assert gone.status == "ENDED_ERROR" and "git clone failed" in gone.message


def test_http_credentials_reach_the_server_and_are_masked(make_flow, run_flow):
    make_flow("git-http", """
        def handler(system, this, inputs):
            return this.connect(connector_type='GIT', command='metadata', **inputs)
    """)
    with http_server() as http:  # answers 404 to git: enough to see what git sent
        ended = run_flow("git-http", {"repository_url": http.url("/repo.git"),
                                      "username": "alice", "password": http.password})
    header = "Basic " + base64.b64encode(f"alice:{http.password}".encode()).decode()
    assert http.authorization["/repo.git/info/refs"] == header
    assert ended.status == "ENDED_ERROR" and "git ls-remote failed" in ended.message
    shown = json.dumps([ended.message, list(ExecutionLog.objects.values_list("text", flat=True))])
    assert http.password not in shown and header.split()[1] not in shown


def test_a_server_that_never_answers_ends_at_the_timeout(make_flow, run_flow):
    make_flow("git-silent", """
        def handler(system, this, inputs):
            this.connect(connector_type='GIT', command='metadata', timeout=1, **inputs)
    """)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # connects, never answers
        started = time.monotonic()
        ended = run_flow("git-silent", {
            "repository_url": f"git://127.0.0.1:{silent.getsockname()[1]}/repo.git"})
        took = time.monotonic() - started
    assert ended.status == "ENDED_ERROR"
    assert "GIT git://127.0.0.1" in ended.message and "timed out after 1 s" in ended.message
    assert took < 15
