"""`python -m chaos.run`: the real deployment under faults, and proof that nobody got an email twice.

Two gunicorn processes and two independent `qcluster` hosts on one PostgreSQL database with the
Redis broker (the multi-host configuration), a SendGrid-compatible server that fails at random
and posts signed webhook callbacks, and a workload of Segment batches posted with SDK-style retries
and duplicates, with a few percent of poison messages (chaos.poison) mixed in. While it runs,
hosts are killed with SIGKILL and restarted, and every session on the database is terminated.
Then the injection stops, the system settles, and `chaos.report` judges.
"""

from __future__ import annotations

import os
import random
import secrets
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

from chaos.config import Config, config_parse
from chaos.faults import Host, ProcessChaos, pg_connections_drop
from chaos.ingest import Poster
from chaos.poison import poison_add, poison_expectations, poison_rule_break, poison_rules_add
from chaos.settle import CLUSTER_STALL_AFTER, Deployment, settle
from chaos.workload import (
    Clock,
    User,
    batches_make,
    duplicates_add,
    expectations,
    rules_document,
    users_make,
)
from harness.processes import BASE_DIR, gunicorn_start, process_env, qcluster_ready
from harness.sendgrid_server import API_KEY, Accepted, FaultRates, SendGridServer
from harness.sendgrid_webhook import webhook_keypair

# The short knobs of a run: everything that normally takes minutes happens within seconds. They keep
# the system checks' order: PROVIDER_TIMEOUT < SENDING_STALE_AFTER, PROVIDER_TIMEOUT < Q_TIMEOUT < Q_RETRY,
# Q_TIMEOUT < CLUSTER_STALL_AFTER.
PROVIDER_TIMEOUT = 2.0
KNOBS = {
    "PROVIDER_TIMEOUT": str(PROVIDER_TIMEOUT),
    "SENDING_STALE_AFTER": "6",
    "Q_TIMEOUT": "30",
    "Q_RETRY": "35",
    "CLUSTER_STALL_AFTER": str(CLUSTER_STALL_AFTER),
    "Q_WORKERS": "3",
    "Q_BROKER": "redis",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}
# The share of users given one poison message (chaos.poison): with about 3.5 messages a user, some
# 3 % of the messages.
POISON_RATE = 0.1
PROVIDER_FAULTS = FaultRates(
    slow=0.05, timeout=0.02, drop=0.02, rate_limited=0.04, server_error=0.02, client_timeout=PROVIDER_TIMEOUT
)


def database_url(config: Config, name: str) -> str:
    return config.admin_url.rsplit("/", 1)[0] + "/" + name


def processes_database(config: Config) -> dict[str, str]:
    """How the web and worker processes reach the run's database: directly, or through PgBouncer in
    transaction mode with the direct URL for the dispatchers' LISTEN (README, PgBouncer)."""
    direct = database_url(config, config.database)
    if not config.pooler_url:
        return {"DATABASE_URL": direct}
    return {
        "DATABASE_URL": config.pooler_url.rsplit("/", 1)[0] + "/" + config.database,
        "DATABASE_POOLING": "transaction",
        "DATABASE_DIRECT_URL": direct,
    }


