"""Which database each part reads: only the Dashboard's figures may come from the replica.

These tests give the process a `replica` alias that cannot be reached (a closed port on PostgreSQL, a
file in a missing directory on SQLite), so a read routed there would fail, and record every routing
answer while the product ingests, matches, claims and delivers. The real streaming replica is in
tests/test_read_replica.py.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import Client

from campaigns.models import Decision, IdempotencyKey, Rule, Send
from events.models import Contact, Event
from harness.processes import BASE_DIR
from tests.conftest import Api, identify, run_worker, track
from tests.world import rule_make
from triggermail import replica
from triggermail.checks import replica_is_a_standby
from triggermail.db_router import REPLICA, ReplicaRouter, reads_alias, replica_reads

DECIDING_MODELS = [Send, IdempotencyKey, Decision, Rule, Event, Contact]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _replica_alias(**changes: Any) -> Iterator[str]:
    """A `replica` alias like the primary's, with `changes` (settings and connections share the dict).

    A mirror of "default", as settings.py makes the real one, so a transactional test case neither
    flushes it nor connects to it on its own. It exists before the test case is set up (the fixtures
    using this are class-scoped, which runs them first), so a test may list it in its databases."""
    config = dict(connections[DEFAULT_DB_ALIAS].settings_dict)
    config.update(changes, TEST={**config["TEST"], "MIRROR": DEFAULT_DB_ALIAS})
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(settings.DATABASES, REPLICA, config)
        yield REPLICA
        connections[REPLICA].close()
        del connections[REPLICA]


@pytest.fixture(scope="class")
def unreachable_replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `replica` alias whose server does not answer."""
    if connections[DEFAULT_DB_ALIAS].vendor == "sqlite":
        yield from _replica_alias(NAME=str(tmp_path_factory.mktemp("replica") / "missing" / "replica.sqlite3"))
    else:
        yield from _replica_alias(HOST="127.0.0.1", PORT=str(_closed_port()), OPTIONS={"connect_timeout": 2})


