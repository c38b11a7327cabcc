"""Strict reading of the environment: a value that does not parse stops start-up naming its variable.

django-environ's own casts raise a bare `ValueError` ("invalid literal for int()") that does not say
which variable, and read any word that is not a "true" word, `SECURE_SSL_REDIRECT=ture` included, as
false: for a security switch that is the wrong way to fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured


class StrictEnv(environ.Env):
    BOOLEAN_FALSE_STRINGS = ("false", "off", "no", "n", "0", "")

    def get_value(
        self, var: str, cast: Any = None, default: Any = environ.Env.NOTSET, parse_default: bool = False
    ) -> Any:
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{var} does not parse: {exc}.") from exc

    @classmethod
    def parse_value(cls, value: Any, cast: Any) -> Any:
        if cast is bool and isinstance(value, str):
            word = value.strip().lower()
            if word not in cls.BOOLEAN_TRUE_STRINGS and word not in cls.BOOLEAN_FALSE_STRINGS:
                raise ValueError(f"{value!r} is neither true nor false")
        return super().parse_value(value, cast)


def proxy_ssl_header(value: str) -> tuple[str, str] | None:
    """`HTTP_X_FORWARDED_PROTO,https` → Django's (header, value) pair; empty → None (no proxy)."""
    if not value:
        return None
    header, _, secure_value = (part.strip() for part in value.partition(","))
    if not header.startswith("HTTP_") or not secure_value or "," in secure_value:
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER must be 'HTTP_<HEADER>,<value>' such as 'HTTP_X_FORWARDED_PROTO,https', "
            f"not {value!r}."
        )
    return header, secure_value


SAMESITE = ("Lax", "Strict", "None")


def one_of(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value!r}.")
    return value


def positive(name: str, value: float, *, or_zero: bool = False) -> None:
    if not (value > 0 or (or_zero and value == 0)):
        raise ImproperlyConfigured(f"{name} must be a positive number{' or 0' if or_zero else ''}, not {value!r}.")


def origin(url: str) -> list[str]:
    """The scheme and host of an absolute URL, as a CSP source ([] for an empty URL)."""
    if not url:
        return []
    parts = urlsplit(url)
    return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []
