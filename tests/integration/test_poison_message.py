"""A poison message fails alone: an error at any step of building or sending one message of a
batch of 100 fails that delivery with its reason, and the other 99 arrive at a real SMTP server.

Nothing is left `sending` (a claimed message that is never recorded would wait for its lease and
then stop the next batch the same way), and a failure on our side never suppresses an address.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select, update

from dripcourse.app import subscriptions
from dripcourse.backends import load_backend
from dripcourse.backends.smtp import SMTPBackend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.mail import builder as messages
from dripcourse.mail.dkim import DkimSigner
from dripcourse.mail.rendering import CourseRenderer
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.store.db import Database
from dripcourse.store.models import Delivery, DeliveryStatus, Enrollment, Subscriber, Suppression

BATCH = 100
VICTIM = "p037@example.com"
VICTIM_NAME = "Poison Pill"
PEOPLE = [f"p{n:03d}@example.com" for n in range(BATCH)]
LESSON_ONE = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # 08:00 in Toronto


class Boom(Exception):
    """What no step expects."""


def enrol_everyone(database: Database, clock: FixedClock) -> None:
    with database.transaction() as session:
        for address in PEOPLE:
            subscriptions.subscribe(
                session,
                email=address,
                course_slug="runners",
                name=VICTIM_NAME if address == VICTIM else "Ada Lovelace",
                timezone="America/Toronto",
                confirmed=True,
                now=clock.now(),
            )


@pytest.fixture
def dkim_key(tmp_path: Path) -> Path:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    file = tmp_path / "dkim.pem"
    file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return file


@pytest.fixture
def batch_settings(settings: Settings, dkim_key: Path) -> Settings:
    return replace(
        settings,
        batch_size=BATCH,
        send_group=BATCH,
        dkim_key_file=dkim_key,
        dkim_selector="lessons",
        dkim_domain="northside-physio.example",
    )


def raise_for_victim(original: Callable[..., Any], concerns_victim: Callable[..., bool]) -> Any:
    def patched(*args: Any, **kwargs: Any) -> Any:
        if concerns_victim(*args, **kwargs):
            raise Boom("injected for the victim")
        return original(*args, **kwargs)

    return patched


def inject_at_render(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        CourseRenderer,
        "render",
        raise_for_victim(CourseRenderer.render, lambda self, key, who, links: who.email == VICTIM),
    )


def inject_at_click_tracking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(messages, "tracks_clicks", lambda settings: True)
    monkeypatch.setattr(
        messages,
        "track_links",
        raise_for_victim(
            messages.track_links, lambda signer, base, page, d: VICTIM_NAME.split()[0] in page
        ),
    )


def inject_at_compose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        messages,
        "compose",
        raise_for_victim(
            messages.compose, lambda envelope, *rest: envelope.recipient_email == VICTIM
        ),
    )


def inject_at_dkim_signing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        DkimSigner,
        "sign",
        raise_for_victim(DkimSigner.sign, lambda self, data: f"<{VICTIM}>".encode() in data),
    )


def inject_at_backend_send(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend that breaks its contract (raises instead of answering) for any group holding the
    victim: the dispatcher sends the messages again one by one, and only the victim's fails."""
    monkeypatch.setattr(
        SMTPBackend,
        "send",
        raise_for_victim(
            SMTPBackend.send, lambda self, batch: any(m.recipient == VICTIM for m in batch)
        ),
    )


STEPS = {
    "render": inject_at_render,
    "track_links": inject_at_click_tracking,
    "compose": inject_at_compose,
    "dkim_sign": inject_at_dkim_signing,
    "backend_send": inject_at_backend_send,
}


