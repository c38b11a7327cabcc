"""SendGrid's tracking webhook view: Anymail's, with the body's shape checked before it is parsed.

Mounted at Anymail's own path (/anymail/sendgrid/tracking/, campaigns.sending.urls, ahead of
anymail.urls), so SendGrid's settings do not change. The signature and basic auth are checked
first, exactly as before; a signed body that is malformed is answered 400 with JSON naming the
event and field, logged at warning, and nothing from it reaches the tracking signal.
"""

from __future__ import annotations

import logging
from typing import Any

from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from django.http import HttpRequest, HttpResponse, JsonResponse

from campaigns.sending.webhook_input import WebhookBodyError, webhook_events_parse

logger = logging.getLogger(__name__)


class CheckedSendGridTrackingWebhookView(SendGridTrackingWebhookView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().post(request, *args, **kwargs)
        except WebhookBodyError as exc:
            # A 4xx tells SendGrid not to post this body again; a 500 would make it retry for days.
            logger.warning("SendGrid webhook body refused (%d bytes): %s", len(request.body), exc)
            return JsonResponse(exc.as_json(), status=400)

    def parse_events(self, request: HttpRequest) -> list[Any]:
        # Every event is checked before any is parsed, so a bad event late in the array leaves
        # nothing recorded from the events before it.
        events = webhook_events_parse(request.body)
        return [self.esp_to_anymail_event(event) for event in events]
