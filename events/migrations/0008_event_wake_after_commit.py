# The event processors are woken by the ingest after its commit (triggermail.wakeup.wake), no longer
# by a trigger inside the ingest's transaction (events/0004). PostgreSQL serialises the commits of
# every transaction that sent a NOTIFY under one lock held until the commit is on disk
# (async.c, PreCommit_Notify), so the trigger made every durable ingest commit wait for the one
# before it: with 8 clients, pgbench measured 13,600 single-row INSERT commits/s without it, 4,000
# with a pg_notify in the same transaction, 9,300 with the pg_notify as a statement of its own
# after the commit (a transaction that writes no WAL does not wait for the disk). README, Speed.

import importlib

from django.db import migrations

EARLIER = importlib.import_module("events.migrations.0004_event_insert_notify")


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0007_message_key"),
        # The partitioned events table (campaigns/0018) carries the trigger again on its root.
        ("campaigns", "0018_partitioned_history"),
    ]

    operations = [
        migrations.RunPython(EARLIER.trigger_drop, EARLIER.trigger_create),
    ]
