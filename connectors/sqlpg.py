"""SQLPG: one SQL call on PostgreSQL with psycopg 3, in one transaction, connection closed.

Values JSON cannot hold come back in a lossless text form (see `to_json`):
    date, time, datetime   ISO 8601 text ('2024-05-01', '13:45:00.5+02:00', ...)
    timedelta (interval)   ISO 8601 duration: '[-]P<days>DT<seconds>[.<micro>]S'
    Decimal (numeric)      its exact decimal text ('12.50', 'NaN')
    float NaN / infinity   'NaN', 'Infinity', '-Infinity'
    UUID                   canonical text
    bytes (bytea)          base64 text
    anything else          str(value) (e.g. inet, ranges)
Arrays become lists and json/jsonb values stay JSON.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import math
import re
import time
import uuid
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .base import Connector as BaseConnector
from .base import ConnectorError, InputError, json_number, mask_url

CALLS = ("execute", "fetch", "fetchrow", "fetchval")
# `$1` placeholders (PostgreSQL's own, as asyncpg uses) rather than psycopg's `%s`
_NATIVE = re.compile(r"\$\d+")
_PSYCOPG = re.compile(r"%(s|b|t|\([^)]+\)[sbt])")


def to_json(value: Any) -> Any:
    """A JSON-safe, lossless form of a value psycopg returned (see the module docstring)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return json_number(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return iso_duration(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    return str(value)


def iso_duration(value: dt.timedelta) -> str:
    """An exact ISO 8601 duration: days and seconds with microseconds."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    days, rest = divmod(abs(micros), 86_400 * 1_000_000)
    seconds, micro = divmod(rest, 1_000_000)
    fraction = f".{micro:06d}".rstrip("0") if micro else ""
    return f"{sign}P{days}DT{seconds}{fraction}S"


def _param(value: Any) -> Any:
    # A JSON object parameter goes to PostgreSQL as jsonb; psycopg would refuse a dict.
    if isinstance(value, dict):
        return Jsonb(value)
    return value


class Connector(BaseConnector):
    """One of `execute` (result: the row count), `fetch` (a list of rows as objects),
    `fetchrow` (one row or null) or `fetchval` (the first column of the first row)."""

    type_name = "SQLPG"
    inputs = {
        "host": "server host name or address",
        "port": "server port (default 5432)",
        "database": "database name (default: the user name)",
        "user": "user name",
        "password": "password",
        "dsn": "a libpq connection string or postgresql:// URL instead of host, port, ...",
        "sslmode": "libpq sslmode (disable, prefer, require, verify-full, ...)",
        "execute": "SQL to run; result is the row count",
        "fetch": "SQL whose rows are returned as a list of objects",
        "fetchrow": "SQL whose first row is returned as an object (or null)",
        "fetchval": "SQL whose first column of the first row is returned",
        "params": "parameters: a list for %s or $1 placeholders, an object for %(name)s",
        "timeout": "seconds to connect, and the statement timeout (default 60)",
    }
    required = (("host", "dsn"), CALLS)
    exclusive = (CALLS, ("host", "dsn"))
    secret_inputs = frozenset({"dsn"})
    default_timeout = 60.0

    def call(self) -> dict[str, Any]:
        kind = next(c for c in CALLS if self.given(c))
        sql = self.get(kind)
        if not isinstance(sql, str):
            raise InputError(f"{kind} must be SQL text")
        params = self._params(sql)
        timeout = self.timeout()
        target = self._target()
        started = time.monotonic()
        conn: psycopg.Connection[Any] | None = None
        finished = False
        try:
            with self.interruptible():
                conn = psycopg.connect(
                    **self._conninfo(timeout),
                    options=f"-c statement_timeout={max(1, int(timeout * 1000))}",
                )
                cursor_class = psycopg.RawCursor if self._native(sql) else psycopg.Cursor
                with cursor_class(conn, row_factory=dict_row) as cursor:
                    cursor.execute(sql, params)
                    result, count = self._result(kind, cursor)
                    status = cursor.statusmessage
                conn.commit()
            finished = True
        except psycopg.Error as exc:
            raise ConnectorError(self._describe(exc, kind, target, timeout)) from None
        finally:
            if conn is not None:
                if not finished and not conn.closed:
                    # Interrupted mid-query (a cancel): stop the server's work too.
                    with contextlib.suppress(Exception):  # closing below is what matters
                        conn.cancel_safe(timeout=2)
                conn.close()
        self.log(f"SQLPG {kind} on {target}: {status or 'OK'} ({count} row"
                 f"{'' if count == 1 else 's'}, {time.monotonic() - started:.2f} s)")
        return {"result": result, "status": status}

    def _result(self, kind: str, cursor: psycopg.Cursor[Any]) -> tuple[Any, int]:
        if kind == "execute":
            return cursor.rowcount, max(cursor.rowcount, 0)
        if kind == "fetch":
            rows = cursor.fetchall()
            return [to_json(dict(r)) for r in rows], len(rows)
        row = cursor.fetchone()
        if kind == "fetchrow":
            return (to_json(dict(row)) if row is not None else None), int(row is not None)
        if row is None:
            return None, 0
        return to_json(next(iter(row.values()), None)), 1

    def _native(self, sql: str) -> bool:
        return bool(_NATIVE.search(sql)) and not _PSYCOPG.search(sql)

    def _params(self, sql: str) -> Any:
        params = self.get("params")
        if params is None or params == [] or params == {}:
            return None
        if isinstance(params, dict):
            if self._native(sql):
                raise InputError("params must be a list for $1 placeholders")
            return {str(k): _param(v) for k, v in params.items()}
        if isinstance(params, list | tuple):
            return [_param(v) for v in params]
        return [_param(params)]  # one value for one placeholder

    def _conninfo(self, timeout: float) -> dict[str, Any]:
        info: dict[str, Any] = {"connect_timeout": max(2, math.ceil(timeout))}
        if self.given("dsn"):
            info["conninfo"] = str(self.get("dsn"))
        else:
            info.update(host=self.get("host"), port=int(self.get("port", 5432)))
            for name, key in (("database", "dbname"), ("user", "user"), ("password", "password")):
                if self.given(name):
                    info[key] = str(self.get(name))
        if self.given("sslmode"):
            info["sslmode"] = self.get("sslmode")
        return info

    def _target(self) -> str:
        if self.given("dsn"):
            return mask_url(str(self.get("dsn"))) if "://" in str(self.get("dsn")) else "dsn"
        return f"{self.get('host')}:{self.get('port', 5432)}/{self.get('database', '')}"

    def _describe(self, exc: psycopg.Error, kind: str, target: str, timeout: float) -> str:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        text = lines[0] if lines else type(exc).__name__
        if isinstance(exc, psycopg.errors.QueryCanceled):
            text += f" (timeout {timeout:g} s)"
        state = f" [SQLSTATE {exc.sqlstate}]" if getattr(exc, "sqlstate", None) else ""
        return f"SQLPG {kind} on {target} failed: {type(exc).__name__}: {text}{state}"