@pytest.fixture(autouse=True)
def replica_failures_forgotten() -> Iterator[None]:
    replica.replica_retry_now()
    yield
    replica.replica_retry_now()


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every (model, alias) the router sends a read to, from now on."""
    answers: list[tuple[str, str]] = []
    original = ReplicaRouter.db_for_read

    def recording(self: ReplicaRouter, model: type[Any], **hints: Any) -> str:
        alias = original(self, model, **hints)
        answers.append((model.__name__, alias))
        return alias

    monkeypatch.setattr(ReplicaRouter, "db_for_read", recording)
    return answers


def settings_start(tmp_path: Any, **environment: str) -> subprocess.CompletedProcess[str]:
    """`manage.py shell` printing DATABASES["replica"], in a process with only these variables."""
    env = {
        "PATH": os.environ["PATH"],
        "SECRET_KEY": "replica-settings",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        **environment,
    }
    show = "import json; from django.conf import settings; print(json.dumps(settings.DATABASES.get('replica')))"
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", show],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_replica_setting_makes_an_alias_that_tests_mirror_and_that_gives_up_quickly(tmp_path):
    process = settings_start(
        tmp_path,
        DATABASE_URL="postgres://root@127.0.0.1:5432/app",
        DATABASE_REPLICA_URL="postgres://reader@10.0.0.2:5433/app",
    )

    assert process.returncode == 0, process.stderr
    alias = json.loads(process.stdout.strip().splitlines()[-1])
    assert (alias["HOST"], alias["PORT"], alias["USER"], alias["NAME"]) == ("10.0.0.2", 5433, "reader", "app")
    assert alias["OPTIONS"]["connect_timeout"] == 2
    assert alias["TEST"]["MIRROR"] == "default"


def test_a_replica_of_sqlite_stops_start_up_naming_the_setting(tmp_path):
    process = settings_start(
        tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", DATABASE_REPLICA_URL="postgres://h/app"
    )

    assert process.returncode != 0
    assert "DATABASE_REPLICA_URL must be a postgres:// URL" in process.stderr


def test_the_scope_is_the_primary_when_no_replica_is_configured():
    with replica_reads():
        assert reads_alias() == DEFAULT_DB_ALIAS


def test_nothing_is_migrated_on_the_replica():
    assert ReplicaRouter().allow_migrate(REPLICA, "campaigns") is False
    assert ReplicaRouter().allow_migrate(DEFAULT_DB_ALIAS, "campaigns") is True


def test_the_dashboard_does_not_mention_a_replica_when_there_is_none(admin_client: Client):
    page = admin_client.get("/admin/campaigns/performance/")

    assert page.status_code == 200
    assert "dashboard-source" not in page.content.decode()


@pytest.mark.usefixtures("unreachable_replica")
@pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])
class TestWithAReplicaThatDoesNotAnswer:
    def test_reads_go_to_the_primary_outside_the_scope(self):
        router = ReplicaRouter()

        assert {router.db_for_read(model) for model in DECIDING_MODELS} == {DEFAULT_DB_ALIAS}

    def test_inside_the_scope_reads_go_to_the_replica_and_writes_to_the_primary(self):
        router = ReplicaRouter()

        with replica_reads():
            assert {router.db_for_read(model) for model in DECIDING_MODELS} == {REPLICA}
            assert {router.db_for_write(model) for model in DECIDING_MODELS} == {DEFAULT_DB_ALIAS}
        assert reads_alias() == DEFAULT_DB_ALIAS

    def test_an_object_read_from_the_replica_is_read_and_saved_on_the_primary_outside_the_scope(self):
        rule = Rule()
        rule._state.db = REPLICA

        assert ReplicaRouter().db_for_write(Rule, instance=rule) == DEFAULT_DB_ALIAS
        assert ReplicaRouter().db_for_read(Rule, instance=rule) == DEFAULT_DB_ALIAS

    def test_the_scope_does_not_reach_other_threads(self):
        seen: list[str] = []
        with replica_reads():
            thread = threading.Thread(target=lambda: seen.append(reads_alias()))
            thread.start()
            thread.join()

        assert seen == [DEFAULT_DB_ALIAS]

    def test_the_scope_ends_when_its_block_raises(self):
        with pytest.raises(ValueError), replica_reads():
            raise ValueError

        assert reads_alias() == DEFAULT_DB_ALIAS

    def test_ingest_matching_claiming_and_delivery_read_only_the_primary(self, routed, api: Api, sendgrid: Any):
        rule_make("welcome", "user_signup")

        assert api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")]).status_code == 200
        run_worker()

        assert [m.to for m in sendgrid.accepted] == [["u1@example.com"]]
        assert Send.objects.get().state == Send.State.SENT
        assert routed, "the router was asked nothing: this test would prove nothing"
        assert {alias for _, alias in routed} == {DEFAULT_DB_ALIAS}

    def test_the_dashboard_reads_from_the_primary_and_says_so(
        self, routed, admin_client: Client, caplog: pytest.LogCaptureFixture
    ):
        rule_make("welcome", "user_signup")

        with caplog.at_level(logging.WARNING, logger="triggermail.replica"):
            page = admin_client.get("/admin/campaigns/performance/")

        assert page.status_code == 200
        assert "Read from the primary (replica unreachable)." in page.content.decode()
        assert "welcome" in page.content.decode()
        assert "Reading from the primary: the replica" in caplog.text
        assert {alias for _, alias in routed} == {DEFAULT_DB_ALIAS}

    def test_after_a_failure_the_dashboard_leaves_the_replica_alone_for_a_while(self, admin_client: Client):
        admin_client.get("/admin/campaigns/performance/")

        page = admin_client.get("/admin/campaigns/performance/")

        assert "Read from the primary (replica unreachable, retried shortly)." in page.content.decode()

    def test_the_check_warns(self):
        assert [m.id for m in replica_is_a_standby(None, databases=[REPLICA])] == ["triggermail.W020"]

    def test_the_rules_export_reads_from_the_primary_and_says_so(self):
        rule_make("welcome", "user_signup")
        out, err = io.StringIO(), io.StringIO()

        call_command("export_rules", stdout=out, stderr=err)

        assert '"welcome"' in out.getvalue()
        assert err.getvalue() == "Read from the primary (replica unreachable).\n"

    def test_the_rules_export_reads_the_primary_without_a_word_when_told_to(self):
        out, err = io.StringIO(), io.StringIO()

        call_command("export_rules", "--primary", stdout=out, stderr=err)

        assert '"rules"' in out.getvalue()
        assert err.getvalue() == ""

    def test_the_check_runs_only_when_asked_for_the_replica_database(self):
        assert replica_is_a_standby(None, databases=None) == []
        assert replica_is_a_standby(None, databases=[DEFAULT_DB_ALIAS]) == []


@pytest.fixture(scope="class")
def primary_as_replica() -> Iterator[str]:
    """A `replica` alias that is a second connection to the primary: it answers, but is no standby."""
    if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
        pytest.skip("pg_is_in_recovery() is PostgreSQL's; SQLite has no replicas")
    yield from _replica_alias()


@pytest.mark.usefixtures("primary_as_replica")
@pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])
class TestWithAReplicaThatIsNoStandby:
    def test_the_check_warns(self):
        assert [m.id for m in replica_is_a_standby(None, databases=[REPLICA])] == ["triggermail.W021"]

    def test_the_dashboard_says_so(self, admin_client: Client):
        page = admin_client.get("/admin/campaigns/performance/").content.decode()

        assert "Read from the replica (not a standby: it is not replaying a primary)." in page
