"""A provider's bounce comes back by webhook, not to our VERP mailbox: a lesson goes out through a
real SMTP server on loopback that answers as the provider's relay does (SES: `250 Ok <id>`), then
the provider's signed event for it arrives at `POST /hooks/<provider>` and suppresses the address.
A forged event changes nothing; a replayed one changes nothing either."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from provider_hooks import ADA, send_first_lesson, state, suppressed
from provider_signing import (
    MAILGUN_KEY,
    POSTMARK,
    TOPIC,
    fixture,
    mailgun_payload,
    postmark_auth,
    sendgrid_events,
    sendgrid_headers,
    sendgrid_public_key,
    ses_bounce,
    ses_notification,
    sign_sns,
    write_certificate,
)
from sqlalchemy import select

from dripcourse.app import subscriptions
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.sending.dispatch import Dispatcher
from dripcourse.store.db import Database
from dripcourse.store.models import Delivery, Enrollment, Suppression
from dripcourse.web.app import create_app

SES_ID = "0100018c1a2b3c4d-5e6f7a8b-9c0d-1e2f-3a4b-5c6d7e8f9a0b-000000"

# Only where the database itself is the guarantee do the tests also run on PostgreSQL: the
# suppression written, and the unique key (provider, event id) that turns a replay into a no-op.
# Verification, parsing and the HTTP answers do not depend on the database: SQLite only.


@pytest.fixture
def hook_settings(settings: Settings, tmp_path: Path) -> Settings:
    return replace(
        settings,
        sns_topic_arns=TOPIC,
        sns_cert_dir=write_certificate(tmp_path / "sns-certs"),
        mailgun_signing_key=MAILGUN_KEY,
        sendgrid_public_key=sendgrid_public_key(),
        postmark_user=POSTMARK[0],
        postmark_password=POSTMARK[1],
    )


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"fetched {request.url}: the certificate is in sns_cert_dir")


@pytest.fixture
def client(synced: Database, hook_settings: Settings, clock: FixedClock) -> TestClient:
    """The app with the certificate in `sns_cert_dir`: read from there, never fetched."""
    transport = httpx.MockTransport(no_network)
    return TestClient(create_app(hook_settings, synced, clock, sns_transport=transport))


@pytest.fixture
def sent(
    synced: Database, hook_settings: Settings, clock: FixedClock, smtpd: CapturingSMTPServer
) -> Delivery:
    """Ada's first lesson, accepted by a relay that names it as SES does; the delivery row."""
    return send_first_lesson(
        synced, hook_settings, clock, smtpd, f"250 Ok {SES_ID}", timezone="America/Toronto"
    )


