"""The benchmark's side of bench.sendgrid_fast: start it, and read what it accepted from its ledger."""

from __future__ import annotations

import re
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.sendgrid_fast import DEFAULT_API_KEY
from harness.processes import VENV_BIN, ManagedProcess, process_start, wait_until

_LISTENING = re.compile(r"listening on (http://\S+)")


@dataclass(frozen=True)
class Delivery:
    """One message the provider accepted."""

    received_at: float
    key: str
    send_id: str
    to: str


class Ledger:
    """Tails the provider's ledger file; `entries` holds every whole line read so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[Delivery] = []
        # Kept as lines arrive: the drain waits ask after every read.
        self.addresses: Counter[str] = Counter()
        # Deliveries per user prefix (p3, p5, ...: the part of the address before the first "-").
        self.prefixes: Counter[str] = Counter()
        self._offset = 0
        # P5 reads from a sampling thread while the main thread waits for the drain.
        self._lock = threading.Lock()

    def read(self) -> list[Delivery]:
        """Read what was appended since the last call; return the new deliveries."""
        with self._lock:
            return self._read()

    def _read(self) -> list[Delivery]:
        try:
            with self.path.open("rb") as ledger:
                ledger.seek(self._offset)
                chunk = ledger.read()
        except FileNotFoundError:
            return []
        # A line is whole once its newline is written; the rest is read next time.
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        new = []
        for line in complete.decode().splitlines():
            received_at, key, send_id, to = line.split("\t")
            new.append(Delivery(float(received_at), key, send_id, to))
        self.entries.extend(new)
        self.addresses.update(d.to for d in new)
        self.prefixes.update(d.to.split("-", 1)[0] for d in new)
        return new

    def first_received(self) -> dict[str, float]:
        """When each address's (first) email reached the provider."""
        first: dict[str, float] = {}
        for d in self.entries:
            if d.to not in first or d.received_at < first[d.to]:
                first[d.to] = d.received_at
        return first


@dataclass
class ProviderServer:
    process: ManagedProcess
    url: str
    ledger: Ledger
    api_key: str = DEFAULT_API_KEY

    @classmethod
    def start(cls, *, env: dict[str, str], log_dir: Path, latency: float) -> ProviderServer:
        ledger_path = log_dir / "sendgrid-ledger.tsv"
        argv = [str(VENV_BIN / "python"), "-m", "bench.sendgrid_fast", "--ledger", str(ledger_path)]
        argv += ["--latency", str(latency), "--api-key", DEFAULT_API_KEY]
        process = process_start("sendgrid", argv, env=env, log_dir=log_dir)
        try:
            url = wait_until(
                lambda: (m := _LISTENING.search(process.log())) and m.group(1),
                what="the SendGrid-compatible server to listen",
                processes=[process],
                timeout=20,
            )
        except BaseException:
            print(process.log(), file=sys.stderr)
            process.stop()
            raise
        return cls(process=process, url=url, ledger=Ledger(ledger_path))

    def stop(self) -> None:
        self.process.stop(timeout=5)
        self.ledger.read()
