"""The production configuration, started for a benchmark phase.

"Production configuration" is taken literally: gunicorn runs the Procfile's `web:` command line
(so triggermail/gunicorn_conf.py: workers, threads, time limits, access log; only the bind address
becomes 127.0.0.1:0), the worker is `manage.py qcluster` with the settings' defaults (4 django-q2
workers, ORM broker, DISPATCH_INTERVAL 0.2 s, CONN_MAX_AGE 60 s), DEBUG off and the system checks
passing. Two
deviations, both needed to run at all: the django-q logger stays at INFO, because "Q Cluster …
running." is how a start is recognised, and SENDGRID_API_URL points at bench.sendgrid_fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.processes import (
    ManagedProcess,
    gunicorn_start,
    process_env,
    procfile_web_argv,
    qcluster_ready,
    qcluster_start,
)
from harness.sendgrid_webhook import TEST_WEBHOOK_KEYPAIR


def procfile_web_serving() -> str:
    """gunicorn's processes and threads as the bench runs them (same environment, same file)."""
    from triggermail import gunicorn_conf

    return f"{gunicorn_conf.workers} processes x {gunicorn_conf.threads} threads"


def bench_env(*, database_url: str, secret_key: str, sendgrid_url: str, api_key: str) -> dict[str, str]:
    env = process_env(database_url=database_url, secret_key=secret_key, sendgrid_url=sendgrid_url, api_key=api_key)
    # harness.processes shortens these for tests; a benchmark runs what a deployment would: the
    # operator's own values if set, else the defaults of triggermail/settings.py.
    for name in ("Q_WORKERS", "PROVIDER_TIMEOUT", "LOG_LEVEL"):
        if name in os.environ:
            env[name] = os.environ[name]
        else:
            env.pop(name, None)
    env.update(
        # The production checks demand a webhook verification key; the tests' public key will do.
        SENDGRID_WEBHOOK_VERIFICATION_KEY=TEST_WEBHOOK_KEYPAIR.public_key,
        DJANGO_SETTINGS_MODULE="triggermail.settings",
    )
    return env


def configuration() -> str:
    """The worker settings the processes run with, as this process's Django read them (same
    environment and .env, so the same values)."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    return (
        f"{settings.Q_CLUSTER['workers']} django-q2 workers, {settings.Q_BROKER} broker, DISPATCH_INTERVAL "
        f"{settings.DISPATCH_INTERVAL} s, CONN_MAX_AGE {database['CONN_MAX_AGE']} s, "
        f"PROVIDER_TIMEOUT {settings.PROVIDER_TIMEOUT} s"
    )


@dataclass
class Deployment:
    """The processes of one phase: web servers and worker hosts, any of them possibly absent."""

    env: dict[str, str]
    log_dir: Path
    webs: list[ManagedProcess] = field(default_factory=list)
    hosts: list[ManagedProcess] = field(default_factory=list)
    base_url: str = ""

    def web_start(self, *, settings_module: str | None = None, ready_path: str = "/v1/openapi.json") -> str:
        """Start one gunicorn as the Procfile does; `settings_module` swaps the app (P2's baseline)."""
        name = f"web-{len(self.webs) + 1}" + ("-baseline" if settings_module else "")
        env = dict(self.env, DJANGO_SETTINGS_MODULE=settings_module or self.env["DJANGO_SETTINGS_MODULE"])
        process, self.base_url = gunicorn_start(
            env=env, log_dir=self.log_dir, argv=procfile_web_argv(), ready_path=ready_path, name=name
        )
        self.webs.append(process)
        return self.base_url

    def hosts_start(self, count: int = 1) -> None:
        """Start `count` qcluster hosts side by side; return once all of them run."""
        started = [
            qcluster_start(env=self.env, log_dir=self.log_dir, name=f"qcluster-{len(self.hosts) + i + 1}")
            for i in range(count)
        ]
        self.hosts.extend(started)
        for host in started:
            qcluster_ready(host)

    def webs_stop(self) -> None:
        for process in self.webs:
            process.stop(timeout=5)
        self.webs.clear()

    @property
    def processes(self) -> list[ManagedProcess]:
        return self.webs + self.hosts

    def stop(self) -> None:
        # Short: a worker with a backlog would otherwise finish its chunk; the database is dropped next.
        for process in self.processes:
            process.stop(timeout=5)
        self.webs.clear()
        self.hosts.clear()
