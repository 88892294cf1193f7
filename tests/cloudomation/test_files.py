"""Files the way Cloudomation's flows use them (`system.file(name)`, `system.files(...)`),
on a real worker, as users of the three groups; and the same files in /api/files/."""

from __future__ import annotations

import base64

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from executions.models import File

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]

WRITER = """
    import flow_api

    def handler(system: flow_api.System, this: flow_api.Execution, inputs: dict):
        report = system.file('reports/today.txt')
        before = report.exists()
        report.save(content='hello, file')
        text = system.file('reports/today.txt').get('content')
        system.file('reports/raw.bin').save_bytes_content(bytes([0, 1, 2, 255]))
        raw = system.file('reports/raw.bin').get_bytes_content()
        system.file('notes.md').save_base64_content(base64_text)
        system.file('other/x.py').save_text_content('print(1)')
        return {
            'before': before, 'text': text,
            'raw': list(raw), 'raw_base64': system.file('reports/raw.bin').get_base64_content(),
            'notes': system.file('notes.md').get_text_content(),
            'size': system.file('reports/today.txt').get('size'),
            'in_reports': sorted(f.name for f in system.files(dir='reports')),
            'python': [f.name for f in system.files(glob='**/*.py')],
            'by_filter': [f.name for f in system.files(
                filter={'field': 'name', 'op': 'like', 'value': '%.md'})],
        }
    """


def test_a_developers_flow_writes_and_reads_files(make_flow, run_flow, user_in) -> None:
    developer = user_in("Developers")
    encoded = base64.b64encode("# notes ✓".encode()).decode()
    make_flow("writer", WRITER.replace("base64_text", repr(encoded)))

    ended = run_flow("writer", user=developer)

    assert ended.status == "ENDED_SUCCESS", ended.message
    out = ended.output_value
    assert out["before"] is False and out["text"] == "hello, file"
    assert out["raw"] == [0, 1, 2, 255] and out["raw_base64"] == "AAEC/w=="
    assert out["notes"] == "# notes ✓" and out["size"] == len("hello, file")
    assert out["in_reports"] == ["reports/raw.bin", "reports/today.txt"]
    assert out["python"] == ["other/x.py"] and out["by_filter"] == ["notes.md"]
    stored = File.objects.get(name="reports/raw.bin")
    assert bytes(stored.content) == bytes([0, 1, 2, 255]) and stored.size == 4
    assert stored.user == developer


def test_delete_and_a_missing_file(make_flow, run_flow, user_in) -> None:
    File.objects.create(name="old.txt", content=b"x", size=1)
    make_flow("cleaner", """
        def handler(system, this):
            system.file('old.txt').delete()
            try:
                system.file('old.txt').get('content')
            except flow_api.ResourceNotFoundError as exc:
                return {'gone': str(exc)}
        """)
    ended = run_flow("cleaner", user=user_in("Developers"))
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"gone": "file 'old.txt' does not exist"}
    assert not File.objects.filter(name="old.txt").exists()


def test_a_viewer_may_read_but_not_write_files(make_flow, run_flow, user_in) -> None:
    File.objects.create(name="shared.txt", content=b"shared", size=6)
    make_flow("reader", """
        def handler(system, this):
            this.save(output_value={'read': system.file('shared.txt').get('content')})
            system.file('shared.txt').save(content='changed')
        """)
    ended = run_flow("reader", user=user_in("Viewers"))
    assert ended.status == "ENDED_ERROR"
    assert ended.output_value == {"read": "shared"}
    assert "PermissionDenied" in ended.message
    assert "needs the permission executions.change_file" in ended.message
    assert bytes(File.objects.get(name="shared.txt").content) == b"shared"


def test_an_operators_productive_flow_writes_files(make_flow, run_flow, user_in) -> None:
    make_flow("report", """
        def handler(system, this):
            system.file('out/report.txt').save_text_content('done')
        """)
    ended = run_flow("report", user=user_in("Operators"), mode="productive")
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert bytes(File.objects.get(name="out/report.txt").content) == b"done"


def test_a_file_at_the_limit_is_saved_and_read_back(make_flow, run_flow, user_in) -> None:
    make_flow("full", """
        def handler(system, this):
            data = bytes(range(256)) * (10 * 1024 * 1024 // 256)
            system.file('full.bin').save(data)
            return {'same': system.file('full.bin').get_bytes_content() == data,
                    'size': system.file('full.bin').get('size')}
        """)
    ended = run_flow("full", user=user_in("Developers"))
    assert ended.status == "ENDED_SUCCESS", ended.message
    assert ended.output_value == {"same": True, "size": 10 * 1024 * 1024}


