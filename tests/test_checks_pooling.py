"""Behind PgBouncer (DATABASE_POOLING=transaction) the settings and a system check say how the
dispatcher learns of new events: through DATABASE_DIRECT_URL, or by polling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from harness.processes import BASE_DIR

POOLED = "postgres://root@127.0.0.1:6432/triggermail"
DIRECT = "postgres://root@127.0.0.1:5432/triggermail"
# Run in a fresh interpreter: the settings read the environment once, at import. Nothing connects.
REPORT = """
import json, django
django.setup()
from django.conf import settings
from django.core.checks import run_checks
print(json.dumps({
    "checks": {str(m.id): m.msg for m in run_checks() if str(m.id).startswith("triggermail.")},
    "server_side_cursors_disabled": settings.DATABASES["default"].get("DISABLE_SERVER_SIDE_CURSORS", False),
    "direct": {**{k: settings.DATABASES["direct"][k] for k in ("HOST", "PORT", "NAME")},
               "MIRROR": settings.DATABASES["direct"]["TEST"]["MIRROR"]} if "direct" in settings.DATABASES else None,
}))
"""


def started(**environment: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "SECRET_KEY": "tests",
        "DJANGO_SETTINGS_MODULE": "triggermail.settings",
        **environment,
    }
    return subprocess.run(
        [sys.executable, "-c", REPORT], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def report(**environment: str) -> dict[str, Any]:
    process = started(**environment)
    assert process.returncode == 0, process.stderr
    return dict(json.loads(process.stdout.strip().splitlines()[-1]))


def test_behind_pgbouncer_with_a_direct_url_the_check_says_the_wakeup_listens_there():
    pooled = report(DATABASE_URL=POOLED, DATABASE_POOLING="transaction", DATABASE_DIRECT_URL=DIRECT)

    assert set(pooled["checks"]) == {"triggermail.I014"}
    assert "LISTEN through DATABASE_DIRECT_URL" in pooled["checks"]["triggermail.I014"]
    assert pooled["server_side_cursors_disabled"] is True
    # As a test mirror, the direct connection follows DATABASE_URL's database to the test database.
    assert pooled["direct"] == {"HOST": "127.0.0.1", "PORT": 5432, "NAME": "triggermail", "MIRROR": "default"}


def test_behind_pgbouncer_without_a_direct_url_the_check_warns_of_polling():
    pooled = report(DATABASE_URL=POOLED, DATABASE_POOLING="transaction", DISPATCH_INTERVAL="0.5")

    assert set(pooled["checks"]) == {"triggermail.W014"}
    assert "polling every DISPATCH_INTERVAL (0.5s)" in pooled["checks"]["triggermail.W014"]
    assert pooled["direct"] is None


def test_without_a_pooler_nothing_is_said_and_server_side_cursors_stay():
    direct = report(DATABASE_URL=DIRECT)

    assert direct["checks"] == {}
    assert direct["server_side_cursors_disabled"] is False


def test_transaction_pooling_is_refused_for_sqlite_and_unknown_modes_are_named():
    sqlite = started(DATABASE_URL="sqlite:////tmp/never-created.sqlite3", DATABASE_POOLING="transaction")
    unknown = started(DATABASE_URL=POOLED, DATABASE_POOLING="session")

    assert "DATABASE_POOLING=transaction is for PostgreSQL behind PgBouncer" in sqlite.stderr
    assert "DATABASE_POOLING must be one of none, transaction, not 'session'" in unknown.stderr
