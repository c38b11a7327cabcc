# The database itself wakes the event processors: a statement that inserted events sends a NOTIFY,
# which PostgreSQL delivers when (and only if) the transaction commits. Before this, the ingest
# sent it as a statement of its own: one round trip more on every request.

from django.db import migrations

CHANNEL = "triggermail_events"  # triggermail.wakeup.CHANNEL

FUNCTION = f"""
CREATE FUNCTION events_event_inserted_notify() RETURNS trigger AS $$
BEGIN
    -- A batch of duplicates only (ON CONFLICT DO NOTHING inserted none) has nothing to match.
    IF EXISTS (SELECT 1 FROM inserted) THEN
        PERFORM pg_notify('{CHANNEL}', '');
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql
"""


def trigger_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # elsewhere the dispatcher looks for unprocessed events every DISPATCH_INTERVAL
    schema_editor.execute(FUNCTION)
    schema_editor.execute(
        "CREATE TRIGGER events_event_notify AFTER INSERT ON events_event REFERENCING NEW TABLE AS inserted "
        "FOR EACH STATEMENT EXECUTE FUNCTION events_event_inserted_notify()"
    )


def trigger_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS events_event_notify ON events_event")
    schema_editor.execute("DROP FUNCTION IF EXISTS events_event_inserted_notify()")


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0003_event_indexes_cut"),
    ]

    operations = [
        migrations.RunPython(trigger_create, trigger_drop),
    ]
