# The database wakes the task queue's consumer: a statement that inserted django-q2 task rows sends a
# NOTIFY, which PostgreSQL delivers when (and only if) the transaction commits, so a delivery queued
# with a batch of matched events is picked up at once instead of at the consumer's next poll
# (triggermail/broker.py). The same pattern as events/0004 for the event processors.

from django.db import migrations

CHANNEL = "triggermail_tasks"  # triggermail.wakeup.TASKS_CHANNEL

FUNCTION = f"""
CREATE FUNCTION django_q_ormq_inserted_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END $$ LANGUAGE plpgsql
"""


def trigger_create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # elsewhere the broker polls every Q_POLL seconds
    schema_editor.execute(FUNCTION)
    schema_editor.execute(
        "CREATE TRIGGER django_q_ormq_notify AFTER INSERT ON django_q_ormq "
        "FOR EACH STATEMENT EXECUTE FUNCTION django_q_ormq_inserted_notify()"
    )


def trigger_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS django_q_ormq_notify ON django_q_ormq")
    schema_editor.execute("DROP FUNCTION IF EXISTS django_q_ormq_inserted_notify()")


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0018_partitioned_history"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.RunPython(trigger_create, trigger_drop),
    ]
