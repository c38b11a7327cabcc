"""P5 and P6: sustained end to end (ingest → match → send) at 1,000 events/s for 5 minutes.

An open loop posts /v1/batch requests (50 events each, 20 a second) on a fixed schedule; by
default every event triggers one email through the no-delay rule (`--p5-triggering` lowers the
share; the rest name no rule). A sampler thread records, every 2 s, the events acknowledged,
the emails delivered, and the backlog in the rows: unprocessed events + due scheduled sends +
sends in flight. The steady window leaves out the first 30 s (warm-up); over it the backlog's
least-squares slope decides "growing" (see bench.stats.backlog_growing). After the load stops,
the drain time is how long until the last acknowledged event's email arrived.

P6 is the peak of the summed RSS of each process tree (web: gunicorn master and workers;
worker: qcluster and everything it forks) sampled every 0.5 s during P5 by bench.monitor.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from bench import payloads
from bench.context import Row, Run
from bench.database import pipeline_counts
from bench.deploy import Deployment
from bench.loadgen import Sent, Target, open_loop, run_async
from bench.monitor import Mark
from bench.stats import backlog_growing, latency_summary
from bench.verify import check, drain_wait

MB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the load started
    acked: int  # events acknowledged so far
    delivered: int  # P5 emails at the provider so far
    unprocessed: int
    due: int
    sending: int

    @property
    def backlog(self) -> int:
        return self.unprocessed + self.due + self.sending


@dataclass
class Sampler:
    url: str
    every: float
    delivered: Callable[[], int]
    acked: int = 0
    samples: list[Sample] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            while True:
                counts = pipeline_counts(connection)
                self.samples.append(Sample(time.monotonic() - self.started, self.acked, self.delivered(), *counts))
                if self._stop.wait(self.every):
                    return

    def on_answer(self, sent: Sent) -> None:
        if sent.status == 200:
            self.acked += sent.tag[1]

    def stop(self) -> None:
        self._stop.set()


def p5_sustained(run: Run, deployment: Deployment) -> None:
    profile, url = run.profile, deployment.env["DATABASE_URL"]
    run.say(f"P5: {profile.p5_rate:,.0f} events/s for {profile.p5_seconds:.0f} s")
    target = Target.from_url(deployment.base_url, run.write_key)
    ledger = run.provider.ledger

    def delivered() -> int:
        ledger.read()
        return ledger.prefixes["p5"]

    sampler = Sampler(url=url, every=profile.p5_sample_every, delivered=delivered)
    bodies = (
        ((emailed, profile.p5_batch), body)
        for emailed, body in payloads.mixed_batches("p5", size=profile.p5_batch, triggering=profile.p5_triggering)
    )
    count = int(profile.p5_rate * profile.p5_seconds / profile.p5_batch)
    start = run.monitor.mark()
    thread = threading.Thread(target=sampler.run, name="p5-sampler", daemon=True)
    thread.start()
    result = run_async(
        open_loop(
            target,
            "/v1/batch",
            bodies,
            rate=profile.p5_rate / profile.p5_batch,
            count=count,
            items_per_request=profile.p5_batch,
            on_answer=sampler.on_answer,
        )
    )
    load_end = run.monitor.mark()
    load_seconds = time.monotonic() - sampler.started
    for sent in result.sent:
        run.attempted.update(payloads.email_of(u) for u in sent.tag[0])
    acked = {u: s.answered for s in result.accepted for u in s.tag[0]}
    waited = drain_wait(ledger, acked, timeout=profile.p5_drain, label="P5 drain")
    sampler.stop()
    thread.join(timeout=10)
    end = run.monitor.mark()
    run.cpu_record("P5 load", start, load_end)
    run.cpu_record("P5 drain", load_end, end)
    run.queries_detail("P5", start, load_end)
    run.timeline = sampler.samples
    # Events acknowledged per second from the first request's due time to the last answer: the
    # generator's own schedule is the offered rate, this is what the system took in.
    answered = [s.answered for s in result.accepted]
    span = max(answered) - min(s.due for s in result.sent) if answered else 0.0
    ingested = len(answered) * profile.p5_batch / span if span else 0.0
    _p5_report(run, ingested, acked, sampler.samples, load_seconds, waited)
    _p6_report(run, start, load_end)
    first = ledger.first_received()
    latencies = [first[a] - t for u, t in acked.items() if (a := payloads.email_of(u)) in first]
    run.detail(f"P5: accepted → provider received during sustained load: {latency_summary(latencies, len(acked))}")
    run.checks.append(check("P5", url=url, ledger=ledger, users=acked))
    run.done.update({"P5", "P6"})


def _p5_report(
    run: Run, ingested: float, acked: dict[str, float], samples: list[Sample], load_seconds: float, waited: float
) -> None:
    profile = run.profile
    steady = [s for s in samples if profile.p5_warmup <= s.t <= load_seconds]
    if len(steady) < 2:
        steady = [s for s in samples if s.t <= load_seconds][-2:]
    first, last = (steady[0], steady[-1]) if steady else (Sample(0, 0, 0, 0, 0, 0),) * 2
    span = max(last.t - first.t, 1e-9)
    delivered_rate = (last.delivered - first.delivered) / span
    growing, slope, allowed = backlog_growing([(s.t, s.backlog) for s in steady], rate=profile.p5_rate)
    drained = all(payloads.email_of(u) in run.provider.ledger.addresses for u in acked)
    drain = f"drained {waited:.1f} s after the load stopped" if drained else f"not drained within {waited:.0f} s"
    verdict = "growing" if growing else "not growing"
    met = ingested >= 0.99 * 1000 and not growing
    run.rows.append(
        Row(
            id="P5",
            measure=f"sustained end to end for {profile.p5_seconds / 60:.3g} min at {profile.p5_rate:,.0f} "
            f"events/s offered ({profile.p5_triggering:.0%} trigger an email)",
            value=f"ingested {ingested:,.0f} events/s, delivered {delivered_rate:,.0f} emails/s; backlog "
            f"{first.backlog:,} → {last.backlog:,} ({slope:+,.1f}/s: {verdict}); {drain}{run.noise('P5 load')}",
            target=">= 1,000 events/s, backlog not growing",
            met=("yes" if met else "**no**") if profile.p5_rate >= 1000 else f"n/a ({profile.p5_rate:,.0f}/s offered)",
        )
    )
    run.detail(
        f"P5: steady window {first.t:.0f}-{last.t:.0f} s; 'not growing' = fitted growth over the window "
        f"<= {allowed:,.0f} events (one second of offered input), fitted {slope * span:+,.0f}; at the end "
        f"{last.unprocessed:,} unprocessed events, {last.due:,} due sends, {last.sending:,} in flight"
    )


def _p6_report(run: Run, start: Mark, end: Mark) -> None:
    peak = run.monitor.rss_peak(start, end)
    run.rows.append(
        Row(
            id="P6",
            measure="peak memory of web and worker during P5 (summed RSS of each process tree)",
            value=f"web {peak['web'] / MB:,.0f} MB, worker {peak['worker'] / MB:,.0f} MB",
            target="reported",
        )
    )
    run.detail(
        f"P6: summed RSS counts pages shared after fork once per process, so it overstates; PostgreSQL's "
        f"backends peaked at {peak['postgres'] / MB:,.0f} MB summed RSS (shared buffers counted in each), "
        f"the SendGrid server at {peak['provider'] / MB:,.0f} MB, the generator at {peak['generator'] / MB:,.0f} MB"
    )


def sustained_phase(run: Run) -> None:
    if not (run.wants("P5") or run.wants("P6")):
        return
    with run.deployment("sustained") as deployment:
        p5_sustained(run, deployment)
