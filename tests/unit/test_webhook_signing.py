"""Our Standard Webhooks signatures, verified by the reference library (`standardwebhooks` from
PyPI, https://github.com/standard-webhooks/standard-webhooks), and attacks on them: a forged
signature, another secret, a changed body, id or timestamp. Also the `whsec_` secrets, the
endpoint URL check, the retry schedule and the stored failure reason."""

from __future__ import annotations

import base64
import contextlib
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from dripcourse.domain import webhooks
from dripcourse.domain.webhooks import (
    RETRY_DELAYS,
    check_url,
    failure_reason,
    headers_for,
    new_secret,
    next_attempt,
    secret_key,
)
from dripcourse.errors import BadInput

AT = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)

secrets_ = st.binary(min_size=24, max_size=64).map(
    lambda key: "whsec_" + base64.b64encode(key).decode()
)
ids = st.from_regex(r"msg_[A-Za-z0-9]{1,40}", fullmatch=True)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def verified(secret: str, body: bytes, headers: dict[str, str], at: datetime) -> object:
    """The reference library's verdict, its clock set to `at` (it checks the timestamp against
    its own now, within five minutes)."""

    class Then(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return at

    with mock.patch("standardwebhooks.webhooks.datetime", Then):
        return Webhook(secret).verify(body, headers)


@given(secret=secrets_, message_id=ids, at=instants, body=st.binary(max_size=2000))
def test_the_reference_library_verifies_every_signature(
    secret: str, message_id: str, at: datetime, body: bytes
) -> None:
    headers = headers_for(secret, message_id, at, body)
    assert headers["webhook-signature"] == Webhook(secret).sign(message_id, at, body)
    # verify() parses JSON on success; a binary body is checked without parsing.
    with mock.patch("standardwebhooks.webhooks.json.loads", lambda data: data):
        assert verified(secret, body, headers, at) == body


@given(
    secret=secrets_,
    other=secrets_,
    message_id=ids,
    at=instants,
    body=st.binary(min_size=1, max_size=200),
    flip=st.integers(min_value=0),
)
def test_forgeries_fail(
    secret: str, other: str, message_id: str, at: datetime, body: bytes, flip: int
) -> None:
    headers = headers_for(secret, message_id, at, body)
    changed = bytearray(body)
    changed[flip % len(body)] ^= 0x01
    attempts = [
        (bytes(changed), headers),
        (body, headers | {"webhook-id": message_id + "x"}),
        (body, headers | {"webhook-timestamp": str(int(at.timestamp()) + 1)}),
    ]
    if other != secret:
        attempts.append((body, headers_for(other, message_id, at, body)))
    for data, forged in attempts:
        with pytest.raises(WebhookVerificationError):
            verified(secret, data, forged, at)


def test_a_signature_too_old_for_the_receiver_fails() -> None:
    secret = new_secret()
    body = b'{"type":"lesson.sent"}'
    headers = headers_for(secret, "msg_1", AT, body)
    with pytest.raises(WebhookVerificationError):
        verified(secret, body, headers, AT + timedelta(minutes=6))


def test_new_secrets_are_whsec_and_readable_by_the_library() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret_key(secret)) == 32
    assert Webhook(secret)._whsecret == secret_key(secret)


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "whsec_",
        "abc",
        "whsec_!!!!",
        "whsec_" + base64.b64encode(b"short").decode(),
        "whsec_" + base64.b64encode(b"x" * 65).decode(),
        "WHSEC_" + base64.b64encode(b"x" * 32).decode(),
    ],
)
def test_bad_secrets_are_refused(secret: str) -> None:
    with pytest.raises(BadInput):
        secret_key(secret)


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example/in", "http://127.0.0.1:8080/hook?x=1", "https://[::1]/h"],
)
def test_good_urls(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://hooks.example/in",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://user:pass@hooks.example/in",
        "https://token@hooks.example/in",
        "https:///no-host",
        "https://hooks.example/in#frag",
        "https://hooks.example/a b",
        "https://hooks.example/\r\nX-Injected: 1",
        "https://hooks.example:99999/",
        "https://" + "a" * 2000 + ".example/",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(BadInput):
        check_url(url)


@given(st.text(max_size=300))
def test_any_text_as_url_is_accepted_or_refused_never_crashes(url: str) -> None:
    with contextlib.suppress(BadInput):
        check_url(url)


def test_the_schedule_reaches_beyond_a_day_then_gives_up() -> None:
    waits, attempts, at = timedelta(0), 1, AT
    while (following := next_attempt(attempts, at)) is not None:
        waits += following - at
        at, attempts = following, attempts + 1
    assert attempts == len(RETRY_DELAYS) + 1 == 8
    assert waits > timedelta(days=1)


@given(status=st.none() | st.integers(100, 599), text=st.text(max_size=10_000))
def test_a_failure_reason_is_short_and_printable(status: int | None, text: str) -> None:
    reason = failure_reason(status, text)
    assert len(reason) <= webhooks.MAX_REASON
    assert all(" " <= ch <= "~" for ch in reason)


def test_forgotten_bodies_lose_the_address_only() -> None:
    event = webhooks.Event(
        webhooks.EventType.LESSON_SENT, 7, {"subscriber_id": 7, "email": "a@example.com"}
    )
    body = webhooks.body_of(event, AT)
    assert "a@example.com" in body
    erased = webhooks.without_address(body)
    assert "a@example.com" not in erased and '"subscriber_id":7' in erased
