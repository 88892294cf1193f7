"""The API's token authentication: django-rest-knox's, with one query less per call, and
that one written out.

Its own module, apart from `auth.py`'s views: REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES
names it, and a module importing DRF's views while that setting is being resolved would be
a circular import.
"""

from __future__ import annotations

import binascii
from hmac import compare_digest
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from knox import auth as knox_auth
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework.exceptions import AuthenticationFailed

from ..engine.rows import Shape


class TokenAuthentication(knox_auth.TokenAuthentication):
    """knox's token authentication, without a read of all the caller's tokens per call.

    knox looks the presented token up by its key, hashes it (SHA-512) and compares the
    digest in constant time: unchanged here. But before that, on every call, knox loads
    every token of the user to delete the expired ones: a second query per API call, which
    grows with the number of tokens the user holds. Here a call checks (and deletes, if
    expired) only the token it presents; an expired token is refused either way. A user's
    expired tokens are deleted when a new token is issued to them
    (`executions.api.auth.issue_token`).

    And the token with its user is read by one statement written out (`engine.rows`):
    compiling that join through the ORM cost each API call twice what PostgreSQL takes
    to answer it.
    """

    def authenticate_credentials(self, token: bytes) -> tuple[Any, AuthToken]:
        refused = AuthenticationFailed("Invalid token.")
        try:
            presented = token.decode("utf-8")
        except UnicodeDecodeError:  # a header of other bytes than a token has
            raise refused from None
        for auth_token in _tokens_by_key(presented[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(presented)
            except (TypeError, binascii.Error):
                raise refused from None
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                return self.validate_user(auth_token)  # type: ignore[no-any-return]
        raise refused

    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False


_TOKEN = Shape(AuthToken)
_USER = Shape(get_user_model())


def _tokens_by_key(key: str) -> list[AuthToken]:
    """The tokens with this key (their first characters), each with its user loaded."""
    q = connection.ops.quote_name
    token, user = AuthToken._meta, _USER.model._meta
    assert user.pk is not None
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_TOKEN.columns()}, {_USER.columns()} "
            f"FROM {q(token.db_table)} JOIN {q(user.db_table)} ON {q(user.db_table)}.{q(user.pk.column)}"
            f" = {q(token.db_table)}.{q(token.get_field('user').column)}"  # type: ignore[union-attr]
            f" WHERE {q(token.db_table)}.{q(token.get_field('token_key').column)} = %s",  # type: ignore[union-attr]
            [key],
        )
        found = cursor.fetchall()
    split = len(_TOKEN.fields)
    made = []
    for row in found:
        auth_token = _TOKEN.instances([row[:split]])[0]
        auth_token.user = _USER.instances([row[split:]])[0]
        made.append(auth_token)
    return made