def test_a_file_over_the_limit_ends_the_flow_naming_the_limit(make_flow, run_flow, user_in) -> None:
    make_flow("big", """
        def handler(system, this):
            system.file('big.bin').save(b'x' * (10 * 1024 * 1024 + 1))
        """)
    ended = run_flow("big", user=user_in("Developers"))
    assert ended.status == "ENDED_ERROR"
    assert "the limit is 10485760 (AUTOMATION_MAX_FILE_BYTES)" in ended.message
    assert "line 3" in ended.message
    assert not File.objects.filter(name="big.bin").exists()


def test_a_file_far_over_the_limit_is_refused_before_it_is_sent(make_flow, run_flow, user_in) -> None:
    make_flow("huge", """
        def handler(system, this):
            system.file('huge.bin').save(b'x' * (17 * 1024 * 1024))
        """)
    ended = run_flow("huge", user=user_in("Developers"))
    assert ended.status == "ENDED_ERROR"
    assert "over the limit of" in ended.message and "that one call may send" in ended.message
    assert "line 3" in ended.message
    assert not File.objects.filter(name="huge.bin").exists()


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_files_in_the_api(user_in) -> None:
    developer, viewer = _client(user_in("Developers")), _client(user_in("Viewers"))
    created = developer.post("/api/files/", {
        "name": "data/a.csv", "content_base64": base64.b64encode(b"a,b\n1,2\n").decode(),
        "content_type": "text/csv"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["size"] == 8
    detail = viewer.get("/api/files/data/a.csv/")
    assert detail.status_code == 200
    assert base64.b64decode(detail.json()["content_base64"]) == b"a,b\n1,2\n"
    listed = viewer.get("/api/files/").json()["results"]
    assert [f["name"] for f in listed] == ["data/a.csv"] and "content_base64" not in listed[0]
    text = developer.patch("/api/files/data/a.csv/", {"content": "x"}, format="json")
    assert text.status_code == 200 and text.json()["size"] == 1
    refused = viewer.post("/api/files/", {"name": "b", "content": "x"}, format="json")
    assert refused.status_code == 403
    bad = developer.post("/api/files/", {"name": "c", "content_base64": "!!"}, format="json")
    assert bad.status_code == 400 and "content_base64" in bad.json()
    number = developer.post("/api/files/", {"name": "n", "content": 8.5e-76}, format="json")
    assert number.status_code == 400 and number.json()["content"] == ["must be a string"]
    assert not File.objects.filter(name="n").exists()
    # A form would read an empty content_base64 as absent and store `content` in its place.
    form = developer.post("/api/files/", {"name": "e", "content_base64": "", "content": "x"})
    assert form.status_code == 415 and not File.objects.filter(name="e").exists()
    with override_settings(AUTOMATION={**settings.AUTOMATION, "MAX_FILE_BYTES": 4}):
        too_big = developer.post("/api/files/", {"name": "d", "content": "12345"}, format="json")
    assert too_big.status_code == 413
    assert "the limit is 4 (AUTOMATION_MAX_FILE_BYTES)" in too_big.json()["content"]
    assert developer.delete("/api/files/data/a.csv/").status_code == 204


def test_a_file_is_uploaded_in_the_admin(admin) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    client = Client()
    client.force_login(admin)
    upload = SimpleUploadedFile("x.csv", b"a,b\n", content_type="text/csv")
    answer = client.post("/admin/executions/file/add/", {
        "name": "uploads/x.csv", "content_type": "", "upload": upload})
    assert answer.status_code == 302, answer.content.decode()[:2000]
    stored = File.objects.get(name="uploads/x.csv")
    assert bytes(stored.content) == b"a,b\n" and stored.size == 4
    assert stored.content_type == "text/csv" and stored.user == admin
    listing = client.get("/admin/executions/file/")
    assert listing.status_code == 200 and "uploads/x.csv" in listing.content.decode()
    with override_settings(AUTOMATION={**settings.AUTOMATION, "MAX_FILE_BYTES": 2}):
        refused = client.post("/admin/executions/file/add/", {
            "name": "big.csv", "upload": SimpleUploadedFile("b.csv", b"abc")})
    assert refused.status_code == 200
    assert "the limit is 2 (AUTOMATION_MAX_FILE_BYTES)" in refused.content.decode()
