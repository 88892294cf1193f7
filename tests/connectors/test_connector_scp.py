"""The SCP connector from flows on a real worker, against the SSH server the SSH tests use
(it offers SFTP on the local file system)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..connector_peers import SshPeer, ssh_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


@pytest.fixture
def sshd() -> Iterator[SshPeer]:
    with ssh_server() as peer:
        yield peer


def login(peer: SshPeer) -> dict:
    return {"hostname": "127.0.0.1", "port": peer.port, "username": peer.user,
            "password": peer.password, "hostkey": peer.hostkey}


def test_a_flow_uploads_a_file_and_downloads_it_again(make_flow, run_flow, sshd, tmp_path):
    make_flow("scp-roundtrip", """
        def handler(system, this):
            inputs = this.get('input_value')
            up = this.connect(connector_type='SCP', **inputs['login'], command='upload',
                              dst=inputs['path'], content='name: web-1\\nsize: 2\\n', mode='0640')
            down = this.connect(connector_type='SCP', **inputs['login'], command='download',
                                src=inputs['path'])
            return {'up': up.get('output_value'), 'down': down.get('output_value')}
    """)
    path = tmp_path / "vm.yaml"
    ended = run_flow("scp-roundtrip", {"login": login(sshd), "path": str(path)})
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert path.read_text() == "name: web-1\nsize: 2\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert ended.output_value["up"] == {"path": str(path), "size": 20}
    assert ended.output_value["down"] == {"path": str(path), "size": 20,
                                          "content": "name: web-1\nsize: 2\n"}


def test_binary_files_travel_as_base64_with_key_auth(make_flow, run_flow, sshd, tmp_path):
    make_flow("scp-binary", """
        def handler(system, this, inputs):
            this.connect(connector_type='SCP', **inputs['login'], command='upload',
                         dst=inputs['dst'], content_base64=inputs['data'])
            return this.connect(connector_type='SCP', **inputs['login'], command='download',
                                src=inputs['dst']).get('output_value')
    """)
    data = bytes(range(256)) * 300  # more than one SFTP chunk
    target = {**login(sshd), "key": sshd.client_key}
    del target["password"]
    ended = run_flow("scp-binary", {"login": target, "dst": str(tmp_path / "blob.bin"),
                                    "data": base64.b64encode(data).decode()})
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert (tmp_path / "blob.bin").read_bytes() == data
    assert base64.b64decode(ended.output_value["content_base64"]) == data
    assert "content" not in ended.output_value


def test_a_missing_file_a_wrong_password_and_a_bad_command_end_in_errors(
        make_flow, run_flow, sshd, tmp_path: Path):
    make_flow("scp-bad", """
        def handler(system, this, inputs):
            return this.connect(connector_type='SCP', **inputs).get('output_value')
    """)
    target = f"{sshd.user}@127.0.0.1:{sshd.port}"
    missing = run_flow("scp-bad", {**login(sshd), "command": "download",
                                   "src": str(tmp_path / "nope.txt")})
    assert missing.status == "ENDED_ERROR"
    assert f"SCP {target}: no such file or directory: {tmp_path / 'nope.txt'}" in missing.message
    wrong = run_flow("scp-bad", {**login(sshd), "password": "not-it", "command": "download",
                                 "src": "/etc/hostname"})
    assert f"SCP {target}: authentication failed" in wrong.message
    assert "not-it" not in wrong.message
    bad = run_flow("scp-bad", {**login(sshd), "command": "move", "src": "/x"})
    assert "command must be upload or download, not 'move'" in bad.message
    no_dst = run_flow("scp-bad", {**login(sshd), "command": "upload", "content": "x"})
    assert "the SCP connector needs the input 'dst'" in no_dst.message
