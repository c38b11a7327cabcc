"""The "Marketing" group no longer sees Idempotency keys.

They are the delivery's bookkeeping (one per provider call), not something a marketer acts on; a
send's page still shows its keys. The README's list of what marketers see and the group agree again.
"""

from django.db import migrations

GROUP = "Marketing"

# app label → model → actions taken away from the group, in the form of 0006's PERMISSIONS.
REMOVED = {"campaigns": {"idempotencykey": ("view",)}}


def _permissions(apps, alias):
    Permission = apps.get_model("auth", "Permission")
    return [
        permission
        for app_label, models_actions in REMOVED.items()
        for model, actions in models_actions.items()
        for permission in Permission.objects.using(alias).filter(
            content_type__app_label=app_label,
            content_type__model=model,
            codename__in=[f"{action}_{model}" for action in actions],
        )
    ]


def marketing_permissions_remove(apps, schema_editor):
    alias = schema_editor.connection.alias
    for group in apps.get_model("auth", "Group").objects.using(alias).filter(name=GROUP):
        group.permissions.remove(*_permissions(apps, alias))


def marketing_permissions_restore(apps, schema_editor):
    alias = schema_editor.connection.alias
    for group in apps.get_model("auth", "Group").objects.using(alias).filter(name=GROUP):
        group.permissions.add(*_permissions(apps, alias))


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0011_worker_heartbeat_recovered_at"),
    ]

    operations = [migrations.RunPython(marketing_permissions_remove, marketing_permissions_restore)]
