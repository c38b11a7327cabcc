"""Per-object version numbers for change records, and a version 1 for every object whose history
begins with a change: the state it was in before that change, so that it can be restored.

Existing records are numbered per (kind, object_id) in the order they were made. Where an object's
first record is a change rather than its creation or import (the demo campaign was imported without
a record, for instance), a record of the state before it becomes version 1 and the others move up.
"""

from django.db import migrations, models

BASELINE_ACTION = "state before the first recorded change"


def change_records_number(apps, schema_editor):
    ChangeRecord = apps.get_model("campaigns", "ChangeRecord")
    records = ChangeRecord.objects.using(schema_editor.connection.alias)
    # Without the model's ordering, which would make DISTINCT count each record's id too.
    objects = list(records.order_by().values_list("kind", "object_id").distinct())
    for kind, object_id in objects:
        history = list(records.filter(kind=kind, object_id=object_id).order_by("id"))
        version = 1
        first = history[0]
        if first.before is not None:
            baseline = records.create(kind=kind, object_id=object_id, version=1, object_name=first.object_name,
                                      action=BASELINE_ACTION, user="", before=None, after=first.before)  # fmt: skip
            # auto_now_add stamped it now; it stands for the moment of the first change.
            records.filter(pk=baseline.pk).update(created_at=first.created_at)
            version = 2
        for record in history:
            records.filter(pk=record.pk).update(version=version)
            version += 1


def change_records_unnumber(apps, schema_editor):
    ChangeRecord = apps.get_model("campaigns", "ChangeRecord")
    ChangeRecord.objects.using(schema_editor.connection.alias).filter(action=BASELINE_ACTION).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0012_marketing_group_without_idempotency_keys"),
    ]

    operations = [
        migrations.AddField(model_name="changerecord", name="version", field=models.PositiveIntegerField(null=True)),
        migrations.RunPython(change_records_number, change_records_unnumber),
        migrations.AlterField(model_name="changerecord", name="version", field=models.PositiveIntegerField()),
        migrations.AddConstraint(
            model_name="changerecord",
            constraint=models.UniqueConstraint(fields=("kind", "object_id", "version"), name="change_record_version"),
        ),
    ]
