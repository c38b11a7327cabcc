"""A rule told in one plain sentence, so a marketer can check it says what they meant."""

from __future__ import annotations

from campaigns.authoring.durations import duration_words
from campaigns.matching.rules import RuleData

_DEDUPE_WORDS = {
    "per_event": "at most once per event",
    "per_user_day": "at most once per user per day",
    "once_per_user": "at most once per user, ever",
}


def _dedupe_words(rule: RuleData) -> str:
    if rule.dedupe_policy == "per_property":
        return f"at most once per user for each value of property {rule.dedupe_property}"
    return _DEDUPE_WORDS.get(rule.dedupe_policy, rule.dedupe_policy)


def _timing_words(rule: RuleData) -> str:
    """Sentences for the send window, the rule's frequency cap and its goal, when set."""
    words = ""
    if rule.window is not None:
        words += f" Sent only {rule.window.describe()}, in the contact's time zone."
    if rule.cap_count is not None:
        emails = "email" if rule.cap_count == 1 else "emails"
        over = "skipped" if rule.capped_action == "skip" else "delayed until there is room"
        words += (
            f" At most {rule.cap_count} {emails} from this rule per user within {duration_words(rule.cap_period)};"
            f" more are {over}."
        )
    if rule.goal_event:
        words += f" Counts as converted when {rule.goal_event} happens within {duration_words(rule.goal_window)}."
    return words + _variants_words(rule)


def _variants_words(rule: RuleData) -> str:
    """E.g. ' A/B test, …: A 'Recovery' 45 %, B 'Recovery, short' 45 %, holdout (holdout: sent nothing) 10 %.'"""
    total = sum(variant.weight for variant in rule.variants)
    if not total:
        return ""
    parts = [
        f"{v.name} {'(holdout: sent nothing)' if v.holdout else repr(v.template_name)} {v.weight * 100 / total:.0f} %"
        for v in sorted(rule.variants, key=lambda v: v.name)
    ]
    return f" A/B test, each contact always gets the same one: {', '.join(parts)}."


def rule_summary(rule: RuleData) -> str:
    """E.g. "When cart_abandoned happens and property cart_value > 50, send 'Recovery' 1 hour later,
    unless order_completed happens first; at most once per user per day." """
    sentence = f"When {rule.trigger_event} happens"
    if rule.conditions:
        sentence += " and " + " and ".join(condition.describe() for condition in rule.conditions)
    when = f"{duration_words(rule.delay)} later" if rule.delay else "right away"
    sentence += f", send '{rule.template_name}' {when}"
    if rule.exit_events:
        sentence += f", unless {' or '.join(rule.exit_events)} happens first"
    sentence += f"; {_dedupe_words(rule)}"
    if rule.cooldown:
        sentence += f", and no more than one email from this rule per user within {duration_words(rule.cooldown)}"
    sentence += "." + _timing_words(rule)
    # A paused rule still reads as what it would do, so the marketer can check it before resuming.
    return sentence if rule.active else f"Paused. {sentence}"
