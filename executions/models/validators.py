"""Field validators shared by the models and the API (one name rule for every named thing)."""

from __future__ import annotations

import ast
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from django.core.exceptions import ValidationError


def validate_script(source: str) -> None:
    """Refuse a script that does not compile, naming the line, or that defines no handler.

    Read, never run: saving a script must not execute it. A handler bound at the top level
    in any way (def, assignment, import) is taken; the runner checks the rest when it runs.
    """
    try:
        compile(source, "<flow>", "exec")  # also what only the compiler finds
        tree = ast.parse(source, "<flow>")
    except SyntaxError as exc:
        raise ValidationError(f"line {exc.lineno}: {exc.msg}") from None
    except ValueError as exc:  # e.g. NUL bytes in the source
        raise ValidationError(str(exc)) from None
    if not any(_binds_handler(statement) for statement in tree.body):
        raise ValidationError(
            "the script defines no handler(system, this) function, which is what the "
            "engine calls to run it"
        )


def _binds_handler(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return statement.name == "handler"
    if isinstance(statement, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == "handler" for t in statement.targets)
    if isinstance(statement, ast.AnnAssign | ast.AugAssign):
        return isinstance(statement.target, ast.Name) and statement.target.id == "handler"
    if isinstance(statement, ast.Import | ast.ImportFrom):
        return any((alias.asname or alias.name) == "handler" for alias in statement.names)
    if isinstance(statement, ast.If | ast.Try):  # e.g. a handler defined per Python version
        branches = [statement.body, statement.orelse]
        if isinstance(statement, ast.Try):
            branches += [statement.finalbody, *(h.body for h in statement.handlers)]
        return any(_binds_handler(inner) for branch in branches for inner in branch)
    return False


def validate_cron(expression: str) -> None:
    """Refuse a cron expression that croniter cannot read, saying why."""
    if len(expression.split()) != 5:
        raise ValidationError(
            f"{expression!r} is not a cron expression: it needs 5 fields "
            "(minute hour day-of-month month day-of-week)"
        )
    try:
        croniter(expression)
    except (ValueError, KeyError) as exc:
        raise ValidationError(f"{expression!r} is not a valid cron expression: {exc}") from None


def validate_timezone(name: str) -> None:
    """Refuse a name that is not an IANA time zone."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{name!r} is not an IANA time zone (e.g. Europe/Vienna)") from None


def validate_name(name: str) -> None:
    """Refuse a name that cannot be one segment of a URL path."""
    if "/" in name or name.strip() != name or not name:
        raise ValidationError("a name has no '/' and no leading or trailing spaces")


RETRY_DEFAULTS: dict[str, Any] = {
    "max_attempts": 1, "initial_delay": 1.0, "max_delay": 60.0, "multiplier": 2.0, "retry_on": [],
}
_RETRY_BOUNDS = {  # key: (lowest, highest)
    "max_attempts": (1, 100), "initial_delay": (0, 7 * 86400), "max_delay": (0, 7 * 86400),
    "multiplier": (1, 100),
}


def clean_retry_policy(value: Any) -> dict[str, Any]:
    """A retry policy with its defaults filled in ({} for none), or ValidationError naming
    the key: `{"max_attempts": 3, "initial_delay": 1, "max_delay": 60, "multiplier": 2,
    "retry_on": ["ConnectionError"]}` (seconds; `retry_on` empty: any error)."""
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        raise ValidationError("retry_policy must be a JSON object")
    unknown = sorted(set(value) - set(RETRY_DEFAULTS))
    if unknown:
        raise ValidationError(
            f"retry_policy has unknown key(s) {', '.join(unknown)}; it takes "
            f"{', '.join(RETRY_DEFAULTS)}"
        )
    policy = {**RETRY_DEFAULTS, **value}
    for key, (lowest, highest) in _RETRY_BOUNDS.items():
        number = policy[key]
        whole = key == "max_attempts"
        if isinstance(number, bool) or not isinstance(number, int if whole else (int, float)):
            kind = "a whole number" if whole else "a number of seconds" if "delay" in key else "a number"
            raise ValidationError(f"retry_policy.{key} must be {kind}")
        if not lowest <= number <= highest:
            raise ValidationError(f"retry_policy.{key} must be from {lowest} to {highest}")
    if policy["max_delay"] < policy["initial_delay"]:
        raise ValidationError("retry_policy.max_delay must not be less than initial_delay")
    retry_on = policy["retry_on"]
    if not isinstance(retry_on, list) or not all(isinstance(n, str) and n for n in retry_on) or len(retry_on) > 50:
        raise ValidationError("retry_policy.retry_on must be a list of exception names")
    return policy


def validate_retry_policy(value: Any) -> None:
    clean_retry_policy(value)
