"""Rows read by hand-written statements, on the paths every execution takes.

Compiling a SELECT of an execution's forty-odd columns through the ORM costs about 0.6 ms
of Python each time (measured, with PostgreSQL answering the statement in 0.15 ms): a wait,
a claim, a start's flow and an API answer each paid it once per execution. A `Shape` works
out its column list and each column's converters (what the ORM applies: JSON, datetimes on
SQLite, encrypted fields) once per database, and turns rows into model instances as the
ORM's own `from_db` makes them (fields left out are deferred, loaded when first read).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Generic, TypeVar

from django.db import connections
from django.db.models import Field, Model

from ..models import Execution, Flow

M = TypeVar("M", bound=Model)


class Shape(Generic[M]):
    """Some columns of a model's table (all by default), in the model's field order."""

    def __init__(self, model: type[M], names: Iterable[str] | None = None) -> None:
        wanted = None if names is None else set(names)
        self.model = model
        self.fields: list[Field[Any, Any]] = [
            f for f in model._meta.concrete_fields if wanted is None or f.name in wanted]
        self.attnames = [f.attname for f in self.fields]
        self.table = model._meta.db_table
        self._by_database: dict[str, tuple[str, str, list[tuple[int, list[Any]]]]] = {}

    def _compiled(self, using: str) -> tuple[str, str, list[tuple[int, list[Any]]]]:
        """(quoted table, quoted table-qualified columns, (index, converters) of the columns
        that have any) for this database."""
        compiled = self._by_database.get(using)
        if compiled is None:
            conn = connections[using]
            converters = []
            for index, field in enumerate(self.fields):
                col = field.get_col(self.table)
                # As the ORM's compiler applies them (SQLCompiler.get_converters).
                functions = conn.ops.get_db_converters(col) + col.get_db_converters(conn)
                if functions:  # most columns have none: a row skips them
                    converters.append((index, [(function, col) for function in functions]))
            table = conn.ops.quote_name(self.table)
            columns = ", ".join(f"{table}.{conn.ops.quote_name(f.column)}" for f in self.fields)
            compiled = self._by_database[using] = (table, columns, converters)
        return compiled

    def columns(self, using: str = "default") -> str:
        """The columns `instances` expects, in its order, named with their table (for a
        SELECT, a join, or RETURNING)."""
        return self._compiled(using)[1]

    def instances(self, rows: Iterable[Sequence[Any]], using: str = "default") -> list[M]:
        """Model instances from rows of `columns()`, converted as the ORM converts them."""
        conn = connections[using]
        converters = self._compiled(using)[2]
        made = []
        for row in rows:
            values = list(row)
            for index, functions in converters:
                for function, col in functions:
                    values[index] = function(values[index], col, conn)
            made.append(self.model.from_db(using, self.attnames, values))
        return made

    def where(self, condition: str, params: Sequence[Any], using: str = "default") -> list[M]:
        """The rows for which `condition` (SQL, with %s placeholders for `params`) holds."""
        table, columns, _ = self._compiled(using)
        with connections[using].cursor() as cursor:
            cursor.execute(f"SELECT {columns} FROM {table} WHERE {condition}", list(params))
            return self.instances(cursor.fetchall(), using)


EXECUTION = Shape(Execution)
# What starting an execution of a flow needs (not its script: the runner's compile cache
# keys on (flow id, revision) and reads the script when it has not compiled that revision).
FLOW_TO_START = Shape(Flow, ["id", "name", "enabled", "queue", "timeout", "revision",
                             "concurrency_limit", "retry_policy"])


def executions(ids: Sequence[int], using: str = "default") -> list[Execution]:
    """The executions of `ids` that exist, in no particular order."""
    if not ids:
        return []
    return EXECUTION.where(f"id IN ({', '.join(['%s'] * len(ids))})", ids, using)