@pytest.mark.both_databases
def test_an_ses_hard_bounce_suppresses_the_address(
    client: TestClient, sent: Delivery, synced: Database, clock: FixedClock
) -> None:
    assert sent.provider_id == SES_ID  # recorded at send time from the relay's `250 Ok <id>`
    body = ses_notification(ses_bounce(SES_ID, "<not-ours@example.com>"), clock.now())
    answer = client.post("/hooks/ses", content=body, headers={"Content-Type": "text/plain"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"outcomes": ["hard"]}
    assert suppressed(synced) == [ADA]
    with synced.read() as session:
        assert session.scalars(select(Enrollment.status)).all() != ["active"]
        assert session.scalars(select(Delivery.bounce)).one() == "hard"


def test_an_ses_bounce_found_by_our_message_id(
    client: TestClient, sent: Delivery, synced: Database, clock: FixedClock
) -> None:
    body = ses_notification(ses_bounce("other-id-1", sent.message_id), clock.now())
    assert client.post("/hooks/ses", content=body).json() == {"outcomes": ["hard"]}
    assert suppressed(synced) == [ADA]


def test_a_forged_ses_bounce_changes_nothing(
    client: TestClient, sent: Delivery, synced: Database, clock: FixedClock
) -> None:
    before = state(synced)
    genuine = json.loads(ses_notification(ses_bounce(SES_ID, sent.message_id), clock.now()))
    from cryptography.hazmat.primitives.asymmetric import rsa

    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forgeries = [
        # Signed by a key that is not the certificate's.
        json.dumps(sign_sns({**genuine, "Signature": ""}, impostor)),
        # The genuine signature over a different message.
        json.dumps(genuine | {"Message": genuine["Message"].replace("Permanent", "Permanent ")}),
        # A certificate from elsewhere.
        json.dumps(
            genuine | {"SigningCertURL": "https://evil.example/sns.us-east-1.amazonaws.com.pem"}
        ),
        # Another topic, genuinely signed.
        json.dumps(sign_sns(genuine | {"TopicArn": "arn:aws:sns:us-east-1:1:other"})),
    ]
    for forged in forgeries:
        answer = client.post("/hooks/ses", content=forged)
        assert answer.status_code == 403, answer.text
        assert "refused" in answer.json()["error"]
    assert state(synced) == before


@pytest.mark.both_databases
def test_a_replayed_ses_bounce_changes_nothing(
    client: TestClient, sent: Delivery, synced: Database, clock: FixedClock
) -> None:
    content = ses_bounce(SES_ID, sent.message_id, bounce_type="Transient")
    body = ses_notification(content, clock.now())
    assert client.post("/hooks/ses", content=body).json() == {"outcomes": ["soft"]}
    after_first = state(synced)
    assert client.post("/hooks/ses", content=body).json() == {"outcomes": ["duplicate"]}
    assert state(synced) == after_first
    # The same event after the replay window: refused outright.
    clock.set(clock.now() + timedelta(hours=2))
    assert client.post("/hooks/ses", content=body).status_code == 403
    assert state(synced) == after_first


def test_an_ses_complaint_suppresses(
    client: TestClient, sent: Delivery, synced: Database, clock: FixedClock
) -> None:
    content = fixture("ses_complaint.json")
    content["mail"]["messageId"] = SES_ID
    answer = client.post("/hooks/ses", content=ses_notification(content, clock.now()))
    assert answer.json() == {"outcomes": ["complaint"]}
    with synced.read() as session:
        assert session.scalars(select(Suppression.reason)).all() == ["complaint"]


def test_a_subscription_confirmation_is_logged_not_fetched(
    client: TestClient, synced: Database, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    fields = fixture("sns_subscription_confirmation.json") | {
        "Timestamp": clock.now().isoformat().replace("+00:00", "Z")
    }
    answer = client.post("/hooks/ses", content=json.dumps(sign_sns(fields)))
    assert answer.status_code == 200
    assert "ConfirmSubscription" in caplog.text


def test_a_verified_event_for_an_unknown_message_changes_nothing_but_its_record(
    client: TestClient, synced: Database, clock: FixedClock
) -> None:
    body = ses_notification(ses_bounce("nobody-1", "<nobody@example.com>"), clock.now())
    answer = client.post("/hooks/ses", content=body)
    assert answer.status_code == 200
    assert answer.json() == {"outcomes": ["unknown"]}
    assert suppressed(synced) == []


def test_mailgun_permanent_failure_suppresses_and_its_replay_does_nothing(
    client: TestClient, sent: Delivery, synced: Database, clock: FixedClock
) -> None:
    body = mailgun_payload(sent.message_id, clock.now())
    assert client.post("/hooks/mailgun", content=body).json() == {"outcomes": ["hard"]}
    assert suppressed(synced) == [ADA]
    after = state(synced)
    assert client.post("/hooks/mailgun", content=body).json() == {"outcomes": ["duplicate"]}
    forged = mailgun_payload(sent.message_id, clock.now(), token="b" * 50, key="not-the-key")
    assert client.post("/hooks/mailgun", content=forged).status_code == 403
    assert state(synced) == after


def test_sendgrid_batch_bounce_suppresses_and_a_forgery_does_nothing(
    client: TestClient, sent: Delivery, synced: Database, clock: FixedClock
) -> None:
    before = state(synced)
    body = sendgrid_events(sent.message_id)
    headers = sendgrid_headers(body, clock.now())
    tampered = body.replace(b"bounce", b"bounce", 1) + b" "
    assert client.post("/hooks/sendgrid", content=tampered, headers=headers).status_code == 403
    assert state(synced) == before
    answer = client.post("/hooks/sendgrid", content=body, headers=headers)
    assert answer.json() == {"outcomes": ["hard", "delivered"]}
    assert suppressed(synced) == [ADA]
    again = client.post("/hooks/sendgrid", content=body, headers=headers)
    assert again.json() == {"outcomes": ["duplicate", "duplicate"]}


def test_postmark_needs_its_credentials(
    client: TestClient,
    synced: Database,
    smtpd: CapturingSMTPServer,
    hook_settings: Settings,
    clock: FixedClock,
) -> None:
    message_id = "883953f4-6105-42a2-a16a-77a8eac79483"
    smtpd.accepted_reply = f"250 Ok: queued as {message_id}"
    with synced.transaction() as session:
        subscriptions.subscribe(
            session,
            email=ADA,
            course_slug="runners",
            name="Ada",
            timezone="UTC",
            confirmed=True,
            now=clock.now(),
        )
    clock.set(clock.now() + timedelta(days=1))
    Dispatcher(synced, hook_settings, load_backend(hook_settings.email_backend), clock).run_pass()
    body = json.dumps(fixture("postmark_bounce.json")).encode()
    before = state(synced)
    for headers in ({}, postmark_auth(password="guess"), {"Authorization": "Bearer x"}):
        assert client.post("/hooks/postmark", content=body, headers=headers).status_code == 403
    assert state(synced) == before
    answer = client.post("/hooks/postmark", content=body, headers=postmark_auth())
    assert answer.json() == {"outcomes": ["hard"]}
    assert suppressed(synced) == [ADA]


def test_hostile_bodies_are_4xx_json_and_change_nothing(
    client: TestClient, sent: Delivery, synced: Database
) -> None:
    before = state(synced)
    for provider in ("ses", "mailgun"):
        for body in (b"{", b"\xff\xfe", b"[]", b"null", b'{"Type": "Notification"}', b"[" * 5000):
            answer = client.post(f"/hooks/{provider}", content=body)
            assert 400 <= answer.status_code < 500, (provider, body[:20], answer.text)
            assert "error" in answer.json()
    too_big = b" " * (1024 * 1024 + 1)
    assert client.post("/hooks/ses", content=too_big).status_code == 413
    assert state(synced) == before


def test_a_provider_not_configured_is_404(
    synced: Database, settings: Settings, clock: FixedClock
) -> None:
    plain = TestClient(create_app(settings, synced, clock))
    for provider in ("ses", "postmark", "mailgun", "sendgrid", "nope"):
        answer = plain.post(f"/hooks/{provider}", content=b"{}")
        assert answer.status_code == 404
        assert "error" in answer.json()
