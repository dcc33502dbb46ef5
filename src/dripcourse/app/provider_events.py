"""`POST /hooks/<provider>`'s operation: verify the request, read its events, apply each once.

Which providers answer is the settings' choice: one with no setting is `NotFound` (the route's
404), so a hook nobody configured looks like no hook at all. The request is verified first, whole
(`Unauthentic`, the route's 403: nothing is written); then each event is applied in a savepoint of
its own, so one that fails (or collides with the same event arriving at once) fails alone.

An event applies only if every one of its keys is new in `provider_events`; a retry or a replay of
a verified event is a `duplicate` that changes nothing, answered 2xx so that the provider stops
retrying. A verified event naming no delivery of ours is `unknown`, also a 2xx. A bounce or a
complaint goes through `bounces.apply_report`, the very function that applies the mailbox's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dripcourse.app.bounces import BounceReport, apply_report
from dripcourse.app.providers import AHEAD, Event, mailgun, postmark, sendgrid, ses, sns
from dripcourse.app.providers.sns_certificates import SigningCertificates
from dripcourse.config import Settings
from dripcourse.errors import NotFound
from dripcourse.store.provider_events import ProviderEvent

log = logging.getLogger(__name__)

PROVIDERS = ("ses", "postmark", "mailgun", "sendgrid")

KEPT_FOR: timedelta = max(sns.WINDOW, mailgun.WINDOW, sendgrid.WINDOW) + AHEAD
"""How long `provider_events` must remember an event: past the longest replay window (and the
clock skew allowed ahead), a repeat of it is refused by its signed timestamp anyway. Postmark signs
no timestamp; its retries end long before this (docs/deliverability.md)."""


@dataclass
class HookAnswer:
    """What became of a request's events, in order, and a SubscribeURL to show the operator."""

    outcomes: list[str] = field(default_factory=list)
    subscribe_url: str = ""


def configured(name: str, settings: Settings) -> bool:
    return {
        "ses": bool(settings.sns_topics),
        "postmark": bool(settings.postmark_user and settings.postmark_password),
        "mailgun": bool(settings.mailgun_signing_key),
        "sendgrid": bool(settings.sendgrid_public_key),
    }.get(name, False)


def read_request(
    name: str,
    body: bytes,
    headers: Mapping[str, str],
    now: datetime,
    settings: Settings,
    certificates: sns.CertificateSource | None = None,
) -> tuple[list[Event], str]:
    """The verified events of one request, and a SubscribeURL (SNS) if it asks for one; no I/O
    but finding an SNS signing certificate (`certificates`, the app's cached source; without it,
    one made for this request). `headers` have lower-case names."""
    if not configured(name, settings):
        raise NotFound(f"no provider hook {name!r} is configured here")
    if name == "ses":
        source = certificates or SigningCertificates(settings.sns_cert_dir)
        message = sns.verify(body, now, settings.sns_topics, source)
        if message.type == "Notification":
            return [ses.read_notification(message)], ""
        if message.type == "SubscriptionConfirmation":
            return [], message.subscribe_url
        return [], ""
    if name == "postmark":
        postmark.verify(headers, settings.postmark_user, settings.postmark_password)
        return [postmark.read(body)], ""
    if name == "mailgun":
        payload = mailgun.verify(body, settings.mailgun_signing_key, now)
        return [mailgun.read_event(payload)], ""
    key = sendgrid.public_key(settings.sendgrid_public_key)
    return [sendgrid.read_event(each) for each in sendgrid.verify(body, headers, key, now)], ""


def apply_events(
    session: Session, provider: str, events: list[Event], now: datetime, settings: Settings
) -> HookAnswer:
    """Apply each event once, each in a savepoint; the caller's transaction commits them all."""
    answer = HookAnswer()
    counts = BounceReport()
    for event in events:
        try:
            with session.begin_nested():
                outcome = _apply_one(session, provider, event, now, settings, counts)
        except IntegrityError:
            outcome = "duplicate"  # the same event, arriving at the same moment, won
        answer.outcomes.append(outcome)
    return answer


def _apply_one(
    session: Session,
    provider: str,
    event: Event,
    now: datetime,
    settings: Settings,
    counts: BounceReport,
) -> str:
    keys = [key[:255] for key in event.keys]
    seen = session.scalar(
        select(ProviderEvent.id)
        .where(ProviderEvent.provider == provider, ProviderEvent.event_id.in_(keys))
        .limit(1)
    )
    if seen is not None:
        return "duplicate"
    if event.report is None:
        outcome = event.ignored or "ignored"
    else:
        outcome = apply_report(session, event.report, now, settings.soft_bounce_limit, counts)
    for key in keys:
        session.add(
            ProviderEvent(provider=provider, event_id=key, outcome=outcome, received_at=now)
        )
    session.flush()
    return outcome


def forget_old_events(session: Session, now: datetime) -> int:
    """Delete the `provider_events` rows older than `KEPT_FOR`; returns how many (housekeeping)."""
    result = session.execute(
        delete(ProviderEvent).where(ProviderEvent.received_at < now - KEPT_FOR)
    )
    return int(getattr(result, "rowcount", 0) or 0)
