"""The verdict of a chaos run: what was posted, what the model expected, what the provider accepted.

Read after every process has stopped, from three independent sources: the workload's own record
(messages, acknowledgements, the expectation model), the fake provider's ledger, and the database.
A run fails on any duplicate (a key or send accepted twice, or a user getting more than the model
allows) and any loss (an expected email neither accepted nor in a terminal state with a reason),
and on any poison message (chaos.poison) that did not end as its kind must.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from campaigns.models import Send
from chaos.faults import Kill
from chaos.ingest import Poster
from chaos.poison import POISON_RULES, RENDER, poison_messages
from chaos.settle import Deployment
from chaos.variants import variants_section
from chaos.workload import RECOVERY, RULE_NAMES, Expected, User
from events.models import Event
from harness.sendgrid_server import Accepted

# States that say "not sent (or not known to be), and why" (a reason is required): an expected email
# that ended here is accounted for. `unknown` is not: it must have become `sent` (evidence) or
# `abandoned` (time). Nor is `suppressed`: every user of the workload has an address and consent.
EXCUSED_STATES = (Send.State.FAILED, Send.State.ABANDONED)
NOT_SENT_STATES = (Send.State.FAILED, Send.State.CANCELLED, Send.State.SUPPRESSED)


@dataclass
class SendRow:
    pk: int
    rule: str
    user_id: str
    state: str
    reason: str
    dedupe_key: str
    # The triggering event: a resend carries its original's, so (user, rule, event) names one email.
    event_id: int | None = None


@dataclass
class Verdict:
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def row(self, label: str, value: object, note: str = "") -> None:
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        self.lines.append(f"  {label:<58} {shown:>9}  {note}".rstrip())

    def must_be_zero(self, label: str, value: int, examples: list[str] | None = None) -> None:
        self.row(label, value, "MUST be 0" + ("" if value == 0 else "  <-- FAIL"))
        if value:
            self.failures.append(f"{label}: {value}" + (f" e.g. {examples[:5]}" if examples else ""))

    def section(self, title: str) -> None:
        self.lines.append(f"{title}")

    def text(self) -> str:
        return "\n".join(self.lines)


def sends_load() -> list[SendRow]:
    rows = Send.objects.values_list("pk", "rule__name", "contact__user_id", "state", "reason", "dedupe_key", "event_id")
    return [SendRow(*row) for row in rows]


def ingest_section(v: Verdict, *, posted: int, distinct: int, acked: set[str], dup_added: int) -> None:
    stored = set(Event.objects.values_list("message_id", flat=True))
    v.section("Ingest")
    v.row("events posted (incl. duplicates and retries)", posted)
    v.row("events generated (distinct messageIds)", distinct, f"of which re-delivered in later batches: {dup_added}")
    v.row("events accepted (distinct messageIds stored)", len(stored))
    missing = sorted(acked - stored)
    v.must_be_zero("acknowledged (200) but not stored", len(missing), missing)


def sends_section(
    v: Verdict, *, sends: list[SendRow], ledger: list[Accepted], expected: dict[tuple[str, str], Expected]
) -> None:
    by_send = Counter(a.send_id for a in ledger)
    by_key = Counter(a.key for a in ledger)
    states = Counter(s.state for s in sends)
    low = sum(e.low for e in expected.values())
    high = sum(e.high for e in expected.values())
    v.section("Sends")
    v.row("sends expected by the workload model", low, f"(up to {high:,} with raced exits)" if high != low else "")
    v.row("provider acceptances (ledger)", len(ledger))
    dup_keys = sorted(k for k, n in by_key.items() if n > 1)
    v.must_be_zero("duplicates per key (ledger keys accepted > 1 time)", len(dup_keys), dup_keys)
    dup_sends = sorted(k for k, n in by_send.items() if n > 1)
    v.must_be_zero("duplicates per send (send ids accepted > 1 time)", len(dup_sends), dup_sends)
    for state in Send.State.values:
        v.row(f"sends in state {state}", states.get(state, 0))
    unsettled = [str(s.pk) for s in sends if s.state == Send.State.UNKNOWN]
    v.row("unsettled unknown (after the grace window)", len(unsettled))
    abandoned = [s for s in sends if s.state == Send.State.ABANDONED]
    share = f"{len(abandoned) / low:.1%} of expected" if low else ""
    v.row("abandoned (unknown past the grace window, for a person)", len(abandoned), share)
    v.row("  of them accepted by the provider (no callback came)", sum(1 for s in abandoned if by_send.get(str(s.pk))))
    resent = [s for s in sends if s.state == Send.State.NOT_ACCEPTED]
    v.row("auto-resent (unknown, webhook live, no event of its own)", len(resent))
    wrong = [str(s.pk) for s in resent if by_send.get(str(s.pk))]
    v.row("  of them accepted by the provider after all", len(wrong), "each is a user who got it twice")
    twice = emails_received_twice(sends, ledger)
    v.must_be_zero("users who got an email twice (per user/rule/trigger)", len(twice), twice)
    settled = sum(1 for s in sends if s.reason.startswith("settled by"))
    v.row("sent, settled by webhook evidence (answer lost or unknown)", settled)
    lost, extra = _per_user(sends, by_send, expected)
    v.must_be_zero("lost sends (expected; neither accepted nor excused)", len(lost), lost)
    v.must_be_zero("unexpected emails (a user got more than the model allows)", len(extra), extra)


def emails_received_twice(sends: list[SendRow], ledger: list[Accepted]) -> list[str]:
    """(user, rule, triggering event) with more than one acceptance in the provider's ledger.

    Counted per email rather than per key: a resend has a key of its own, so a user who got both
    the original and its resend shows up here and nowhere in the per-key count.
    """
    email_of = {str(s.pk): (s.user_id, s.rule, s.event_id) for s in sends}
    counts = Counter(email_of.get(a.send_id, ("?", "?", a.send_id)) for a in ledger)
    return sorted(f"{user}/{rule}/event {event}: {n}" for (user, rule, event), n in counts.items() if n > 1)


def _per_user(
    sends: list[SendRow], by_send: Counter[str], expected: dict[tuple[str, str], Expected]
) -> tuple[list[str], list[str]]:
    accepted: Counter[tuple[str, str]] = Counter()
    excused: Counter[tuple[str, str]] = Counter()
    for s in sends:
        pair = (s.user_id, s.rule)
        if by_send.get(str(s.pk)):
            accepted[pair] += 1
        elif s.state in EXCUSED_STATES and s.reason:
            excused[pair] += 1
    lost, extra = [], []
    for pair, e in expected.items():
        if accepted[pair] + excused[pair] < e.low:
            lost.append(f"{pair[0]}/{pair[1]} ({e.why})")
        if accepted[pair] > e.high:
            extra.append(f"{pair[0]}/{pair[1]}: {accepted[pair]} > {e.high} ({e.why})")
    return lost, extra


def per_rule_table(sends: list[SendRow], ledger: list[Accepted], expected: dict[tuple[str, str], Expected]) -> str:
    by_send = Counter(a.send_id for a in ledger)
    columns = ["expected", "accepted", "sent", "unknown", "abandoned", "failed", "cancelled", "exit-cxl", "raced"]
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for (_, rule), e in expected.items():
        counts[rule]["expected"] += e.low
        counts[rule]["raced"] += e.high - e.low
    for s in sends:
        counts[s.rule]["accepted"] += 1 if by_send.get(str(s.pk)) else 0
        if s.state in columns:
            counts[s.rule][s.state] += 1
        counts[s.rule]["exit-cxl"] += s.state == Send.State.CANCELLED and s.reason.startswith("exit event")
    lines = [f"  {'rule':<24}" + "".join(f"{c:>10}" for c in columns)]
    for rule in (*RULE_NAMES, *POISON_RULES):
        lines.append(f"  {rule:<24}" + "".join(f"{counts[rule][c]:>10,}" for c in columns))
    return "\n".join(lines)


def cross_checks(
    v: Verdict,
    *,
    sends: list[SendRow],
    ledger: list[Accepted],
    expected: dict[tuple[str, str], Expected],
    evidenced: set[str],
) -> None:
    by_send = Counter(a.send_id for a in ledger)
    known = {str(s.pk) for s in sends}
    v.section("Cross-checks")
    sent = [s for s in sends if s.state == Send.State.SENT]
    wrong = [str(s.pk) for s in sent if by_send.get(str(s.pk), 0) != 1]
    v.row("sends in `sent`", len(sent))
    v.must_be_zero("`sent` sends without exactly one ledger acceptance", len(wrong), wrong)
    contradicted = [f"{s.pk} {s.state}" for s in sends if s.state in NOT_SENT_STATES and by_send.get(str(s.pk))]
    v.must_be_zero("ledger acceptances of cancelled/failed/suppressed sends", len(contradicted), contradicted)
    strangers = sorted({a.send_id for a in ledger} - known)
    v.must_be_zero("ledger acceptances of no known send", len(strangers), strangers)
    exit_users = {uid for (uid, rule), e in expected.items() if rule == RECOVERY and e.why.startswith("exit ack")}
    recovered = {s.user_id for s in sends if s.rule == RECOVERY and by_send.get(str(s.pk))}
    got = sorted(exit_users & recovered)
    v.row("users whose exit event must cancel the recovery", len(exit_users))
    v.must_be_zero("of them, users who got a recovery email anyway", len(got), got)
    ignored = [f"{s.pk} {s.state}" for s in sends if str(s.pk) in evidenced and s.state != Send.State.SENT]
    v.must_be_zero("sends with acknowledged webhook evidence not `sent`", len(ignored), ignored)


def poison_section(v: Verdict, users: list[User]) -> None:
    """Every poison message is stored and ends as its kind must: trap failed, odd clean, render's send failed."""
    poison = poison_messages(users)
    ids = [m.message_id for messages in poison.values() for m in messages]
    events = {
        e.message_id: e
        for e in Event.objects.filter(message_id__in=ids).only("message_id", "processed_at", "processing_error")
    }
    v.section("Poison (chaos.poison: messages no code path expects)")
    for kind, messages in poison.items():
        stored = [events[m.message_id] for m in messages if m.message_id in events]
        failed = [e for e in stored if e.processed_at is not None and e.processing_error]
        v.row(f"{kind} events posted / stored", f"{len(messages)} / {len(stored)}")
        unprocessed = [e.message_id for e in stored if e.processed_at is None]
        v.must_be_zero(f"{kind} events left unprocessed", len(unprocessed), unprocessed)
        if kind == "poison-trap":
            v.row(f"{kind} events marked failed with a reason", len(failed), "all of them must be")
            clean = [e.message_id for e in stored if e.processed_at is not None and not e.processing_error]
            v.must_be_zero(f"{kind} events processed without an error", len(clean), clean)
        else:
            v.must_be_zero(
                f"{kind} events marked failed (must match cleanly)", len(failed), [e.message_id for e in failed]
            )
    sends = Send.objects.filter(rule__name=RENDER)
    failed_sends = sends.filter(state=Send.State.FAILED, reason__startswith="template error")
    v.row("poison-render sends failed with the template error", failed_sends.count())
    other = [f"{pk} {state}" for pk, state in sends.exclude(pk__in=failed_sends).values_list("pk", "state")]
    v.must_be_zero("poison-render sends in any other state", len(other), other)
    v.must_be_zero(
        "poison-render events without their failed send", len(poison["poison-render"]) - failed_sends.count()
    )