def database_create(config: Config) -> None:
    with psycopg.connect(config.admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{config.database}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{config.database}"')


def database_drop(config: Config) -> None:
    with psycopg.connect(config.admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{config.database}" WITH (FORCE)')


def django_setup(config: Config, secret_key: str) -> str:
    """Point this process's Django at the run's database, migrate it, import the rules; a write key."""
    os.environ.update(DATABASE_URL=database_url(config, config.database), SECRET_KEY=secret_key)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggermail.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from campaigns.authoring.transfer import rules_import
    from events.models import WriteKey

    call_command("migrate", verbosity=0)
    document = rules_document(cart_delay_seconds=config.cart_delay)
    poison_rules_add(document)
    rules_import(document)
    poison_rule_break()
    return WriteKey.issue(name="chaos")[1]


def pg_drops_at(config: Config) -> list[float]:
    """Seconds into the posting window at which every database session is terminated."""
    return [config.duration * (i + 1) / (config.pg_drops + 1) for i in range(config.pg_drops)]


def main(argv: list[str]) -> int:
    config = config_parse(argv)
    started = time.monotonic()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    log_dir = BASE_DIR / "var" / f"chaos-{stamp}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    through = f" through PgBouncer at {config.pooler_url.rsplit('/', 1)[0]}" if config.pooler_url else ""
    run = f"{config.events} events over {config.duration:.0f}s, seed {config.seed}, db {config.database}"
    print(f"chaos: {run}{through}")
    database_create(config)
    try:
        return _run(config, log_dir=log_dir, stamp=stamp, started=started)
    finally:
        if config.keep_db:
            print(f"chaos: kept database {config.database}")
        else:
            database_drop(config)


def _run(config: Config, *, log_dir: Path, stamp: str, started: float) -> int:
    secret_key = secrets.token_urlsafe(32)
    write_key = django_setup(config, secret_key)
    rng = random.Random(config.seed)
    server = SendGridServer().start()
    keypair = webhook_keypair()
    env = process_env(
        database_url=database_url(config, config.database),
        secret_key=secret_key,
        sendgrid_url=server.url,
        api_key=API_KEY,
    )
    env.update(KNOBS, UNKNOWN_GRACE_SECONDS=str(config.grace), SENDGRID_WEBHOOK_VERIFICATION_KEY=keypair.public_key)
    env.pop("DATABASE_POOLING", None)
    env.pop("DATABASE_DIRECT_URL", None)
    env.update(processes_database(config))
    # Seconds instead of minutes, like the other knobs: callbacks come 0.3-3 s after acceptance here.
    env.update(AMBIGUOUS_RESEND_AFTER=str(config.resend_after), AMBIGUOUS_SEND_POLICY=config.policy)
    # A queue of its own, so that no other run (or test) shares the Redis list.
    env["Q_CLUSTER_NAME"] = f"chaos-{uuid.uuid4().hex[:8]}"
    deployment = Deployment(config=config, server=server, keypair=keypair, write_key=write_key, seed=config.seed)
    try:
        for name in ("web-a", "web-b"):
            (log_dir / name).mkdir(exist_ok=True)
            process, url = gunicorn_start(env=env, log_dir=log_dir / name)
            deployment.webs.append(process)
            deployment.base_urls.append(url)
        deployment.hosts = [Host(name, env=env, log_dir=log_dir) for name in ("host-a", "host-b")]
        for host in deployment.hosts:
            qcluster_ready(host.process)
        return _inject_and_judge(config, deployment, rng=rng, stamp=stamp, started=started)
    finally:
        deployment.stop()


@dataclass
class Injected:
    users: list[User]
    poster: Poster
    chaos: ProcessChaos
    faults: Counter[str]
    dup_added: int


def _inject(config: Config, deployment: Deployment, rng: random.Random) -> Injected:
    """Post the whole workload while every kind of fault is injected; return when the last batch is in."""
    users = users_make(f"c{config.seed % 100000}", config.events, rng)
    poison_add(users, rate=POISON_RATE, rng=rng)
    batches = batches_make(users, size=25, rng=rng)
    dup_added = duplicates_add(batches, rate=0.03, rng=rng)
    poster = deployment.poster(Clock(), rng.randrange(2**31))
    webhooks = deployment.webhooks_start(rng.randrange(2**31))
    chaos = ProcessChaos(
        deployment.hosts,
        every=config.kill_every,
        seed=rng.randrange(2**31),
        mid_call_rate=config.mid_call_kills,
        held_sends=held_sends,
    ).start()

    def on_accept(accepted: Accepted) -> None:
        chaos.on_accept(accepted.client)
        webhooks.on_accept(accepted)

    deployment.server.on_accept = on_accept
    deployment.server.fail_at_rates(FaultRates(**{**PROVIDER_FAULTS.__dict__, "seed": rng.randrange(2**31)}))
    faults: Counter[str] = Counter()
    drops = deployment.pg_drop_timers(pg_drops_at(config), faults, lambda: pg_connections_drop(
        admin_url=config.admin_url, database=config.database))  # fmt: skip
    print(f"chaos: posting {sum(map(len, batches))} messages in {len(batches)} batches; injecting faults")
    poster.run(batches, duration=config.duration)
    for timer in drops:
        timer.cancel()
    chaos.stop()
    deployment.server.fail_at_rates(None)
    return Injected(users=users, poster=poster, chaos=chaos, faults=faults, dup_added=dup_added)


def held_sends() -> dict[str, int]:
    """Sends queued and not yet claimed: some may be in a killed process's memory."""
    from django.db import close_old_connections

    from campaigns.models import Send

    # Called from the kill thread and the provider's threads, whose connections a drop may have ended.
    close_old_connections()
    held = Send.objects.filter(state=Send.State.SCHEDULED, enqueued_at__isnull=False)
    return {str(pk): attempts for pk, attempts in held.values_list("pk", "attempts")}


def faults_tally(deployment: Deployment, injected: Injected) -> Counter[str]:
    faults = Counter(injected.faults)
    faults.update(injected.chaos.counts)
    faults.update({f"provider {k}": n for k, n in deployment.server.injected.items()})
    if deployment.webhooks is not None:
        faults.update(deployment.webhooks.counts)
    faults["duplicate deliveries (same messageId, later batch)"] = injected.dup_added
    faults["retried batches (client gave up first)"] = injected.poster.stats.impatient_retries
    # Not injected but met: a cluster stalled by a worker killed holding its task queue's lock, and
    # restarted by its qcluster (campaigns.operations.cluster_watch).
    host_logs = [path for host in deployment.hosts for path in host.log_dir.glob(f"{host.name}-*.log")]
    faults["stalled clusters restarted"] = sum(path.read_text().count("the cluster is stalled") for path in host_logs)
    faults["batches posted again after a 200"] = injected.poster.stats.reposts
    faults.update({f"ingest answer {k}": n for k, n in injected.poster.stats.answers.items()})
    return faults


def _inject_and_judge(config: Config, deployment: Deployment, *, rng: random.Random, stamp: str, started: float) -> int:
    injected = _inject(config, deployment, rng)
    print(f"chaos: injection stopped after {time.monotonic() - started:.0f}s; settling")
    settled = settle(deployment, injected.chaos)
    # Judged with every process stopped, so that nothing changes while the rows are read.
    deployment.stop()
    # Imported here: it reads the models, which exist only once Django is set up.
    from chaos.report import judge
    from chaos.variants import browse_rule_id

    poster = injected.poster
    verdict_text, failed = judge(
        deployment=deployment,
        users=injected.users,
        poster=poster,
        expected={
            **expectations(injected.users, poster.acks, cart_delay=config.cart_delay, browse_rule_id=browse_rule_id()),
            **poison_expectations(injected.users),
        },
        faults=faults_tally(deployment, injected),
        dup_added=injected.dup_added,
        settled=settled,
        kills_log=injected.chaos.log,
        kills=injected.chaos.kills,
        duration=time.monotonic() - started,
    )
    report_path = BASE_DIR / "var" / f"chaos-{stamp}.txt"
    report_path.write_text(verdict_text + "\n")
    print(verdict_text)
    print(f"chaos: report written to var/{report_path.name}; process logs in var/chaos-{stamp}-logs/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
