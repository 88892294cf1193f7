"""The API's token authentication: django-rest-knox's, with one query less per call.

Its own module, apart from `auth.py`'s views: REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES
names it, and a module importing DRF's views while that setting is being resolved would be
a circular import.
"""

from __future__ import annotations

from django.utils import timezone
from knox import auth as knox_auth
from knox.models import AuthToken
from knox.signals import token_expired


class TokenAuthentication(knox_auth.TokenAuthentication):
    """knox's token authentication, without a read of all the caller's tokens per call.

    knox looks the presented token up by its key, hashes it (SHA-512) and compares the
    digest in constant time: unchanged here. But before that, on every call, knox loads
    every token of the user to delete the expired ones: a second query per API call, which
    grows with the number of tokens the user holds. Here a call checks (and deletes, if
    expired) only the token it presents; an expired token is refused either way. A user's
    expired tokens are deleted when a new token is issued to them
    (`executions.api.auth.issue_token`).
    """

    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False