def faults_section(v: Verdict, faults: Counter[str]) -> None:
    v.section("Faults injected")
    for kind, count in sorted(faults.items()):
        v.row(kind, count)


def recovery_section(v: Verdict, *, kills: list[Kill], ledger: list[Accepted]) -> None:
    """Per kill: how long until the last send that was queued, not yet claimed, went out.

    Only sends that went out at their next attempt count: one the provider refused (and that was
    retried later) measures the provider's delay, not how fast held work was taken over.
    """
    first_out: dict[str, float] = {}
    for accepted in ledger:
        first_out.setdefault(accepted.send_id, accepted.received_at)
    attempts = {str(pk): n for pk, n in Send.objects.values_list("pk", "attempts")}
    v.section("Recovery: from each kill to the last send held then (queued, not claimed) going out")
    worst: dict[str, float] = {}
    for kill in kills:
        label = f"{time.strftime('%X', time.localtime(kill.at))} {kill.kind}"
        if kill.held is None:
            v.row(label, "?", "(database unreachable)")
            continue
        out = {s: first_out[s] - kill.at for s, n in kill.held.items() if s in first_out and attempts[s] == n + 1}
        slowest = max(out, key=out.__getitem__, default="")
        took = out.get(slowest, 0.0)
        worst[kill.kind] = max(worst.get(kill.kind, 0.0), took)
        note = f"{len(kill.held)} held, {len(out)} out at the next attempt" + (f", last: send {slowest}" if out else "")
        v.row(label, f"{took:.1f}s", note)
    for kind, took in sorted(worst.items()):
        v.row(f"max after {kind}", f"{took:.1f}s")
    v.row("max over the run", f"{max(worst.values(), default=0.0):.1f}s")


