"""Which values a flow may hand the engine: JSON as PostgreSQL's jsonb stores it.

Both sides of the port run `json_safe`: the flow host before it sends (so that the flow
gets the error where it made the call) and the engine when it receives (the host is not
trusted to have checked). No Django here: the flow host imports this module.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
import re
import uuid
from typing import Any

from .exceptions import FlowApiError

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def plain(value: Any) -> Any:
    """Dates, times, durations, decimals and UUIDs as the strings Django's JSON encoder
    writes (what flows stored before the host existed); TypeError for anything else."""
    if isinstance(value, datetime.datetime):
        text = value.isoformat()
        if value.microsecond:
            text = text[:23] + text[26:]
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.time):
        if value.utcoffset() is not None:
            raise TypeError("JSON can't represent timezone-aware times.")
        text = value.isoformat()
        return text[:12] if value.microsecond else text
    if isinstance(value, datetime.timedelta):
        return _duration(value)
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _duration(value: datetime.timedelta) -> str:
    sign = "-" if value < datetime.timedelta(0) else ""
    value = abs(value)
    days, seconds = value.days, value.seconds
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    micro = f".{value.microseconds:06d}" if value.microseconds else ""
    return f"{sign}P{days}DT{hours:02d}H{minutes:02d}M{seconds:02d}{micro}S"


def json_safe(value: Any, name: str = "value") -> Any:
    """`value` as PostgreSQL's jsonb stores it, or `FlowApiError` naming what cannot be
    stored and where (`output_value['x'] is a set`): no set, bytes or other object, no NaN
    or infinity, no NUL character or lone surrogate in a string or key."""
    try:
        return _json_value(value, name, set())
    except RecursionError:
        raise FlowApiError(f"{name} is nested too deeply to be stored as JSON") from None


def _json_value(value: Any, path: str, seen: set[int]) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FlowApiError(f"{path} is {value!r}, which JSON cannot hold")
        return float(value)
    if isinstance(value, str):
        return _json_str(value, path)
    if isinstance(value, dict | list | tuple):
        if id(value) in seen:
            raise FlowApiError(f"{path} contains itself, which JSON cannot hold")
        seen.add(id(value))
        try:
            if isinstance(value, dict):
                return {
                    _json_key(k, path): _json_value(v, f"{path}[{k!r}]", seen)
                    for k, v in value.items()
                }
            return [_json_value(v, f"{path}[{i}]", seen) for i, v in enumerate(value)]
        finally:
            seen.discard(id(value))
    try:
        converted = plain(value)
    except TypeError:
        raise FlowApiError(f"{path} is {a_type(value)}, which JSON cannot hold") from None
    return _json_value(converted, path, seen)


def a_type(value: Any) -> str:
    """"a set", "an int": the type of `value` as a message names it."""
    kind = type(value).__name__
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def _json_key(key: Any, path: str) -> str:
    if isinstance(key, str):
        return _json_str(key, f"a key of {path}")
    if key is None or isinstance(key, bool | int | float):  # json.dumps writes these as text
        return json.dumps(key)
    raise FlowApiError(f"{path} has a key of type {type(key).__name__}; JSON keys are strings")


def _json_str(text: str, path: str) -> str:
    if "\x00" in text:
        raise FlowApiError(f"{path} contains a NUL character (\\x00), which JSON cannot hold")
    found = _SURROGATE.search(text)
    if found is not None:
        raise FlowApiError(
            f"{path} contains a lone surrogate ({found.group()!a} at position {found.start()}), "
            "which JSON cannot hold"
        )
    return str.__str__(text)  # a str subclass (an enum's value) as the plain text
