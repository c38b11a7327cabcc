"""WSGI entry point for gunicorn (see Procfile)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

from triggermail.refusals import INGEST_PATHS, basic_user, refusal_headers_note, request_context, write_key_hash

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggermail.settings")

StartResponse = Callable[..., Any]


def _refusal_headers_capture(environ: dict[str, Any], headers: list[tuple[str, str]]) -> None:
    """Keep the headers of an ingest 429 (after every middleware) for the worker's early answers."""
    from django.conf import settings

    raw_key = basic_user(environ.get("HTTP_AUTHORIZATION", ""))
    if not raw_key or environ.get("PATH_INFO", "").encode("latin-1") not in INGEST_PATHS:
        return
    proxy = settings.SECURE_PROXY_SSL_HEADER
    # WSGI gives header values as latin-1 strings of the bytes received: encoding gives them back.
    host = environ.get("HTTP_HOST", "").encode("latin-1")
    proto = environ.get(proxy[0], "").encode("latin-1") if proxy else b""
    refusal_headers_note(write_key_hash(raw_key), request_context(host, proto), headers)


def _with_refusal_capture(app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]) -> Any:
    def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status.startswith("429 ") and environ.get("REQUEST_METHOD") == "POST":
                _refusal_headers_capture(environ, headers)
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return application


application = _with_refusal_capture(get_wsgi_application())
