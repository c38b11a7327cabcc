"""The peer of `make bench` (bench/peer.py): django-post_office sending through Anymail's SendGrid backend.

A minimal project, run only by var/bench-peer-venv (bench/peer-requirements.txt), never by
TriggerMail's own virtualenv. post_office is tuned with the knobs its documentation offers, to the
values of issue #15's earlier measurement: 2 processes (the `send_queued_mail --processes 2`
command line) of 50 threads each, taking 1,000 emails per batch; everything else keeps
post_office's defaults (one Log row per email). The provider settings mirror TriggerMail's: the
same Anymail backend, key, URL and timeout.
"""

from __future__ import annotations

import os
import warnings
from urllib.parse import unquote, urlsplit

from anymail.exceptions import AnymailNotSupportedWarning


def _database(url: str) -> dict[str, object]:
    """Django's DATABASES entry for a postgresql://user@host:port/name URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql") or not parts.path.strip("/"):
        raise ValueError(f"DATABASE_URL must be postgresql://user@host:port/name, not {url!r}")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


SECRET_KEY = os.environ["SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS: list[str] = []
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["post_office", "bench.peer_project"]
DATABASES = {"default": _database(os.environ["DATABASE_URL"])}
# post_office passes subjects and bodies through Django's template engine when it queues them.
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]

EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
DEFAULT_FROM_EMAIL = "TriggerMail <hello@example.com>"
ANYMAIL = {
    "SENDGRID_API_KEY": os.environ["SENDGRID_API_KEY"],
    "SENDGRID_API_URL": os.environ["SENDGRID_API_URL"],
    # TriggerMail's PROVIDER_TIMEOUT default.
    "REQUESTS_TIMEOUT": 10.0,
}
# As in triggermail/settings.py: Anymail's note that SendGrid is no longer officially supported.
warnings.filterwarnings("ignore", category=AnymailNotSupportedWarning)

POST_OFFICE = {
    "BACKENDS": {"default": EMAIL_BACKEND},
    "THREADS_PER_PROCESS": 50,
    "BATCH_SIZE": 1000,
}
