"""Process and database faults: kill -9 of worker hosts (whole, main process, or one child) and a
PostgreSQL connection drop, at random moments, with the killed host restarted as a supervisor would.

Only processes this run started are signalled: each host runs in its own session, and a child is
chosen among the members of that session's process group and signalled through a pidfd opened
after checking its group, so a recycled pid can never be hit.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

from harness.processes import VENV_BIN, ManagedProcess, process_start

QCLUSTER_ARGV = [str(VENV_BIN / "python"), "manage.py", "qcluster"]


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgid) of a live process, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses; the fields after the last ')' do not.
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[2])


def group_members(pgid: int) -> dict[int, int]:
    """pid -> ppid of every live process in this process group."""
    members: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None and stat[1] == pgid:
            members[int(entry.name)] = stat[0]
    return members


def _kill_in_group(pid: int, pgid: int) -> bool:
    """SIGKILL `pid` if (still) a member of `pgid`; the pidfd pins the process we checked."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        stat = _stat(pid)
        if stat is None or stat[1] != pgid:
            return False
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


def socket_inode(local_port: int) -> str | None:
    """The inode of the IPv4 TCP socket bound to this local port on this machine, if any."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
            return fields[9]
    return None


def socket_owner(inode: str, pids: list[int]) -> int | None:
    """Which of these processes holds the socket with this inode open."""
    target = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(FileNotFoundError, OSError):
                    if str(fd.readlink()) == target:
                        return pid
    return None


class Host:
    """One worker host: `manage.py qcluster` (django-q2 cluster + dispatcher), restartable."""

    def __init__(self, name: str, *, env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.env = env
        self.log_dir = log_dir
        self.incarnation = 0
        self.process = self._start()

    def _start(self) -> ManagedProcess:
        self.incarnation += 1
        return process_start(f"{self.name}-{self.incarnation}", QCLUSTER_ARGV, env=self.env, log_dir=self.log_dir)

    @property
    def pgid(self) -> int:
        return self.process.popen.pid

    def restart(self) -> None:
        self.process.stop(timeout=0)
        self.process = self._start()

    def children(self) -> dict[int, str]:
        """The cluster's processes other than the main one, by role (django-q2's sentinel forks the rest)."""
        members = group_members(self.pgid)
        return {
            pid: "sentinel" if ppid == self.pgid else "worker/pusher/monitor"
            for pid, ppid in members.items()
            if pid != self.pgid
        }


@dataclass
class Kill:
    """One kill, and the sends queued but not yet claimed just after it (None: the look failed)."""

    at: float  # time.time(), comparable with the provider ledger's received_at
    kind: str
    target: str
    # Send id -> its attempts so far: the report tells a send that went out at its next attempt
    # from one the provider then refused for a while (its delay is the provider's, not recovery's).
    held: dict[str, int] | None


class ProcessChaos:
    """Kills hosts or their children at random moments and restarts hosts whose main process died.

    `held_sends` (send ids queued and not yet claimed) is asked right after every kill, so that the
    report can say how long the sends that may have been lost with the killed process took to go out.
    """

    def __init__(
        self,
        hosts: list[Host],
        *,
        every: tuple[float, float],
        seed: int,
        mid_call_rate: float = 0.0,
        held_sends: Callable[[], dict[str, int]] = dict,
    ) -> None:
        self.hosts = hosts
        self.held_sends = held_sends
        self.kills: list[Kill] = []
        self.every = every
        self.mid_call_rate = mid_call_rate
        self._last_mid_call = 0.0
        self.counts: Counter[str] = Counter()
        self.log: list[str] = []
        self._rng = random.Random(seed)
        self._mid_rng = random.Random(seed + 1)
        # The kill thread and the provider's request threads (on_accept) share the counts and the rng.
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ProcessChaos:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        next_kill = time.monotonic() + self._rng.uniform(*self.every)
        # Bounded by the stop event; each pass is a supervisor check, and now and then a kill.
        while not self._stop.wait(0.25):
            self.supervise()
            if time.monotonic() >= next_kill:
                self.kill_one()
                next_kill = time.monotonic() + self._rng.uniform(*self.every)

    def on_accept(self, client: tuple[str, int] | None) -> None:
        """The provider just accepted a message and has not answered yet: now and then, kill the
        worker waiting for that answer, the moment "never twice" is hardest to keep."""
        if client is None or self._stop.is_set():
            return
        with self._lock:
            if self._mid_rng.random() >= self.mid_call_rate or time.monotonic() - self._last_mid_call < 4.0:
                return
            self._last_mid_call = time.monotonic()
        inode = socket_inode(client[1])
        for host in self.hosts:
            members = group_members(host.pgid)
            pid = socket_owner(inode, sorted(members)) if inode else None
            if pid is not None and pid != host.pgid and _kill_in_group(pid, host.pgid):
                self._killed("kill -9 worker mid provider call (after acceptance)", f"{host.name} worker {pid}")
                return

    def _count(self, kind: str, target: str = "") -> None:
        with self._lock:
            self.counts[kind] += 1
            if target:
                self.log.append(f"{time.strftime('%X')} {kind}: {target}")

    def _killed(self, kind: str, target: str) -> None:
        at = time.time()
        self._count(kind, target)
        try:
            held: dict[str, int] | None = self.held_sends()
        except Exception:
            # The database may be down this very moment (a connection drop is injected too).
            held = None
        with self._lock:
            self.kills.append(Kill(at=at, kind=kind, target=target, held=held))

    def supervise(self) -> None:
        """Restart every host whose main process is gone (killed, or stopped after its sentinel died)."""
        for host in self.hosts:
            if not host.process.alive:
                host.restart()
                self._count("host restarts")

    def kill_one(self) -> None:
        host = self._rng.choice(self.hosts)
        roll = self._rng.random()
        if roll < 0.5:
            self._kill_child(host)
        elif roll < 0.75:
            self._kill_main(host)
        else:
            self._kill_host(host)

    def _kill_child(self, host: Host) -> None:
        children = host.children()
        if not children:
            return
        pid = self._rng.choice(sorted(children))
        if _kill_in_group(pid, host.pgid):
            self._killed(f"kill -9 {children[pid]}", f"{host.name} {children[pid]} {pid}")

    def _kill_main(self, host: Host) -> None:
        # Only the main process (the dispatcher dies with it): django-q2's sentinel does not watch
        # its parent, so the orphaned cluster goes on taking tasks until the host is reset.
        # The main process is not reaped before the group is killed, so its pid (the group id)
        # cannot be reused meanwhile.
        with contextlib.suppress(ProcessLookupError):
            os.kill(host.pgid, signal.SIGKILL)
        self._killed("kill -9 main", f"{host.name} main {host.pgid}")
        self._stop.wait(self._rng.uniform(0.2, 2.0))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(host.pgid, signal.SIGKILL)
        host.restart()
        self._count("host restarts")

    def _kill_host(self, host: Host) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(host.pgid, signal.SIGKILL)
        self._killed("kill -9 whole host", f"{host.name} whole host {host.pgid}")
        host.restart()
        self._count("host restarts")


def pg_connections_drop(*, admin_url: str, database: str) -> int:
    """Terminate every session on the run's database (what a failover or a restart does to clients)."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0
