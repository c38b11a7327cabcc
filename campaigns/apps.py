from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from anymail.signals import tracking
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from campaigns.sending.webhooks import tracking_event_receive
        from triggermail import checks  # noqa: F401  (registers the system checks)
        from triggermail.pg_timestamps import utc_timestamps_register

        # A dispatch_uid, so that importing this twice (tests, autoreload) never records an event twice.
        tracking.connect(tracking_event_receive, dispatch_uid="campaigns.sending.webhooks.tracking_event_receive")
        # `migrate` creates the days ahead too, so a fresh database takes events in partitions at once.
        post_migrate.connect(partitions_ahead, sender=self, dispatch_uid="campaigns.apps.partitions_ahead")
        connection_created.connect(utc_timestamps_register, dispatch_uid="triggermail.pg_timestamps")


def partitions_ahead(using: str = "default", **kwargs: object) -> None:
    from triggermail.partitions import partitions_ensure_ahead

    if using == "default":
        partitions_ensure_ahead()


class TriggerMailAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with TriggerMail's site (campaigns.admin_site), which mounts the Dashboard,
    the template preview and the simulator. Here rather than in campaigns.admin, whose import
    registers models and so must wait until the apps are loaded."""

    default_site = "campaigns.admin_site.TriggerMailAdminSite"
    # Named in INSTALLED_APPS; not the default config of this module, which is CampaignsConfig.
    default = False
