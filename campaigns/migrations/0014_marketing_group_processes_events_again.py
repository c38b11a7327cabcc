"""The "Marketing" group may process failed events again.

A marketer who fixes the rule or template that made an event fail (see campaigns.matching.poison) is
the person who wants its email sent; "Process again" on the Events page asks for events.change_event.
Events are still never edited in the Admin (its Event pages stay read-only).
"""

from django.db import migrations

GROUP = "Marketing"
PERMISSION = ("events", "event", "change_event")


def _permission(apps, alias):
    app_label, model, codename = PERMISSION
    return (
        apps.get_model("auth", "Permission")
        .objects.using(alias)
        .filter(content_type__app_label=app_label, content_type__model=model, codename=codename)
    )


def marketing_permission_add(apps, schema_editor):
    alias = schema_editor.connection.alias
    for group in apps.get_model("auth", "Group").objects.using(alias).filter(name=GROUP):
        group.permissions.add(*_permission(apps, alias))


def marketing_permission_remove(apps, schema_editor):
    alias = schema_editor.connection.alias
    for group in apps.get_model("auth", "Group").objects.using(alias).filter(name=GROUP):
        group.permissions.remove(*_permission(apps, alias))


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0013_change_record_version"),
    ]

    operations = [migrations.RunPython(marketing_permission_add, marketing_permission_remove)]
