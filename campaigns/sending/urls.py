"""SendGrid's Event Webhook, at the path Anymail gives it (included ahead of anymail.urls)."""

from __future__ import annotations

from django.urls import path

from campaigns.sending.webhook_view import CheckedSendGridTrackingWebhookView

urlpatterns = [
    path("sendgrid/tracking/", CheckedSendGridTrackingWebhookView.as_view(), name="sendgrid_tracking_webhook"),
]
