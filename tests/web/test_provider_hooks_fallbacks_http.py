"""`POST /hooks/<provider>` when what a provider's event names is not at hand:

- SES through SNS with no certificate folder: the signing certificate is fetched from AWS (an
  `httpx.MockTransport` stands in for it, serving the tests' certificate), once; a fetch that
  fails is a 503 that changes nothing, so that SNS's retry of the same message succeeds;
- an event whose ids match no delivery (Postmark's relay may not say its MessageID) is applied to
  the latest delivery sent to the address the event names, within 30 days; an address we never
  sent to, or not lately, stays `unknown` and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from provider_hooks import ADA, send_first_lesson, state, suppressed
from provider_signing import (
    POSTMARK,
    TOPIC,
    certificate,
    fixture,
    postmark_auth,
    ses_bounce,
    ses_notification,
)
from sqlalchemy import func, select

from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.store.db import Database
from dripcourse.store.models import Delivery
from dripcourse.store.provider_events import ProviderEvent
from dripcourse.web.app import create_app

PEM = certificate().public_bytes(Encoding.PEM)


class Aws:
    """AWS's certificate host: answers with `answer`, counts requests."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answer: Callable[[httpx.Request], httpx.Response] = lambda _: httpx.Response(
            200, content=PEM
        )

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    """SES on with its topic alone (no sns_cert_dir), and Postmark."""
    return replace(
        settings,
        sns_topic_arns=TOPIC,
        postmark_user=POSTMARK[0],
        postmark_password=POSTMARK[1],
    )


@pytest.fixture
def aws() -> Aws:
    return Aws()


@pytest.fixture
def client(synced: Database, hook_settings: Settings, clock: FixedClock, aws: Aws) -> TestClient:
    return TestClient(create_app(hook_settings, synced, clock, sns_transport=aws.transport()))


def postmark_bounce(**changes: Any) -> bytes:
    return json.dumps(fixture("postmark_bounce.json") | changes).encode()


# -- SES with the signing certificate fetched -----------------------------------------------------


def test_ses_needs_no_certificate_folder_and_fetches_once(
    client: TestClient,
    synced: Database,
    hook_settings: Settings,
    clock: FixedClock,
    smtpd: CapturingSMTPServer,
    aws: Aws,
) -> None:
    ses_id = "0100018c1a2b3c4d-aaaa-000000"
    sent = send_first_lesson(synced, hook_settings, clock, smtpd, f"250 Ok {ses_id}")
    soft = ses_notification(ses_bounce(ses_id, sent.message_id, "Transient"), clock.now(), "m-1")
    hard = ses_notification(ses_bounce(ses_id, sent.message_id), clock.now(), "m-2")
    assert client.post("/hooks/ses", content=soft).json() == {"outcomes": ["soft"]}
    assert client.post("/hooks/ses", content=hard).json() == {"outcomes": ["hard"]}
    assert suppressed(synced) == [ADA]
    assert len(aws.requests) == 1  # the second message's certificate came from the cache


@pytest.mark.parametrize(
    "failure",
    [
        lambda _: httpx.Response(500),
        lambda _: httpx.Response(302, headers={"Location": "https://evil.example/c.pem"}),
        lambda _: httpx.Response(200, content=b"x" * 20_000),
        lambda _: httpx.Response(200, content=b"<html>captive portal</html>"),
        lambda request: (_ for _ in ()).throw(httpx.ConnectTimeout("slow", request=request)),
    ],
    ids=["500", "redirect", "oversized", "not-pem", "timeout"],
)
def test_a_certificate_that_cannot_be_fetched_is_503_and_the_retry_applies(
    client: TestClient,
    synced: Database,
    hook_settings: Settings,
    clock: FixedClock,
    smtpd: CapturingSMTPServer,
    aws: Aws,
    failure: Callable[[httpx.Request], httpx.Response],
) -> None:
    ses_id = "0100018c1a2b3c4d-bbbb-000000"
    sent = send_first_lesson(synced, hook_settings, clock, smtpd, f"250 Ok {ses_id}")
    body = ses_notification(ses_bounce(ses_id, sent.message_id), clock.now())
    before = state(synced, events=False)
    aws.answer = failure
    answer = client.post("/hooks/ses", content=body)
    assert answer.status_code == 503, answer.text
    assert "could not be fetched" in answer.json()["error"]
    assert state(synced, events=False) == before
    with synced.read() as session:
        assert session.scalar(select(func.count()).select_from(ProviderEvent)) == 0
    # SNS sends the same message again; AWS answers this time.
    aws.answer = Aws().answer
    assert client.post("/hooks/ses", content=body).json() == {"outcomes": ["hard"]}
    assert suppressed(synced) == [ADA]


def test_a_forged_certificate_url_is_403_and_never_fetched(
    client: TestClient, synced: Database, clock: FixedClock, aws: Aws
) -> None:
    for url in (
        "https://evil.example/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com:444/SimpleNotificationService-test.pem",
    ):
        body = ses_notification(ses_bounce("x", "<x@example.com>"), clock.now(), SigningCertURL=url)
        assert client.post("/hooks/ses", content=body).status_code == 403
    assert aws.requests == []


# -- the recipient's address, as a last resort ----------------------------------------------------


@pytest.mark.both_databases
def test_a_postmark_hard_bounce_with_an_unknown_message_id_suppresses_by_address(
    client: TestClient,
    synced: Database,
    hook_settings: Settings,
    clock: FixedClock,
    smtpd: CapturingSMTPServer,
) -> None:
    sent = send_first_lesson(synced, hook_settings, clock, smtpd, "250 2.0.0 Ok")
    assert sent.provider_id is None  # the relay named no id
    clock.set(clock.now() + timedelta(days=29))
    body = postmark_bounce(
        MessageID="11111111-2222-3333-4444-555555555555", Email="ADA@Example.com"
    )
    answer = client.post("/hooks/postmark", content=body, headers=postmark_auth())
    assert answer.json() == {"outcomes": ["hard"]}
    assert suppressed(synced) == [ADA]
    with synced.read() as session:
        assert session.scalars(select(Delivery.bounce)).one() == "hard"


def test_an_address_we_never_sent_to_stays_unknown(
    client: TestClient,
    synced: Database,
    hook_settings: Settings,
    clock: FixedClock,
    smtpd: CapturingSMTPServer,
) -> None:
    send_first_lesson(synced, hook_settings, clock, smtpd, "250 2.0.0 Ok")
    before = state(synced, events=False)
    emails = ["grace@example.com", "not an address", "", "ada@example.com\r\nBcc: x@y.z", 7, None]
    for number, email in enumerate(emails):
        body = postmark_bounce(ID=number, MessageID="nope", Email=email)
        answer = client.post("/hooks/postmark", content=body, headers=postmark_auth())
        assert answer.json() == {"outcomes": ["unknown"]}, email
    assert state(synced, events=False) == before


def test_an_address_not_sent_to_in_30_days_stays_unknown(
    client: TestClient,
    synced: Database,
    hook_settings: Settings,
    clock: FixedClock,
    smtpd: CapturingSMTPServer,
) -> None:
    send_first_lesson(synced, hook_settings, clock, smtpd, "250 2.0.0 Ok")
    clock.set(clock.now() + timedelta(days=31))  # and nothing sent to Ada since
    before = state(synced, events=False)
    answer = client.post("/hooks/postmark", content=postmark_bounce(), headers=postmark_auth())
    assert answer.json() == {"outcomes": ["unknown"]}
    assert state(synced, events=False) == before
