"""The peer phase's verdicts (bench/peer.py): exactly-once by address, and CPU that short-lived processes used."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

from bench.peer import QUEUED, peer_verdict, tree_cpu

SENT, FAILED = 0, 1


def test_it_tells_once_twice_pending_and_lost_apart() -> None:
    addresses = {"peer-0@bench.example", "peer-1@bench.example", "peer-2@bench.example", "peer-3@bench.example"}
    delivered = Counter({"peer-0@bench.example": 1, "peer-1@bench.example": 2})
    rows = [
        ("peer-0@bench.example", SENT),
        ("peer-1@bench.example", SENT),
        ("peer-2@bench.example", QUEUED),
        ("peer-3@bench.example", FAILED),
    ]
    verdict = peer_verdict(addresses, delivered, rows)
    assert (verdict.queued, verdict.once, verdict.twice, verdict.pending) == (4, 1, 1, 1)
    assert verdict.lost == Counter({"failed": 1})
    assert verdict.line().endswith("1 still queued when the wait ended, 1 lost (failed: 1)")


def test_an_email_marked_sent_that_never_arrived_is_lost() -> None:
    verdict = peer_verdict({"peer-0@bench.example"}, Counter(), [("peer-0@bench.example", SENT)])
    assert (verdict.once, verdict.pending, verdict.lost) == (0, 0, Counter({"sent": 1}))


def test_the_cpu_of_a_child_that_has_exited_still_counts() -> None:
    # post_office forks a pool per batch; the sender's CPU must include pools already gone.
    before = tree_cpu(os.getpid())
    burn = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    after = tree_cpu(os.getpid())
    assert before is not None and after is not None
    assert after - before >= 0.5
