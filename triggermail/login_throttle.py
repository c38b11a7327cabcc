"""Admin login throttling with django-axes: the authentication backend and the client's address.

django-axes counts failed logins per (username, address) and refuses a locked-out pair before any
password is checked (settings: AXES_*; README, Security). Two things are ours: which address is the
client's when proxies stand in front, and what happens when there is no request at all.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' lockout check, for logins that come with a request.

    Every login form passes its request. `authenticate()` without one (the test client's `login`, a
    shell) has no address to lock out, and axes would refuse it with an error; it is left to the
    next backend, as before throttling existed.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: X-Forwarded-For's entry TRUSTED_PROXY_COUNT places from the right.

    Each of our proxies appends the address it received the connection from, so the last
    TRUSTED_PROXY_COUNT entries are facts and everything left of them is what the client wrote
    (and can forge to escape a lockout). With no trusted proxy, the connection's own address.
    """
    count: int = settings.TRUSTED_PROXY_COUNT
    remote = request.META.get("REMOTE_ADDR")
    if count == 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    # Fewer entries than proxies: the request did not come through all of them; the nearest one wins.
    return forwarded[-count] if len(forwarded) >= count else (forwarded[0] if forwarded else remote)
