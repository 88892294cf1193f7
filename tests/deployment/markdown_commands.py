"""The shell commands of a Markdown file, as a reader copies them, and what it says they print.

A command is a line of a ```sh or ```bash block, with its `\\` continuations, a quoted
argument that goes on over several lines, and its here-document. What it prints is the
comment under it or at the end of its line, when that begins with `->` or a JSON value:

    curl -s http://127.0.0.1:8000/health   # {"status": "ok"}: the process answers
    # {"id": 18, "url": "http://127.0.0.1:8000/api/executions/18/"}   (202)
    python manage.py check --deploy        # -> System check identified no issues

In what is printed, `...` stands for any text (`"token": "..."`; `{...}`, `[...]`, `, ...}`:
any keys or items); an `"id"` or a number in a path matches any number; `(202)` after the
JSON is the HTTP status (a curl answers 2xx unless it says otherwise).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FENCE = re.compile(r"^[ \t]*```(?:sh|bash)\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)


@dataclass
class Command:
    document: str
    line: int
    text: str
    printed: str | None = None  # the comment that says what it prints

    def __str__(self) -> str:
        return f"{self.document}:{self.line}: {self.text}"


def commands(path: Path) -> list[Command]:
    text = path.read_text()
    found: list[Command] = []
    for block in FENCE.finditer(text):
        first = text.count("\n", 0, block.start(1)) + 1
        lines = block.group(1).splitlines()
        indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
        lines = [line[indent:] for line in lines]
        in_block: list[Command] = []
        i = 0
        while i < len(lines):
            number, line = first + i, lines[i].rstrip()
            i += 1
            if not line.strip():
                continue
            if line.lstrip().startswith("#"):
                note = line.lstrip()[1:].strip()
                if in_block and in_block[-1].printed is None and says_printed(note):
                    in_block[-1].printed = note
                continue
            while i < len(lines) and (line.endswith("\\") or _open_quote(line)):
                line = line[:-1].rstrip() + " " + lines[i].strip() if line.endswith("\\") else line + "\n" + lines[i]
                i += 1
            here = re.search(r"<<-?\s*'?(\w+)'?", line)
            if here:
                body = []
                while i < len(lines) and lines[i].strip() != here.group(1):
                    body.append(lines[i])
                    i += 1
                i += 1
                line = "\n".join([line, *body, here.group(1)])
            command, note = split_comment(line)
            in_block.append(Command(path.name, number, command, note if says_printed(note) else None))
        found += in_block
    return found


def _open_quote(line: str) -> bool:
    """Whether a single-quoted argument is still open at the end of `line`."""
    quote = None
    for char in line:
        if quote is None and char in "'\"":
            quote = char
        elif char == quote:
            quote = None
    return quote == "'"


def split_comment(line: str) -> tuple[str, str]:
    """(command, comment): a `#` after whitespace and outside quotes starts the comment."""
    quote = None
    first_line_end = line.find("\n") if "\n" in line else len(line)
    for index, char in enumerate(line[:first_line_end]):
        if quote is None and char in "'\"":
            quote = char
        elif char == quote:
            quote = None
        elif quote is None and char == "#" and index and line[index - 1] in " \t":
            return line[:index].rstrip() + line[first_line_end:], line[index + 1:first_line_end].strip()
    return line, ""


def says_printed(note: str) -> bool:
    return note.startswith(("->", "{", "["))


@dataclass
class Printed:
    """What a command's comment says it prints: JSON (matched as a pattern), or text."""
    json: Any = None
    text: str | None = None
    status: int | None = None


def printed(note: str) -> Printed:
    note = note.removeprefix("->").strip()
    if not note.startswith(("{", "[")):
        return Printed(text=note)
    end = _json_end(note)
    value = note[:end]
    status = re.search(r"\((\d{3})\)", note[end:])
    value = re.sub(r",\s*\.\.\.\s*(?=[}\]])", "", value)  # ", ...}": other keys
    value = re.sub(r"\{\s*\.\.\.\s*\}", "{}", value)
    value = re.sub(r"\[\s*\.\.\.\s*\]", "[]", value)
    return Printed(json=json.loads(value), status=int(status.group(1)) if status else None)


def _json_end(note: str) -> int:
    depth, quoted = 0, False
    for index, char in enumerate(note):
        if quoted:
            quoted = char != '"' or note[index - 1] == "\\"
        elif char == '"':
            quoted = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index + 1
    raise ValueError(f"unbalanced JSON in {note!r}")


def text_pattern(expected: str) -> re.Pattern[str]:
    """`...` is any text; a number in a path is any number."""
    parts = expected.split("...")
    escaped = [re.sub(r"(?<=/)\d+(?=/)", r"\\d+", re.escape(part)) for part in parts]
    return re.compile(".*".join(escaped), re.DOTALL)


def matches(expected: Any, actual: Any, key: str = "") -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            name in actual and matches(value, actual[name], name) for name, value in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) >= len(expected) and all(
            matches(e, a) for e, a in zip(expected, actual, strict=False)
        )
    if isinstance(expected, str) and isinstance(actual, str):
        return text_pattern(expected).fullmatch(actual) is not None
    if key == "id" and isinstance(expected, int):
        return isinstance(actual, int) and not isinstance(actual, bool)
    return bool(expected == actual)
