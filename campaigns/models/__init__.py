"""Rules, templates and what they caused: decisions, sends and idempotency keys.

State lives in these rows. A django-q2 task only says "look at these rows"; losing one, running
one late or twice does not change what a person receives, because every transition below is a
conditional update on the row's state and every reservation a unique constraint.

The models live in modules by responsibility (rules, sends, settings, consent, history, heartbeat,
translations, variants);
every one is imported here, so `from campaigns.models import X` works and Django finds them all.
"""

from __future__ import annotations

# In the order the models were declared when they were one module: Django registers them in import
# order, and that order is what fresh databases number content types and permissions by.
# isort: off
from campaigns.models.rules import CappedAction, Category, Condition, DedupePolicy, Rule, Template
from campaigns.models.sends import Decision, IdempotencyKey, ProviderEvent, ProviderEventKey, Send
from campaigns.models.settings import CampaignSettings, RulesStamp
from campaigns.models.consent import Suppression
from campaigns.models.history import ChangeRecord
from campaigns.models.heartbeat import WorkerHeartbeat
from campaigns.models.translations import TemplateTranslation
from campaigns.models.variants import RuleVariant
# isort: on

__all__ = [
    "CampaignSettings",
    "CappedAction",
    "Category",
    "ChangeRecord",
    "Condition",
    "Decision",
    "DedupePolicy",
    "IdempotencyKey",
    "ProviderEvent",
    "ProviderEventKey",
    "Rule",
    "RuleVariant",
    "RulesStamp",
    "Send",
    "Suppression",
    "Template",
    "TemplateTranslation",
    "WorkerHeartbeat",
]
