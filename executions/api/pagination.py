"""The API's one page size rule: `?limit` and `?offset`, with a ceiling on `limit`."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 1000


class Page(LimitOffsetPagination):
    """PAGE_SIZE (50) rows unless `?limit` says otherwise; a `?limit` over MAX_LIMIT is
    clamped to it, so no request reads a whole table (or its outputs) at once."""

    max_limit = MAX_LIMIT
    limit_query_description = (
        f"Number of results to return per page (default 50, at most {MAX_LIMIT}; "
        f"a larger value is clamped to {MAX_LIMIT})."
    )
