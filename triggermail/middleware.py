"""Middleware the ingest API's POSTs skip: what serves people (pages, Admin) and not programs.

Profiled (cProfile over 400 /v1/track posts through Django's test client): the middleware stack
took ~37% of a request's time before the view, CSP alone ~17% (django-csp builds its policy string
for every answer, twice, JSON included). An ingest POST carries a write key, not a session or a
user, and answers JSON that no browser renders as a page, so it needs no session, user, messages,
static files or Content-Security-Policy. Each class here is the library's middleware, unchanged for
every other request (Admin and pages). SecurityMiddleware (HTTPS redirect, HSTS, nosniff),
CommonMiddleware (ALLOWED_HOSTS), CsrfViewMiddleware (the ingest views are csrf_exempt),
XFrameOptionsMiddleware and django-axes (whose check wants its own class; it only acts on logins)
run for the ingest too.
"""

from __future__ import annotations

from typing import Any

import csp.middleware
import whitenoise.middleware
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponseBase

from triggermail.refusals import INGEST_PATHS

_INGEST_PATHS = frozenset(path.decode() for path in INGEST_PATHS)


def is_ingest_post(request: HttpRequest) -> bool:
    return request.method == "POST" and request.path_info in _INGEST_PATHS


class _NotForIngest:
    """Before the middleware's own class in the bases: an ingest POST goes straight on. Subclasses,
    so that Django's checks (admin.E408-E410) still find the middleware they require."""

    get_response: Any

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if is_ingest_post(request):
            response: HttpResponseBase = self.get_response(request)
            return response
        return super().__call__(request)  # type: ignore[misc]


class CSPMiddleware(_NotForIngest, csp.middleware.CSPMiddleware):
    pass


class WhiteNoiseMiddleware(_NotForIngest, whitenoise.middleware.WhiteNoiseMiddleware):
    pass


class SessionMiddleware(_NotForIngest, sessions.SessionMiddleware):
    pass


class AuthenticationMiddleware(_NotForIngest, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(_NotForIngest, messages.MessageMiddleware):
    pass
