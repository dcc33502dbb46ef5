"""Every Prometheus metric of dripcourse, defined in this one module, and the small functions the
layers call to count.

`prometheus_client` decides at its import whether counts go to files shared by every process
(multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`) or stay in this process's memory. The command line
sets that variable from the settings (`folder.prepare`) before anything is counted, so the
metrics are built, and the library imported, on first use here and never at import time.

Names and labels follow the Prometheus conventions (`_total` for counters, base units in seconds);
every label takes few values (a course slug, an outcome, a kind), never an address or an id.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from dripcourse.errors import BadInput
from dripcourse.telemetry import folder

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram

log = logging.getLogger(__name__)

WEBHOOK_OUTCOMES = ("delivered", "retrying", "failed")
"""The outcomes a webhook delivery is counted under (`count_webhook_deliveries`)."""


@dataclass(frozen=True)
class Metrics:
    messages: Counter
    pass_duration: Histogram
    smtp_reply: Histogram
    signups: Counter
    confirmations: Counter
    bounces: Counter
    webhook_deliveries: Counter


_built: Metrics | None = None
_lock = threading.Lock()


def metrics() -> Metrics:
    """The metrics of this process, built (and prometheus_client imported) on first use."""
    global _built
    if _built is None:
        with _lock:
            if _built is None:
                _built = _build()
    return _built


def _build() -> Metrics:
    try:
        folder.ensure_current()  # the multiprocess folder, when set, must exist before the import
    except BadInput as exc:
        # Counting must never stop the mail: this process counts for itself alone.
        log.warning("%s; this process's counts will not reach /metrics", exc)
        os.environ.pop(folder.ENV, None)
    from prometheus_client import Counter, Histogram

    return Metrics(
        messages=Counter(
            "dripcourse_messages_total",
            "Messages handled by the dispatcher, by course and outcome (sent; pending: to be "
            "retried; failed; cancelled: unsubscribed or suppressed since the claim; taken-over: "
            "another worker's lease won).",
            ["course", "outcome"],
        ),
        pass_duration=Histogram(
            "dripcourse_pass_duration_seconds",
            "Duration of one dispatch pass, helpers included.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
        ),
        smtp_reply=Histogram(
            "dripcourse_smtp_reply_seconds",
            "Time from the end of a message's content to the SMTP server's reply to it "
            "(pipelined), or of the whole mail transaction (one command at a time).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        ),
        signups=Counter(
            "dripcourse_signups_total",
            "Sign-ups accepted (started, or waiting for their confirmation), by course.",
            ["course"],
        ),
        confirmations=Counter(
            "dripcourse_confirmations_total",
            "Enrolments started by their confirmation link, by course.",
            ["course"],
        ),
        bounces=Counter(
            "dripcourse_bounce_reports_total",
            "Bounces and complaints matched to a delivery, by kind (hard, soft, complaint).",
            ["kind"],
        ),
        webhook_deliveries=Counter(
            "dripcourse_webhook_deliveries_total",
            "Webhook deliveries, by outcome (delivered, retrying, failed).",
            ["outcome"],
        ),
    )


def record_message(course: str, outcome: str) -> None:
    metrics().messages.labels(course=course, outcome=outcome).inc()


def record_pass(seconds: float) -> None:
    metrics().pass_duration.observe(seconds)


def record_smtp_reply(seconds: float) -> None:
    metrics().smtp_reply.observe(seconds)


def count_webhook_deliveries(session: Session, outcomes: dict[str, int]) -> None:
    """Webhook delivery attempts that ended so, by outcome (`WEBHOOK_OUTCOMES`), counted when the
    transaction that records them commits."""
    unknown = set(outcomes) - set(WEBHOOK_OUTCOMES)
    if unknown:
        raise ValueError(f"unknown webhook outcome {unknown}; use one of {WEBHOOK_OUTCOMES}")

    def count() -> None:
        for outcome, number in outcomes.items():
            if number:
                metrics().webhook_deliveries.labels(outcome=outcome).inc(number)

    on_commit(session, count)


def count_signup(session: Session, course: str) -> None:
    on_commit(session, lambda: metrics().signups.labels(course=course).inc())


def count_confirmation(session: Session, course: str) -> None:
    on_commit(session, lambda: metrics().confirmations.labels(course=course).inc())


def count_bounce(session: Session, kind: str) -> None:
    on_commit(session, lambda: metrics().bounces.labels(kind=kind).inc())


_PENDING = "dripcourse.telemetry.pending"


def on_commit(session: Session, count: Callable[[], Any]) -> None:
    """Count when the session's transaction commits, and not at all if it rolls back: an
    operation that fails after the count (a later check, a lost database) changed nothing."""
    pending: list[Callable[[], Any]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        # Listened to for the life of the session (one unit of work): a listener cannot be
        # removed while the event runs it.
        event.listen(session, "after_commit", _flush)
        event.listen(session, "after_rollback", _forget)
    pending.append(count)


def _flush(session: Session) -> None:
    pending = session.info.get(_PENDING) or []
    session.info[_PENDING] = []
    for count in pending:
        count()


def _forget(session: Session) -> None:
    if session.info.get(_PENDING):
        session.info[_PENDING] = []