def judge(
    *,
    deployment: Deployment,
    users: list[User],
    poster: Poster,
    expected: dict[tuple[str, str], Expected],
    faults: Counter[str],
    dup_added: int,
    settled: bool,
    kills_log: list[str],
    kills: list[Kill],
    duration: float,
) -> tuple[str, bool]:
    """The whole report as text, and whether the run failed."""
    config = deployment.config
    sends, ledger = sends_load(), list(deployment.server.accepted)
    evidenced = deployment.webhooks.evidenced if deployment.webhooks is not None else set()
    v = Verdict()
    v.lines.append(
        f"TriggerMail chaos run {datetime.now().isoformat(timespec='seconds')}: {config.events:,} events over "
        f"{config.duration:.0f}s, seed {config.seed}, 2 web + 2 worker hosts, Redis broker, {duration:.0f}s in all"
    )
    ingest_section(
        v,
        posted=poster.stats.messages_posted,
        distinct=sum(len(u.messages) for u in users),
        acked=set(poster.acks),
        dup_added=dup_added,
    )
    v.must_be_zero("batches never acknowledged (after SDK-style retries)", poster.stats.batches_unacknowledged)
    v.must_be_zero("batches refused with a 4xx", len(poster.stats.rejected), poster.stats.rejected)
    sends_section(v, sends=sends, ledger=ledger, expected=expected)
    v.lines.append(per_rule_table(sends, ledger, expected))
    cross_checks(v, sends=sends, ledger=ledger, expected=expected, evidenced=evidenced)
    variants_section(v, ledger)
    poison_section(v, users)
    faults_section(v, faults)
    recovery_section(v, kills=kills, ledger=ledger)
    v.row("settled within the bounded waits", "yes" if settled else "NO")
    if not settled:
        v.failures.append("the system did not settle within the bounded waits")
    v.lines.append("Kills: " + ("; ".join(kills_log) or "none"))
    v.lines.append("VERDICT: " + ("FAIL: " + " | ".join(v.failures) if v.failures else "PASS (no duplicate, no loss)"))
    return v.text(), bool(v.failures)
