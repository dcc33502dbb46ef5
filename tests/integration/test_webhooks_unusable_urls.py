"""Endpoint URLs that parse as URLs but that no HTTP client can send to (an empty DNS label, a
label over 63 characters, a hostname IDNA refuses, an invalid IPv6 literal): refused when added,
and one such endpoint already stored (before this check existed) fails alone as a failed attempt,
never stopping the pass that delivers every other endpoint's messages."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from webhook_receiver import Receiver

from dripcourse.app import webhooks
from dripcourse.domain.webhooks import Event, EventType, check_url, new_secret
from dripcourse.errors import BadInput
from dripcourse.sending.webhooks import deliver_due
from dripcourse.store.outbox import emit
from dripcourse.store.webhook_models import (
    WebhookEndpoint,
    WebhookMessage,
    WebhookOrigin,
    WebhookStatus,
)

UNUSABLE = [
    "http://a..b/hook",
    "http://" + "a" * 64 + ".example/hook",
    "http://\N{SNOWMAN}.example/hook",
    "http://xn--/hook",
    "http://exa\N{ZERO WIDTH SPACE}mple.com/hook",
    "http://[v1.x]/hook",
    "https://hooks.example/\ud800",
]


@pytest.mark.parametrize("url", UNUSABLE)
def test_a_url_no_client_can_send_to_is_refused(url: str) -> None:
    with pytest.raises(BadInput):
        check_url(url)


@pytest.mark.parametrize(
    "url", ["http://stra\N{LATIN SMALL LETTER SHARP S}e.example/in", "https://hooks.example./in"]
)
def test_international_and_rooted_names_are_still_accepted(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize("url", UNUSABLE[:3])
def test_a_stored_unusable_endpoint_fails_alone(synced, clock, url: str) -> None:
    with Receiver() as receiver:
        with synced.transaction() as session:
            # As a version without the check could have stored it.
            session.add(
                WebhookEndpoint(
                    url=url,
                    secret=new_secret(),
                    events="",
                    origin=WebhookOrigin.COMMAND,
                    created_at=clock.now(),
                )
            )
            session.flush()
            webhooks.add_endpoint(session, receiver.url, [], clock.now())
            emit(session, [Event(EventType.BOUNCE_RECEIVED, None, {"n": 1})], clock.now())
        report = deliver_due(synced, clock, "worker")
        assert (report.delivered, report.retrying) == (1, 1)
        assert len(receiver.accepted()) == 1
    with synced.read() as session:
        messages = list(session.scalars(select(WebhookMessage).order_by(WebhookMessage.id)))
    bad = next(m for m in messages if m.status != WebhookStatus.DELIVERED)
    assert bad.status == WebhookStatus.PENDING and bad.lease_owner is None
    assert bad.last_error is not None and bad.last_error.startswith("no answer: ")
