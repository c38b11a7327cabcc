"""P2's load: wrk (the Debian package), closed loop over keep-alive connections, as issue #15 measured.

wrk is C and spends far less CPU per request than the asyncio generator (bench.loadgen), so on a
2-core machine more of it is left to the server. Its Lua `request()` builds each POST: a Segment
track call whose messageId (and userId) is `m-<prefix>-<thread>-<n>`, new for every request, with
the write key as the HTTP Basic user name. `done()` prints one JSON line that `wrk_run` reads.
"""

from __future__ import annotations

import base64
import json
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import payloads

# Issue #15's measurement: wrk -t2 -c16.
THREADS = 2
CONNECTIONS = 16
_USER = "\x00USER\x00"

_SCRIPT = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  n = 0
  headers = {["Authorization"] = [==[@AUTH@]==], ["Content-Type"] = "application/json"}
end
function request()
  n = n + 1
  local user = [==[@PREFIX@-]==] .. tid .. "-" .. n
  return wrk.format("POST", [==[@PATH@]==], headers, @BODY@)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRK-JSON {"requests": %d, "duration_us": %d, "status": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int  # answered, any status
    non_2xx: int
    socket_errors: int  # connect, read, write, timeout
    elapsed: float
    p50_ms: float
    p99_ms: float
    rounds: int = 1  # >1: runs combined (combined()), latency the median p50 and the highest p99

    @classmethod
    def combined(cls, runs: list[WrkResult]) -> WrkResult:
        """Several runs of one side as one: counts and time added up."""
        return cls(
            requests=sum(r.requests for r in runs),
            non_2xx=sum(r.non_2xx for r in runs),
            socket_errors=sum(r.socket_errors for r in runs),
            elapsed=sum(r.elapsed for r in runs),
            p50_ms=statistics.median(r.p50_ms for r in runs),
            p99_ms=max(r.p99_ms for r in runs),
            rounds=sum(r.rounds for r in runs),
        )

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx

    @property
    def requests_per_second(self) -> float:
        """Requests answered 2xx per second."""
        return self.ok / self.elapsed if self.elapsed else 0.0

    def describe(self) -> str:
        return (
            f"{self.ok:,} answered 2xx in {self.elapsed:.1f} s, {self.non_2xx} other statuses, "
            f"{self.socket_errors} socket errors, latency p50 {self.p50_ms:.1f} ms p99 {self.p99_ms:.1f} ms"
            + (f" (of {self.rounds} runs: the median p50, the highest p99)" if self.rounds > 1 else "")
        )


def lua_script(*, path: str, write_key: str, prefix: str) -> str:
    """The wrk script posting track calls for new users `<prefix>-<thread>-<n>` to `path`."""
    template = json.dumps(payloads.track(_USER, payloads.QUIET_EVENT, with_email=False))
    # The body as Lua: the JSON's pieces in long brackets (no escaping needed), the user between them.
    body = " .. user .. ".join(f"[==[{piece}]==]" for piece in template.split(json.dumps(_USER)[1:-1]))
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    values = {"@AUTH@": auth, "@PREFIX@": prefix, "@PATH@": path, "@BODY@": body}
    script = _SCRIPT
    for token, value in values.items():
        script = script.replace(token, value)
    return script


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_run(base_url: str, *, path: str, write_key: str, prefix: str, seconds: float) -> WrkResult:
    """wrk -t2 -c16 -d<seconds> against base_url + path; raises when wrk fails or prints no summary."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as directory:
        script = Path(directory) / "track.lua"
        script.write_text(lua_script(path=path, write_key=write_key, prefix=prefix))
        argv = [
            "wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(script), base_url.rstrip("/") + path,
        ]  # fmt: skip
        completed = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("WRK-JSON ")), "")
    if completed.returncode != 0 or not line:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stdout[-500:]} {completed.stderr[-500:]}")
    summary = json.loads(line.removeprefix("WRK-JSON "))
    return WrkResult(
        requests=summary["requests"],
        non_2xx=summary["status"],
        socket_errors=sum(summary[k] for k in ("connect", "read", "write", "timeout")),
        elapsed=summary["duration_us"] / 1e6,
        p50_ms=summary["p50_us"] / 1e3,
        p99_ms=summary["p99_us"] / 1e3,
    )
