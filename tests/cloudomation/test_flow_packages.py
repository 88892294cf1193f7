"""The packages Cloudomation's flows import (yaml, dateutil, pytz) are there in the flow
host, and the admin dashboard lists the packages flows can import."""

from __future__ import annotations

import importlib.metadata

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from executions import flow_packages


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("worker")
def test_a_flow_imports_yaml_dateutil_and_pytz(make_flow, run_flow):
    make_flow("monthly", """
        import datetime

        import flow_api
        import pytz
        import yaml
        from dateutil.relativedelta import relativedelta

        def handler(system: flow_api.System, this: flow_api.Execution):
            config = yaml.safe_load('schedule:\\n  day: 31\\n  zone: Europe/Vienna\\n')
            zone = pytz.timezone(config['schedule']['zone'])
            start = zone.localize(datetime.datetime(2026, 1, config['schedule']['day'], 9, 0))
            following = start + relativedelta(months=1)
            this.save(output_value={
                'config': config,
                'next': following.isoformat(),
                'utc': following.astimezone(pytz.utc).isoformat(),
                'dumped': yaml.safe_dump({'a': [1, 2]}),
            })
            return this.success('planned')
    """)
    ended = run_flow("monthly")
    assert ended.status == "ENDED_SUCCESS", ended.message
    out = ended.output_value
    assert out["config"] == {"schedule": {"day": 31, "zone": "Europe/Vienna"}}
    assert out["next"] == "2026-02-28T09:00:00+01:00"  # relativedelta clamps to the month's end
    assert out["utc"] == "2026-02-28T08:00:00+00:00"
    assert out["dumped"] == "a:\n- 1\n- 2\n"


def test_the_dashboard_lists_the_flow_packages_with_their_versions(db: None) -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("ada", "ada@example.org", "pw-ada-123"))
    html = client.get(reverse("admin:index")).content.decode()
    section = html[html.index('id="dash-flow-packages"'):]
    section = section[:section.index("</section>")]
    for name in ("PyYAML", "python-dateutil", "pytz"):
        assert f"{name} <b>{importlib.metadata.version(name)}</b>" in section
    assert "flow-requirements.txt" in section


def test_flow_requirements_add_to_the_list(tmp_path, monkeypatch) -> None:
    requirements = tmp_path / "flow-requirements.txt"
    requirements.write_text("# comment\n\nrequests>=2  # for the REST calls\n"
                            "-r other.txt\nno-such-package-here==1.0\n")
    monkeypatch.setattr(flow_packages, "REQUIREMENTS_FILE", requirements)
    flow_packages.installed.cache_clear()
    try:
        rows = dict(flow_packages.installed())
    finally:
        flow_packages.installed.cache_clear()
    assert list(rows) == ["PyYAML", "python-dateutil", "pytz", "requests",
                          "no-such-package-here"]
    assert rows["requests"] == importlib.metadata.version("requests")
    assert rows["no-such-package-here"] == "not installed"
