from __future__ import annotations

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from anymail.signals import tracking

        from campaigns.webhooks import tracking_event_receive
        from triggermail import checks  # noqa: F401  (registers the system checks)

        # A dispatch_uid, so that importing this twice (tests, autoreload) never records an event twice.
        tracking.connect(tracking_event_receive, dispatch_uid="campaigns.webhooks.tracking_event_receive")
