"""Field validators shared by the models and the API (one name rule for every named thing)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from django.core.exceptions import ValidationError


def validate_script(source: str) -> None:
    """Refuse a script that does not compile, naming the line."""
    try:
        compile(source, "<flow>", "exec")
    except SyntaxError as exc:
        raise ValidationError(f"line {exc.lineno}: {exc.msg}") from None
    except ValueError as exc:  # e.g. NUL bytes in the source
        raise ValidationError(str(exc)) from None


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
