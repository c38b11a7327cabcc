"""TriggerMail settings.

Every setting that differs between machines is read from the environment (or a `.env` file
beside manage.py) with django-environ. A variable that does not parse stops start-up with a
message naming it; configurations that would undermine "never twice" are reported by the
system checks in `triggermail/checks.py`.
"""

from __future__ import annotations

import os
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import environ
from anymail.exceptions import AnymailNotSupportedWarning
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from triggermail.environment import SAMESITE, StrictEnv, one_of, origin, positive, proxy_ssl_header

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = StrictEnv()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY is not set. Set it in the environment or in .env (`make run` writes one).")
# Earlier secrets while one is rotated out: unsubscribe links (and Django's sessions) made under them
# still verify (campaigns/consent/tokens.py).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Listed before django_q so that its `qcluster` command (which adds the due-send
    # dispatcher to the cluster) takes precedence over django_q's own.
    "campaigns",
    "events",
    # Django's admin with TriggerMail's site, which mounts the Dashboard, preview and simulator.
    "campaigns.apps.TriggerMailAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "anymail",
    # Admin login throttling: failed logins per username and address (README, Security).
    "axes",
]

# triggermail.middleware's classes are the libraries' own (django-csp, WhiteNoise, sessions, auth,
# messages), skipped for the ingest API's POSTs, which use none of them (see that module).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every HTML answer (policy below; README, Security).
    "triggermail.middleware.CSPMiddleware",
    "triggermail.middleware.WhiteNoiseMiddleware",
    "triggermail.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "triggermail.middleware.AuthenticationMiddleware",
    "triggermail.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a login refused for a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "triggermail.urls"
WSGI_APPLICATION = "triggermail.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "triggermail" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Each silenced check says why where it is added.
SILENCED_SYSTEM_CHECKS: list[str] = []

# --- Database -------------------------------------------------------------------------------
# The embedded default is SQLite in var/; production is PostgreSQL (DATABASE_URL=postgres://...).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Django's health check costs a `SELECT 1` round trip before the first query of every request on a
# reused connection. The ingest API skips it unless this is true (issue #15): a connection that
# died meanwhile (a database restart) then fails that request's first query, which answers 503
# with Retry-After (the SDKs retry) and is closed; the next request connects anew. Admin, pages and
# the worker keep the check.
INGEST_DATABASE_HEALTH_CHECKS = env.bool("INGEST_DATABASE_HEALTH_CHECKS", default=False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    # IMMEDIATE transactions take the write lock up front, so two processes never both read
    # a row as "scheduled" and then fail to upgrade their lock: the state change is the claim.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests start real gunicorn and qcluster processes, which cannot see an in-memory database.
    DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default=str(VAR_DIR / "test.sqlite3"))}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # SQLite has no covering indexes: it builds send_dashboard_period (campaigns.Send) without its
    # INCLUDE columns, a partial index on sent_at that still serves the Dashboard's period filter,
    # while PostgreSQL gets the covering index. models.W040 says only that, and on the first
    # `make run` it reads like a failure.
    SILENCED_SYSTEM_CHECKS.append("models.W040")
elif env.str("TEST_DATABASE_NAME", default=""):
    DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME")}

