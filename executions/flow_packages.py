"""The Python packages flows can import, as the admin dashboard lists them.

Flows run in the engine's interpreter (the flow host is `python -I` of the same venv or
image), so what is installed there is what a flow can import. The engine brings PyYAML,
python-dateutil and pytz for flows (pyproject.toml); a site adds more in
flow-requirements.txt at the repository root, which `make venv` and the Dockerfile install.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
from pathlib import Path

# The packages pyproject.toml installs for flows (its comment says so).
BUILT_IN = ("PyYAML", "python-dateutil", "pytz")
REQUIREMENTS_FILE = Path(__file__).resolve().parent.parent / "flow-requirements.txt"
# A requirement's name: what precedes a version specifier, an extra, a marker or a URL.
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requested() -> list[str]:
    """The names flows are meant to have: the built-in ones, then flow-requirements.txt's."""
    names = list(BUILT_IN)
    try:
        lines = REQUIREMENTS_FILE.read_text(encoding="utf-8").splitlines()
    except OSError:  # an installed copy without the file: only the built-in ones
        lines = []
    for line in lines:
        line = line.split("#", 1)[0]
        found = _NAME.match(line)
        if found and not line.lstrip().startswith("-"):
            names.append(found.group(1))
    return list(dict.fromkeys(names))


@functools.cache
def installed() -> tuple[tuple[str, str], ...]:
    """(name, version or 'not installed') of each requested package; read once per process
    (installing a package means restarting the worker anyway)."""
    rows = []
    for name in requested():
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        rows.append((name, version))
    return tuple(rows)
