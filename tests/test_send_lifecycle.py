"""A send's life in one module: nothing else writes `state`, each transition refuses the states the
table does not allow, and the table, the functions and the README agree (campaigns.sending.lifecycle)."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from campaigns.models import Send
from campaigns.sending import lifecycle
from campaigns.sending.transitions import MOVES, TRANSITIONS, State, transition, transitions_markdown
from tests import baker_recipes
from tests.world import rule_make

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("campaigns", "events", "triggermail")
# The only modules that may write `state`. Migrations are the schema's history, not the send's life.
WRITERS = {Path("campaigns/sending/lifecycle.py")}
CREATIONS = {"sends_insert", "resend_insert"}
UPDATE_METHODS = {"update", "create", "get_or_create", "update_or_create"}
FIELD_LIST_WRITERS = {"bulk_update", "update_from_values"}
SQL_WRITES_STATE = re.compile(r"\bset\b[^;]*?[\"`]?\bstate[\"`]?\s*=|\binsert\s+into\b[^;]*?\bstate\b", re.I)


def _name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def _names_state(node: ast.expr) -> bool:
    """A list or tuple of field names that contains "state"."""
    elements = node.elts if isinstance(node, ast.List | ast.Tuple) else []
    return any(isinstance(e, ast.Constant) and e.value == "state" for e in elements)


def _write_of_state(node: ast.AST) -> bool:
    if isinstance(node, ast.Call):
        name = _name(node.func)
        if (name in UPDATE_METHODS or name == "Send") and any(k.arg == "state" for k in node.keywords):
            return True
        if name in FIELD_LIST_WRITERS:
            return any(_names_state(a) for a in [*node.args, *(k.value for k in node.keywords)])
        if name == "setattr" and len(node.args) > 1:
            return isinstance(node.args[1], ast.Constant) and node.args[1].value == "state"
    if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        flat = [t for target in targets for t in ast.walk(target)]
        return any(isinstance(t, ast.Attribute) and t.attr == "state" for t in flat)
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(SQL_WRITES_STATE.search(node.value))


def state_writes(source: str, filename: str) -> list[str]:
    """ "file:line" of each write of `state` in this Python source."""
    tree = ast.parse(source, filename=filename)
    lines = sorted(
        {node.lineno for node in ast.walk(tree) if isinstance(node, ast.stmt | ast.expr) and _write_of_state(node)}
    )
    return [f"{filename}:{line}" for line in lines]


def test_no_module_outside_the_lifecycle_writes_a_sends_state():
    writes = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative in WRITERS or "migrations" in relative.parts:
                continue
            writes += state_writes(path.read_text(), str(relative))
    assert writes == [], "only campaigns/sending/lifecycle.py may write Send.state"


PLANTED = """
Send.objects.filter(pk=1, state="scheduled").update(state="sent", reason="")
send.state = Send.State.SENT
send.reason, send.state = "", "sent"
Send.objects.bulk_update(sends, ["reason", "state"])
update_from_values(Send, rows, fields=["state", "sent_at"])
cursor.execute("UPDATE campaigns_send SET reason = '', state = 'sent' WHERE id = %s", [1])
Send.objects.create(rule=rule, state="sent")
setattr(send, "state", "sent")
Send.objects.filter(state="scheduled").count()
Send.objects.filter(pk=1, state="sent").update(reason="contradicted")
"""


def test_the_checker_names_the_line_of_each_kind_of_write_and_not_the_reads():
    assert state_writes(PLANTED, "planted.py") == [f"planted.py:{line}" for line in range(2, 10)]


def test_the_checker_sees_each_write_the_lifecycle_module_makes():
    # The scan would pass vacuously if it could not see the writes the transitions do make.
    source = (ROOT / "campaigns/sending/lifecycle.py").read_text()
    functions = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
    written = {int(w.split(":")[1]) for w in state_writes(source, "lifecycle.py")}
    writers = {f.name for f in functions if any(f.lineno <= line <= (f.end_lineno or 0) for line in written)}
    # The two creations write `state` through the model's default, checked by _new_check.
    assert writers == set(MOVES) - CREATIONS


NOW = timezone.now()


def _send(state: State, number: int) -> Send:
    rule = rule_make(f"rule {number}", "user_signup")
    contact = baker_recipes.contact.make(user_id=f"u{number}", email=f"u{number}@example.com")
    return baker_recipes.scheduled_send.make(
        rule=rule,
        contact=contact,
        triggered_at=NOW,
        dedupe_key=f"key-{number}",
        due_at=NOW,
        state=state,
        sending_started_at=NOW - timedelta(hours=1),
    )


def _later() -> datetime:
    return NOW + timedelta(days=1)


# One call per transition function, moving the given send if its state allows.
MOVE_CALLS: dict[str, Callable[[Send], int]] = {
    "sends_start": lambda s: lifecycle.sends_start(send_ids=[s.pk], now=NOW),
    "send_refuse": lambda s: lifecycle.send_refuse(send_id=s.pk, state=State.CANCELLED, reason="cooldown"),
    "sends_accept": lambda s: lifecycle.sends_accept(message_ids={s.pk: "msg"}, now=NOW),
    "send_record_ambiguous": lambda s: lifecycle.send_record_ambiguous(send_id=s.pk, error="timeout"),
    "send_retry": lambda s: lifecycle.send_retry(send_id=s.pk, reason="retrying", due_at=_later(), error="429"),
    "send_fail": lambda s: lifecycle.send_fail(send_id=s.pk, reason="refused", error="400"),
    "sends_cancel_on_exit": lambda s: lifecycle.sends_cancel_on_exit(sends=Send.objects.filter(pk=s.pk), reason="exit"),
    "sends_cancel_by_person": lambda s: lifecycle.sends_cancel_by_person(
        sends=Send.objects.filter(pk=s.pk), reason="by ann", now=NOW
    ),
    "sends_mark_stale": lambda s: lifecycle.sends_mark_stale(started_before=NOW),
    "sends_abandon": lambda s: lifecycle.sends_abandon(started_before=NOW, reason="no evidence", now=NOW),
    "send_settle": lambda s: lifecycle.send_settle(
        send_id=s.pk, reason="delivered", occurred_at=NOW, provider_message_id="msg", now=NOW
    ),
    "send_judge_not_accepted": lambda s: lifecycle.send_judge_not_accepted(send_id=s.pk, now=NOW),
}


def test_every_transition_function_is_exercised_here():
    assert set(MOVES) == set(MOVE_CALLS) | CREATIONS


@pytest.mark.django_db
@pytest.mark.parametrize("function", sorted(MOVE_CALLS))
def test_each_transition_moves_only_the_states_the_table_allows(function):
    move = MOVES[function]
    for number, state in enumerate(State):
        send = _send(state, number)
        moved = MOVE_CALLS[function](send)
        send.refresh_from_db()
        if state in move.sources:
            assert (moved, send.state in move.targets) == (1, True), f"{function} from {state}"
        else:
            assert (moved, send.state) == (0, state), f"{function} must refuse a {state} send"
        Send.objects.filter(pk=send.pk).delete()


@pytest.mark.django_db
def test_a_send_is_created_only_scheduled():
    rule = rule_make("welcome", "user_signup")
    contact = baker_recipes.contact.make(user_id="u1", email="u1@example.com")
    fields = {"rule": rule, "contact": contact, "triggered_at": NOW, "due_at": NOW}
    with pytest.raises(ValueError, match="a new send must be scheduled, not sent"):
        lifecycle.sends_insert(sends=[Send(**fields, dedupe_key="a", state=State.SENT)], returning=["pk"])
    with pytest.raises(ValueError, match="a new send must be scheduled, not sent"):
        lifecycle.resend_insert(**fields, dedupe_key="b", state=State.SENT)
    assert not Send.objects.exists()
    stored = lifecycle.sends_insert(sends=[Send(**fields, dedupe_key="a")], returning=["dedupe_key"])
    assert stored == [("a",)]
    assert lifecycle.resend_insert(**fields, dedupe_key="b").state == State.SCHEDULED


@pytest.mark.django_db
def test_the_send_time_refusal_cannot_claim_a_send_was_sent():
    send = _send(State.SCHEDULED, 1)
    with pytest.raises(ValueError, match="send_refuse cannot move a send to sent"):
        lifecycle.send_refuse(send_id=send.pk, state=State.SENT, reason="oops")
    send.refresh_from_db()
    assert send.state == State.SCHEDULED


def test_the_table_covers_every_state_and_each_of_its_transitions_has_a_function():
    assert set(TRANSITIONS) == {None, *State}
    made = {(s, t) for move in MOVES.values() for s, t in move.edges()}
    assert made == {(s, t) for s, targets in TRANSITIONS.items() for t in targets}


def test_a_function_making_a_transition_the_table_does_not_allow_cannot_be_defined():
    with pytest.raises(
        AssertionError, match=r"send_revive makes transitions TRANSITIONS does not allow: \['sent → scheduled'\]"
    ):

        @transition(State.SENT, to=(State.SCHEDULED,))
        def send_revive() -> int:
            """Never."""
            return 0

    assert "send_revive" not in MOVES


def test_the_readme_shows_the_table_the_code_enforces():
    assert transitions_markdown() in (ROOT / "README.md").read_text(), (
        "README.md's table of send transitions differs from campaigns.sending.transitions; paste:\n"
        + transitions_markdown()
    )