# An optional streaming replica of the PostgreSQL primary (README, Read replica). Only the pages
# that show figures read from it, inside triggermail.db_router's scope; nothing that decides a send
# ever does, and nothing writes to it. Tests mirror it to "default" so that no second test database
# is made; the real replica is tested with a standby of its own (tests/test_read_replica.py).
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    if "postgresql" not in DATABASES["replica"]["ENGINE"] or "postgresql" not in DATABASES["default"]["ENGINE"]:
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URL must be a postgres:// URL, and DATABASE_URL too: a replica is a PostgreSQL standby."
        )
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    # A replica that does not answer costs a page this long before it reads from the primary instead.
    DATABASES["replica"]["OPTIONS"] = {
        "connect_timeout": env.int("DATABASE_REPLICA_CONNECT_TIMEOUT", default=2),
        **DATABASES["replica"].get("OPTIONS", {}),
    }
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["triggermail.db_router.ReplicaRouter"]
# PgBouncer (README, PgBouncer): DATABASE_POOLING=transaction says that DATABASE_URL reaches
# PostgreSQL through a pooler in transaction mode, where a server session is ours only for one
# transaction. Django then must not use WITH HOLD server-side cursors (QuerySet.iterator() outside a
# transaction); Django's psycopg 3 binding is client-side and prepares nothing, so statements are
# safe. What needs a session of its own (the event wake-up's LISTEN, triggermail.wakeup) uses the
# `direct` connection, DATABASE_DIRECT_URL, or without one waits DISPATCH_INTERVAL between looks;
# triggermail.checks says which (triggermail.I014 / W014).
DATABASE_POOLINGS = ("none", "transaction")
DATABASE_POOLING = one_of("DATABASE_POOLING", env.str("DATABASE_POOLING", default="none"), DATABASE_POOLINGS)
if DATABASE_POOLING == "transaction":
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            "DATABASE_POOLING=transaction is for PostgreSQL behind PgBouncer, not this DATABASE_URL."
        )
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
if env.str("DATABASE_DIRECT_URL", default=""):
    # The same database as `default`, reached without the pooler; only its parameters are used (it
    # is never queried through Django). As a test mirror it follows `default` to the test database.
    DATABASES["direct"] = {**env.db("DATABASE_DIRECT_URL"), "TEST": {"MIRROR": "default"}}
    if DATABASES["direct"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_DIRECT_URL must be a postgres:// URL (the database, without PgBouncer).")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The lockout check comes first and refuses a locked-out username and address before any password
# is checked; the model backend then logs people in (see triggermail/login_throttle.py).
AUTHENTICATION_BACKENDS = [
    "triggermail.login_throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# One way to write a time across Admin: "2026-12-01 23:35:07 UTC" (see triggermail/times.py).
FORMAT_MODULE_PATH = ["triggermail.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve admin assets from the app directories without a collectstatic step in development.
WHITENOISE_USE_FINDERS = True

# --- Email delivery -------------------------------------------------------------------------
SENDGRID_API_KEY = env.str("SENDGRID_API_KEY", default="")
SENDGRID_API_URL = env.str("SENDGRID_API_URL", default="https://api.sendgrid.com/v3/")
# Seconds one provider call may take before it is treated as ambiguous (see Guarantees).
PROVIDER_TIMEOUT = env.float("PROVIDER_TIMEOUT", default=10.0)
# Provider calls a worker process makes at once for one batch of sends: each mostly waits for the
# provider's answer, so a few threads keep a worker busy without more processes. It is also the most
# sends one claim takes: a whole delivery task (DELIVERY_CHUNK, 50) in one claim and one record
# halved the worker's CPU for claiming and PostgreSQL's per email against 16 (python -m bench.worker_cpu).
DELIVERY_CONCURRENCY = env.int("DELIVERY_CONCURRENCY", default=50)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="TriggerMail <hello@example.com>")
MAIL_CAPTURE_DIR = Path(env.str("MAIL_CAPTURE_DIR", default=str(VAR_DIR / "mail")))

# SendGrid's Signed Event Webhook public key (base64 DER, as SendGrid shows it). When set, every
# webhook request must carry a valid ECDSA signature; the system checks require it in production.
SENDGRID_WEBHOOK_VERIFICATION_KEY = env.str("SENDGRID_WEBHOOK_VERIFICATION_KEY", default="")
ANYMAIL: dict[str, Any] = {
    "SENDGRID_API_KEY": SENDGRID_API_KEY,
    "SENDGRID_API_URL": SENDGRID_API_URL,
    "REQUESTS_TIMEOUT": PROVIDER_TIMEOUT,
}
if SENDGRID_WEBHOOK_VERIFICATION_KEY:
    ANYMAIL["SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY"] = SENDGRID_WEBHOOK_VERIFICATION_KEY
# Optional HTTP Basic auth on the webhook ("user:password", put into the URL given to SendGrid:
# https://user:password@host/anymail/sendgrid/tracking/). With a verification key it is a second
# lock; without one it is the only thing between the internet and "this send was delivered".
ANYMAIL_WEBHOOK_SECRET = env.str("ANYMAIL_WEBHOOK_SECRET", default="")
if ANYMAIL_WEBHOOK_SECRET:
    if ":" not in ANYMAIL_WEBHOOK_SECRET:
        raise ImproperlyConfigured("ANYMAIL_WEBHOOK_SECRET must be 'user:password'.")
    ANYMAIL["WEBHOOK_SECRET"] = ANYMAIL_WEBHOOK_SECRET
# Anymail stopped official support for SendGrid in 2025 but the backend and the webhook work and
# are exercised by our tests against a SendGrid-compatible server; the warning (given on every
# webhook request too, which is mounted whatever the backend) adds nothing.
warnings.filterwarnings("ignore", category=AnymailNotSupportedWarning)
if SENDGRID_API_KEY:
    EMAIL_BACKEND = "campaigns.sending.sendgrid_backend.EmailBackend"
    SILENCED_SYSTEM_CHECKS.append("anymail.W003")
else:
    # No provider key: every email is written to a file a person can open (make run says where).
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(MAIL_CAPTURE_DIR)

# --- Sending policy -------------------------------------------------------------------------
# How often a send that was not sent (connection refused, 429) is tried before it fails.
SEND_MAX_ATTEMPTS = env.int("SEND_MAX_ATTEMPTS", default=8)
# A `sending` row older than this (worker died mid-call) becomes `unknown`, never `scheduled`.
SENDING_STALE_AFTER = env.float("SENDING_STALE_AFTER", default=PROVIDER_TIMEOUT + 60.0)
# An `unknown` send with no webhook evidence after this long becomes `abandoned`, for a person.
UNKNOWN_GRACE_SECONDS = env.float("UNKNOWN_GRACE_SECONDS", default=2 * 3600.0)
# What happens to an `unknown` send with no evidence of its own while the Event Webhook is posting
# events for sends made after it (campaigns.sending.ambiguous): `resend_when_webhook_live` judges it not
# accepted and resends it once, `ask_a_person` leaves it to become `abandoned` for a person.
AMBIGUOUS_SEND_POLICIES = ("resend_when_webhook_live", "ask_a_person")
AMBIGUOUS_SEND_POLICY = env.str("AMBIGUOUS_SEND_POLICY", default="resend_when_webhook_live")
if AMBIGUOUS_SEND_POLICY not in AMBIGUOUS_SEND_POLICIES:
    raise ImproperlyConfigured(
        f"AMBIGUOUS_SEND_POLICY must be one of {', '.join(AMBIGUOUS_SEND_POLICIES)}, not {AMBIGUOUS_SEND_POLICY!r}."
    )
# How long after its attempt an ambiguous send may be judged not accepted. SendGrid posts
# "processed" within seconds as a rule but its webhook can lag by minutes; 15 minutes covers those
# lags while a cart recovery or a receipt is still worth sending.
AMBIGUOUS_RESEND_AFTER = env.float("AMBIGUOUS_RESEND_AFTER", default=15 * 60.0)
# Processed events and provider (webhook) events older than this are pruned (their sends keep
# everything a person needs); `manage.py prune`, and every dispatcher once an hour.
EVENT_RETENTION_DAYS = env.int("EVENT_RETENTION_DAYS", default=90)
# PostgreSQL keeps events, decisions and provider events in daily partitions (triggermail.partitions);
# the worker and `migrate` create this many days ahead, so a day's partition exists before it starts.
PARTITION_AHEAD_DAYS = env.int("PARTITION_AHEAD_DAYS", default=7)
# How long a (source, messageId) and a provider event id are remembered as seen, so that a resent
# message or a redelivered webhook event is stored once. Segment's own window is about 24 hours;
# the default keeps the behaviour of the unique index it replaced on PostgreSQL (as long as events).
MESSAGE_DEDUPE_DAYS = env.int("MESSAGE_DEDUPE_DAYS", default=EVENT_RETENTION_DAYS)
# How often the dispatcher inside every qcluster looks for due sends and unprocessed events.
DISPATCH_INTERVAL = env.float("DISPATCH_INTERVAL", default=0.2)
# The longest the dispatcher waits after a wake-up for more events to join a batch; it waits less
# when the stream is light (campaigns.sending.dispatcher.gather_seconds). README, Speed.
DISPATCH_GATHER_MAX = env.float("DISPATCH_GATHER_MAX", default=0.05)
# Every qcluster writes a heartbeat row this often; one older than HEARTBEAT_STALE_AFTER is a host
# that stopped: /readyz says so and the other hosts re-queue the sends it had queued.
HEARTBEAT_INTERVAL = env.float("HEARTBEAT_INTERVAL", default=1.0)
HEARTBEAT_STALE_AFTER = env.float("HEARTBEAT_STALE_AFTER", default=5.0)
# Every loop of a qcluster (dispatcher, sweeps) restarts after an unexpected error, waiting 0.5 s,
# then twice as long each time up to LOOP_BACKOFF_MAX. After LOOP_MAX_FAILURES failures in a row the
# process exits non-zero so that its process manager starts a fresh one. A database error is given
# LOOP_DATABASE_PATIENCE seconds instead: databases restart, and a new process would not help.
LOOP_MAX_FAILURES = env.int("LOOP_MAX_FAILURES", default=5)
LOOP_BACKOFF_MAX = env.float("LOOP_BACKOFF_MAX", default=5.0)
LOOP_DATABASE_PATIENCE = env.float("LOOP_DATABASE_PATIENCE", default=300.0)

# --- Health and metrics --------------------------------------------------------------------
# /readyz answers 503 when the oldest unprocessed event has waited longer than this (seconds), or
# the oldest due send is this late, or (unless READY_REQUIRE_DISPATCHER is false) no qcluster's
# dispatcher has completed a pass within HEARTBEAT_STALE_AFTER. The Admin index shows the same.
READY_MAX_EVENT_LAG = env.float("READY_MAX_EVENT_LAG", default=60.0)
READY_MAX_SEND_LATENESS = env.float("READY_MAX_SEND_LATENESS", default=60.0)
READY_REQUIRE_DISPATCHER = env.bool("READY_REQUIRE_DISPATCHER", default=True)
for _name in ("READY_MAX_EVENT_LAG", "READY_MAX_SEND_LATENESS", "HEARTBEAT_INTERVAL", "HEARTBEAT_STALE_AFTER"):
    if not globals()[_name] > 0:
        raise ImproperlyConfigured(f"{_name} must be a positive number of seconds, not {globals()[_name]!r}.")
# /metrics answers 404 unless this is set; with it, only `Authorization: Bearer <token>`.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# prometheus-client's multiprocess mode: every process of a host (gunicorn's workers, qcluster's
# workers) writes its counters to files here, and /metrics adds them up. The library reads the
# variable when it is imported, so it is set here, before any app module imports it.
PROMETHEUS_MULTIPROC_DIR = Path(env.str("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "prometheus")))
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)
# A qcluster on a host without a web process serves its own process metrics on this port (unset:
# no server), bound to WORKER_METRICS_ADDR: a private interface, since it has no token.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=None)
WORKER_METRICS_ADDR = env.str("WORKER_METRICS_ADDR", default="127.0.0.1")

# --- Task queue (django-q2) -----------------------------------------------------------------
# Rows are the source of truth: a task only says "look at these rows". Failed tasks are not
# retried by the queue (max_attempts=1, ack_failures) because the dispatcher re-finds work.
Q_BROKER = env.str("Q_BROKER", default="orm")
if Q_BROKER not in ("orm", "redis"):
    raise ImproperlyConfigured(f"Q_BROKER must be 'orm' or 'redis', not {Q_BROKER!r}.")
Q_CLUSTER: dict[str, Any] = {
    "name": env.str("Q_CLUSTER_NAME", default="triggermail"),
    "workers": env.int("Q_WORKERS", default=4),
    "timeout": env.int("Q_TIMEOUT", default=60),
    "retry": env.int("Q_RETRY", default=120),
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": -1,
    "catch_up": False,
    "poll": env.float("Q_POLL", default=0.05),
    "bulk": 10,
}
# A cluster whose workers took no task while tasks waited in the broker this long is stalled, and is
# restarted (campaigns.operations.cluster_watch). Above Q_TIMEOUT, the longest a task may run.
CLUSTER_STALL_AFTER = env.float("CLUSTER_STALL_AFTER", default=Q_CLUSTER["timeout"] + 30.0)
# When set (or with the Redis broker), the ingest's rate limits are counted in Redis too.
REDIS_URL = env.str("REDIS_URL", default="")
if Q_BROKER == "orm":
    Q_CLUSTER["orm"] = "default"
    # The ORM broker, woken on PostgreSQL by a queued task's commit (NOTIFY) instead of sleeping
    # Q_POLL between looks; on SQLite it sleeps Q_POLL as django-q2's own (triggermail/broker.py).
    Q_CLUSTER["broker_class"] = "triggermail.broker.NotifiedORM"
else:
    Q_CLUSTER["redis"] = REDIS_URL or "redis://127.0.0.1:6379/0"
    # django-q2's own, noting when tasks are taken (triggermail/broker.py).
    Q_CLUSTER["broker_class"] = "triggermail.broker.StampedRedis"

# --- Ingest rate limits (events/ratelimit.py; README, Security) -----------------------------
# Requests per second per write key on average, and at once (a key's own values in Admin win);
# past that 429 with Retry-After, which the SDKs honour. SDKs send batches of up to 100 messages
# from one upload thread, so 50/s is thousands of events; 100 at once absorbs backlog flushes.
# Seconds a web process keeps a write key's row after reading it (events/auth.py): the bound within
# which a key revoked (or re-limited) in Admin stops working. 0 reads it on every ingest request.
WRITE_KEY_CACHE_SECONDS = env.float("WRITE_KEY_CACHE_SECONDS", default=5.0)
if not 0 <= WRITE_KEY_CACHE_SECONDS <= 3600:
    raise ImproperlyConfigured(
        f"WRITE_KEY_CACHE_SECONDS must be a number of seconds from 0 to 3600, not {WRITE_KEY_CACHE_SECONDS!r}."
    )
INGEST_RATE_LIMIT_ENABLED = env.bool("INGEST_RATE_LIMIT_ENABLED", default=True)
INGEST_RATE_LIMIT = env.float("INGEST_RATE_LIMIT", default=50.0)
INGEST_RATE_BURST = env.int("INGEST_RATE_BURST", default=100)
if not INGEST_RATE_LIMIT > 0 or INGEST_RATE_BURST < 1:
    raise ImproperlyConfigured(
        "INGEST_RATE_LIMIT must be a positive number of requests per second and INGEST_RATE_BURST at least 1 "
        f"(not {INGEST_RATE_LIMIT!r} and {INGEST_RATE_BURST!r}); INGEST_RATE_LIMIT_ENABLED=false turns limits off."
    )
# Where every web host's counts meet. Deployments sharing a Redis keep apart by cluster name.
INGEST_RATE_LIMIT_STORE = env.str(
    "INGEST_RATE_LIMIT_STORE", default="redis" if Q_CLUSTER.get("redis") or REDIS_URL else "database"
)
if INGEST_RATE_LIMIT_STORE not in ("redis", "database"):
    raise ImproperlyConfigured(f"INGEST_RATE_LIMIT_STORE must be redis or database, not {INGEST_RATE_LIMIT_STORE!r}.")
# A web process takes a busy key's places from the shared bucket ahead, as many as the key made
# requests here in this many seconds (events/ratelimit.py); unused ones lapse after it. 0: every
# request is one take from the store.
INGEST_RATE_LEASE_SECONDS = env.float("INGEST_RATE_LEASE_SECONDS", default=0.1)
if not 0 <= INGEST_RATE_LEASE_SECONDS <= 10:
    raise ImproperlyConfigured(
        f"INGEST_RATE_LEASE_SECONDS must be a number of seconds from 0 to 10, not {INGEST_RATE_LEASE_SECONDS!r}."
    )
INGEST_RATE_LIMIT_REDIS_URL = REDIS_URL or "redis://127.0.0.1:6379/0"
INGEST_RATE_LIMIT_REDIS_PREFIX = f"{Q_CLUSTER['name']}:ratelimit:"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django-q": {"level": env.str("Q_LOG_LEVEL", default="WARNING")},
        # django-axes announces its version at INFO in every process that starts; its lockouts are
        # warnings (axes.handlers) and stay.
        "axes.apps": {"level": "WARNING"},
    },
}

# Idempotency keys of "per event" and "per user per day" rules are kept this long after the send
# (at least the longest such dedupe window); "once per user" and per-property keys are kept for good.
IDEMPOTENCY_KEY_DAYS = env.int("IDEMPOTENCY_KEY_DAYS", default=30)

# --- Consent and branding -------------------------------------------------------------------
# The public base URL of this deployment: unsubscribe and preference links in emails point here.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Optional mailto address for List-Unsubscribe (RFC 2369), beside the one-click HTTPS link.
UNSUBSCRIBE_MAILTO = env.str("UNSUBSCRIBE_MAILTO", default="")
# How the preference page presents the sender.
BRAND_NAME = env.str("BRAND_NAME", default="TriggerMail")
BRAND_COLOR = env.str("BRAND_COLOR", default="#2b59c3")
BRAND_LOGO_URL = env.str("BRAND_LOGO_URL", default="")

# --- Security: links and unsubscribe tokens (README, Security) -----------------------------------
# The only URL schemes a link or image in a rendered email may have; others are removed.
SAFE_LINK_SCHEMES = [
    s.lower() for s in env.list("SAFE_LINK_SCHEMES", default=["http", "https", "mailto", "tel", "cid"])
]
# How long an unsubscribe link works after its email was built (mailbox providers keep one-click
# POSTs working for weeks after delivery).
UNSUBSCRIBE_TOKEN_DAYS = env.int("UNSUBSCRIBE_TOKEN_DAYS", default=90)
# Links of the old, readable format (sent before this release) work until this day (UTC), then 410.
_legacy_until = env.str("UNSUBSCRIBE_LEGACY_TOKENS_UNTIL", default="2027-03-02")
try:
    UNSUBSCRIBE_LEGACY_TOKENS_UNTIL = date.fromisoformat(_legacy_until) if _legacy_until else None
except ValueError:
    raise ImproperlyConfigured("UNSUBSCRIBE_LEGACY_TOKENS_UNTIL must be a date, YYYY-MM-DD, or empty.") from None

# --- Deploy: HTTPS, cookies, proxy, login throttling, Content-Security-Policy ----------------
# One switch decides the secure defaults: production (DEBUG off) at an https SITE_URL. `make run`
# writes DEBUG=false too and must keep working on http://127.0.0.1, so an http SITE_URL leaves the
# redirect, HSTS and Secure cookies off unless set explicitly.
SERVES_HTTPS = not DEBUG and SITE_URL.startswith("https://")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=SERVES_HTTPS)
# Paths (regular expressions, no leading slash) still answered over HTTP, e.g. ^healthz$ for a probe.
SECURE_REDIRECT_EXEMPT = env.list("SECURE_REDIRECT_EXEMPT", default=[])
# Browsers remember HSTS: a deployment that may go back to HTTP starts with SECURE_HSTS_SECONDS=300.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if SERVES_HTTPS else 0)
# These two bind every subdomain (and the browsers' built-in preload list) to HTTPS for good, which
# only the domain's owner can decide: off unless set (check --deploy warns W005 and W021 until then).
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=SERVES_HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=SERVES_HTTPS)
SESSION_COOKIE_HTTPONLY = env.bool("SESSION_COOKIE_HTTPONLY", default=True)
SESSION_COOKIE_SAMESITE = one_of("SESSION_COOKIE_SAMESITE", env.str("SESSION_COOKIE_SAMESITE", default="Lax"), SAMESITE)
CSRF_COOKIE_SAMESITE = one_of("CSRF_COOKIE_SAMESITE", env.str("CSRF_COOKIE_SAMESITE", default="Lax"), SAMESITE)
# Only behind a proxy that sets this header on every request (dropping a client's own): Django then
# believes it about HTTPS, and login throttling believes the proxies' X-Forwarded-For entries.
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(env.str("SECURE_PROXY_SSL_HEADER", default=""))
# Proxies of yours that append to X-Forwarded-For; 0: the connection's address is the client's.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1 if SECURE_PROXY_SSL_HEADER else 0)
positive("TRUSTED_PROXY_COUNT", TRUSTED_PROXY_COUNT, or_zero=True)

# django-axes (triggermail/login_throttle.py): a username is locked out from one address after
# AXES_FAILURE_LIMIT failed logins there, for AXES_COOLOFF_MINUTES, restarted by each try meanwhile.
# Locking the pair, not the username, means a stranger cannot lock a marketer out of their own desk.
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_MINUTES = env.float("AXES_COOLOFF_MINUTES", default=15.0)
positive("AXES_FAILURE_LIMIT", AXES_FAILURE_LIMIT)
positive("AXES_COOLOFF_MINUTES", AXES_COOLOFF_MINUTES)
AXES_COOLOFF_TIME = timedelta(minutes=AXES_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "triggermail.login_throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "campaigns.admin.lockout.lockout_response"

# django-csp: scripts and styles only from this site's static files (no inline script anywhere; a
# page's own <style> carries the request's nonce), no plugins, no <base>, forms post only here,
# frames only this site's email preview, and no one frames us. The email preview frame answers with
# a policy of its own (campaigns/admin/preview_frame.py): email HTML is mail, not this site.
CONTENT_SECURITY_POLICY: dict[str, Any] = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, *origin(BRAND_LOGO_URL)],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-src": [SELF],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
        "frame-ancestors": [NONE],
    },
}
