"""The "Marketing" group: what marketers need to run campaigns alone, and nothing that would let
them take over the system (write keys, users, groups, the task queue).

The list is written out here rather than imported, so the migration means the same thing forever.
Re-running it (or migrating again after this list grows in a later migration) only adds.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations, models

GROUP = "Marketing"

PERMISSIONS = {
    "campaigns": {
        "rule": ("add", "change", "delete", "view"),
        "condition": ("add", "change", "delete", "view"),
        "template": ("add", "change", "delete", "view"),
        # Sends are written by the worker; "change" is what cancelling and resending ask for.
        "send": ("change", "view"),
        "campaignsettings": ("change", "view"),
        # Added by hand and lifted; never deleted, so the list stays the address's history.
        "suppression": ("add", "change", "view"),
        "decision": ("view",),
        "providerevent": ("view",),
        # Keys are dedupe identifiers built from rule, contact and event ids, not secrets.
        "idempotencykey": ("view",),
        "changerecord": ("view",),
    },
    "events": {
        "event": ("view",),
        "contact": ("view",),
    },
}


def marketing_group_create(apps, schema_editor):
    # Permissions are normally created after the last migration (post_migrate); on a fresh database
    # they do not exist yet at this point, so create them now. It does nothing when they exist.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(schema_editor.connection.alias).get_or_create(name=GROUP)
    wanted = models.Q(pk__in=[])
    for app_label, models_actions in PERMISSIONS.items():
        for model, actions in models_actions.items():
            codenames = [f"{action}_{model}" for action in actions]
            wanted |= models.Q(content_type__app_label=app_label, content_type__model=model, codename__in=codenames)
    permissions = list(Permission.objects.using(schema_editor.connection.alias).filter(wanted))
    expected = sum(len(actions) for models_actions in PERMISSIONS.values() for actions in models_actions.values())
    if len(permissions) != expected:
        raise RuntimeError(f"expected {expected} permissions for the {GROUP} group, found {len(permissions)}")
    group.permissions.add(*permissions)


def marketing_group_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.using(schema_editor.connection.alias).filter(name=GROUP).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("events", "0002_consent_caps_windows_conversions"),
        ("campaigns", "0005_change_records"),
    ]

    operations = [
        migrations.AlterField(
            model_name="changerecord",
            name="action",
            field=models.CharField(
                help_text="created, changed, restored version #N, deleted, imported…", max_length=40
            ),
        ),
        migrations.RunPython(marketing_group_create, marketing_group_delete),
    ]
