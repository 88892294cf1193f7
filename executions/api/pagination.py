"""The API's one page size rule: `?limit` and `?offset`, with a ceiling on `limit`."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000_000  # past any table here; larger numbers would overflow SQL's OFFSET


class Page(LimitOffsetPagination):
    """PAGE_SIZE (50) rows unless `?limit` says otherwise; a `?limit` over MAX_LIMIT is
    clamped to it, so no request reads a whole table (or its outputs) at once. A `?limit`
    or `?offset` that is not a whole number in range is refused 400 naming it (DRF would
    quietly use its default instead)."""

    max_limit = MAX_LIMIT
    limit_query_description = (
        f"Number of results to return per page (default 50, at most {MAX_LIMIT}; "
        f"a larger value is clamped to {MAX_LIMIT})."
    )

    def get_limit(self, request: Request) -> int | None:
        if self.limit_query_param not in request.query_params:
            return self.default_limit
        return min(_whole(request, self.limit_query_param, minimum=1), MAX_LIMIT)

    def get_offset(self, request: Request) -> int:
        if self.offset_query_param not in request.query_params:
            return 0
        return _whole(request, self.offset_query_param, minimum=0, maximum=MAX_OFFSET)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"]["minimum"] = 1
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"].update(minimum=0, maximum=MAX_OFFSET)
        return parameters


def refuse_repeated(request: Request, *names: str) -> None:
    """400 for a query parameter that takes one value but was given several (a QueryDict
    would quietly use the last one)."""
    for name in names:
        if len(request.query_params.getlist(name)) > 1:
            raise serializers.ValidationError({name: ["give one value, not several"]})


def _whole(request: Request, name: str, *, minimum: int, maximum: int | None = None) -> int:
    refuse_repeated(request, name)
    raw = request.query_params[name]
    value = None
    if re.fullmatch(r"-?[0-9]+", raw):  # a long number is merely large (a limit is clamped)
        value = int(raw) if len(raw) <= 30 else (-1 if raw.startswith("-") else 10**30)
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" + (f" and at most {maximum}" if maximum is not None else "")
        raise serializers.ValidationError({name: [f"must be a whole number {bounds}, not {raw[:50]!r}"]})
    return value