@pytest.mark.parametrize("step", list(STEPS))
def test_an_error_at_any_step_fails_that_message_alone(
    step: str,
    synced: Database,
    batch_settings: Settings,
    clock: FixedClock,
    smtpd: CapturingSMTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    enrol_everyone(synced, clock)
    STEPS[step](monkeypatch)
    clock.set(LESSON_ONE)
    dispatcher = Dispatcher(
        synced, batch_settings, load_backend(batch_settings.email_backend), clock
    )

    report = dispatcher.run_pass()

    arrived = sorted(address for m in smtpd.messages for address in m.rcpt_tos)
    assert arrived == sorted(set(PEOPLE) - {VICTIM})
    assert all(b"DKIM-Signature:" in m.data for m in smtpd.messages)
    assert (report.count("sent"), report.count("failed")) == (BATCH - 1, 1)
    with synced.read() as session:
        statuses = dict(
            session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
        )
        victim_error = session.scalar(
            select(Delivery.last_error)
            .join(Enrollment, Delivery.enrollment_id == Enrollment.id)
            .join(Subscriber, Enrollment.subscriber_id == Subscriber.id)
            .where(Subscriber.email == VICTIM)
        )
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    assert statuses == {DeliveryStatus.SENT: BATCH - 1, DeliveryStatus.FAILED: 1}
    assert victim_error is not None and "injected for the victim" in victim_error


def test_an_unsendable_address_from_older_data_fails_alone_and_tick_exits_zero(
    synced: Database, clock: FixedClock, smtpd: CapturingSMTPServer, cli: Any
) -> None:
    """Before addresses were kept in their ASCII form, `jörg@` could be stored: every pass then
    raised while building it, and the messages claimed with it were never sent."""
    enrol_everyone(synced, clock)
    with synced.transaction() as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.email == VICTIM)
            .values(email="jörg@example.com", email_key="jörg@example.com")  # as 0005 keys it
        )

    result = cli("tick", "--now", LESSON_ONE.isoformat())

    assert result.code == 0, result.err
    assert len({a for m in smtpd.messages for a in m.rcpt_tos}) == BATCH - 1
    with synced.read() as session:
        stuck = session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.status == DeliveryStatus.SENDING)
        )
        failed = session.scalars(
            select(Delivery.last_error).where(Delivery.status == DeliveryStatus.FAILED)
        ).all()
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    assert stuck == 0
    assert len(failed) == 1
    assert failed[0] is not None and "without SMTPUTF8" in failed[0]
    timeline = cli("timeline", "jörg@example.com")
    assert "failed" in timeline.out and "without SMTPUTF8" in timeline.out, timeline.out


def test_a_lesson_reaching_for_python_internals_for_one_reader_fails_that_delivery_alone(
    database: Database,
    courses_dir: Path,
    batch_settings: Settings,
    clock: FixedClock,
    smtpd: CapturingSMTPServer,
    tmp_path: Path,
) -> None:
    """Passing `courses check` (whose sample reader is Sam) does not make a lesson safe: this one
    only tries to run a command for the victim. The sandbox refuses it as a template error, which
    waits to be retried (the author can mend the lesson); the other 99 are sent."""
    ran = tmp_path / "the-command-ran"
    feet = courses_dir / "runners" / "01-feet.md"
    with feet.open("a", encoding="utf-8") as lesson:
        lesson.write(
            f'\n{{% if subscriber.name == "{VICTIM_NAME}" %}}'
            f"{{{{ cycler.__init__.__globals__.os.popen('touch {ran}').read() }}}}{{% endif %}}\n"
        )
    with database.transaction() as session:
        for source in load_sources(courses_dir):
            sync_course(session, source, clock.now())
    enrol_everyone(database, clock)
    clock.set(LESSON_ONE)
    dispatcher = Dispatcher(
        database, batch_settings, load_backend(batch_settings.email_backend), clock
    )

    dispatcher.run_pass()

    assert not ran.exists()
    arrived = sorted(address for m in smtpd.messages for address in m.rcpt_tos)
    assert arrived == sorted(set(PEOPLE) - {VICTIM})
    with database.read() as session:
        victim = session.execute(
            select(Delivery.status, Delivery.last_error)
            .join(Enrollment, Delivery.enrollment_id == Enrollment.id)
            .join(Subscriber, Enrollment.subscriber_id == Subscriber.id)
            .where(Subscriber.email == VICTIM)
        ).one()
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    assert victim.status not in (DeliveryStatus.SENT, DeliveryStatus.SENDING)
    assert victim.last_error is not None and "render failed" in victim.last_error
    assert "unsafe" in victim.last_error
