"""Each provider's verification and reading, as pure functions: documented payloads, forged and
replayed ones, and hypothesis over hostile bodies (which may only ever be refused, never crash)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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
    write_certificate,
)

from dripcourse.app.bouncereports import Kind
from dripcourse.app.providers import mailgun, postmark, sendgrid, ses, sns
from dripcourse.domain.provider_ids import MAX_LENGTH, from_reply
from dripcourse.errors import BadInput, Unauthentic

NOW = datetime(2026, 3, 3, 13, 0, 10, tzinfo=UTC)
OURS = "<0a1b2c.runners@northside-physio.example>"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> sns.CertificateFolder:
    return sns.CertificateFolder(write_certificate(tmp_path_factory.mktemp("certs")))


def headers_of(given: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in given.items()}


# -- the provider's id in the relay's reply ---------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "found"),
    [
        (b"Ok 0100018c1a2b-5e6f-000000", "0100018c1a2b-5e6f-000000"),  # Amazon SES
        # SendGrid's relay, as its own docs repository quotes it:
        # https://github.com/sendgrid/docs/issues/2638
        (b"Ok: queued as nhIMmON9SFOPcT0ii4nt2A", "nhIMmON9SFOPcT0ii4nt2A"),
        # ... and an X-Message-Id that happens to have no digit is still its id.
        (b"Ok: queued as abcdefghIJKLmnop-RSTuv", "abcdefghIJKLmnop-RSTuv"),
        # SendGrid's documented success text (twilio.com/docs/sendgrid/for-developers/
        # sending-email/smtp-errors-and-troubleshooting): no id in it.
        (b"Queued mail for delivery", None),
        # Mailgun's relay: https://github.com/PHPMailer/PHPMailer/issues/1253
        (b"Great success", None),
        # Exim, as PHPMailer's smtp_transaction_id_patterns reads it.
        (b"OK id=1TkhHl-0006EV-R3", "1TkhHl-0006EV-R3"),
        (b"2.0.0 Ok: queued as", None),
        (b"2.0.0 Ok: queued as 4Xyz12", "4Xyz12"),  # Postfix-like relays
        (b"Ok: queued as <14c5d75ce93.dfd.64b469>", "14c5d75ce93.dfd.64b469"),
        (b"OK: queued", None),
        (b"2.0.0 Ok", None),
        (b"", None),
        (b"Ok " + b"7" * (MAX_LENGTH + 1), None),
        (b"Ok abc\x00123", None),
        ("Ok caf\u00e9123".encode(), None),
    ],
)
def test_provider_id_from_reply(reply: bytes, found: str | None) -> None:
    assert from_reply(reply) == found


@given(st.binary(max_size=600))
def test_provider_id_is_short_printable_ascii_or_nothing(reply: bytes) -> None:
    found = from_reply(reply)
    assert found is None or (len(found) <= MAX_LENGTH and found.isascii() and found.isprintable())
    assert found is None or " " not in found


# -- Amazon SES through SNS -------------------------------------------------------------------


def test_a_documented_ses_bounce_reads_as_a_hard_bounce(
    certificates: sns.CertificateFolder,
) -> None:
    body = ses_notification(ses_bounce("0100018c-aaaa-000000", OURS), NOW)
    message = sns.verify(body, NOW, frozenset({TOPIC}), certificates)
    event = ses.read_notification(message)
    assert event.report is not None
    assert event.report.kind == Kind.HARD
    assert event.report.message_ids == [OURS]
    assert event.report.provider_id == "0100018c-aaaa-000000"
    assert "5.1.1" in event.report.detail
    assert event.keys == ("sns:22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",)


@pytest.mark.parametrize(
    ("bounce_type", "kind"), [("Transient", Kind.SOFT), ("Undetermined", Kind.SOFT)]
)
def test_other_ses_bounce_types_are_soft(
    certificates: sns.CertificateFolder, bounce_type: str, kind: Kind
) -> None:
    body = ses_notification(ses_bounce("id-1", OURS, bounce_type), NOW)
    event = ses.read_notification(sns.verify(body, NOW, frozenset({TOPIC}), certificates))
    assert event.report is not None and event.report.kind == kind


def test_signature_version_1_is_sha1(certificates: sns.CertificateFolder) -> None:
    body = ses_notification(ses_bounce("id-1", OURS), NOW, SignatureVersion="1")
    assert sns.verify(body, NOW, frozenset({TOPIC}), certificates).type == "Notification"
    # Version 1's signature does not pass as version 2.
    fields = json.loads(body) | {"SignatureVersion": "2"}
    with pytest.raises(Unauthentic):
        sns.verify(json.dumps(fields).encode(), NOW, frozenset({TOPIC}), certificates)


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-test.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com/../../etc/passwd",
        "https://s3.amazonaws.com/SimpleNotificationService-test.pem",
    ],
)
def test_a_certificate_from_elsewhere_is_refused(
    certificates: sns.CertificateFolder, url: str
) -> None:
    body = ses_notification(ses_bounce("id-1", OURS), NOW, SigningCertURL=url)
    with pytest.raises(Unauthentic):
        sns.verify(body, NOW, frozenset({TOPIC}), certificates)


def test_the_replay_window(certificates: sns.CertificateFolder) -> None:
    body = ses_notification(ses_bounce("id-1", OURS), NOW)
    topics = frozenset({TOPIC})
    sns.verify(body, NOW + sns.WINDOW - timedelta(seconds=1), topics, certificates)
    with pytest.raises(Unauthentic, match="replay"):
        sns.verify(body, NOW + sns.WINDOW + timedelta(seconds=11), topics, certificates)
    with pytest.raises(Unauthentic, match="ahead"):
        sns.verify(body, NOW - timedelta(hours=1), topics, certificates)


def test_a_certificate_out_of_its_validity_is_refused(certificates: sns.CertificateFolder) -> None:
    later = datetime(2027, 6, 1, tzinfo=UTC)
    body = ses_notification(ses_bounce("id-1", OURS), later)
    with pytest.raises(Unauthentic, match="not valid"):
        sns.verify(body, later, frozenset({TOPIC}), certificates)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_hostile_sns_bodies_are_refused_not_crashes(body: bytes) -> None:
    folder = sns.CertificateFolder(Path("/nonexistent"))
    with pytest.raises((BadInput, Unauthentic)):
        sns.verify(body, NOW, frozenset({TOPIC}), folder)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_any_ses_content_reads_without_crashing(content: object) -> None:
    message = sns.SnsMessage("Notification", "m-1", TOPIC, json.dumps(content))
    event = ses.read_notification(message)
    assert event.keys == ("sns:m-1",)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["notificationType", "bounce", "mail", "complaint"]), json_values
    )
)
def test_ses_shaped_content_reads_without_crashing(content: dict[str, object]) -> None:
    ses.read_notification(sns.SnsMessage("Notification", "m-1", TOPIC, json.dumps(content)))


# -- Mailgun ----------------------------------------------------------------------------------


def test_mailgun_documented_failure() -> None:
    payload = mailgun.verify(mailgun_payload(OURS, NOW), MAILGUN_KEY, NOW)
    event = mailgun.read_event(payload)
    assert event.report is not None and event.report.kind == Kind.HARD
    assert event.report.message_ids == [OURS]
    assert event.keys == ("token:" + "a" * 50, "event:G9Bn5sl1TC6nu79C8C0bwg")


def test_mailgun_forged_and_stale() -> None:
    with pytest.raises(Unauthentic):
        mailgun.verify(mailgun_payload(OURS, NOW, key="other"), MAILGUN_KEY, NOW)
    with pytest.raises(Unauthentic, match="replay"):
        mailgun.verify(mailgun_payload(OURS, NOW), MAILGUN_KEY, NOW + timedelta(hours=10))


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_mailgun_any_event_data_reads_without_crashing(data: object) -> None:
    mailgun.read_event({"signature": {"token": "t"}, "event-data": data})


# -- SendGrid ---------------------------------------------------------------------------------


def test_sendgrid_documented_batch() -> None:
    body = sendgrid_events(OURS)
    key = sendgrid.public_key(sendgrid_public_key())
    events = sendgrid.verify(body, headers_of(sendgrid_headers(body, NOW)), key, NOW)
    first, second = (sendgrid.read_event(each) for each in events)
    assert first.report is not None and first.report.kind == Kind.HARD
    assert first.report.provider_id == "14c5d75ce93.dfd.64b469"
    assert second.report is None and second.ignored == "delivered"


@pytest.mark.parametrize(
    "sg_message_id",
    [
        # The Event Webhook reference's form, and the form of events posted today (as captured
        # in https://github.com/discourse/discourse/commit/fbe5a9c71096dde8d7d59a0b2bec932b22c38a05).
        "nhIMmON9SFOPcT0ii4nt2A.filter0001.16648.5515E0B88.0",
        "nhIMmON9SFOPcT0ii4nt2A.recvd-5f54b5d587-pczjm-1-67BADEEA-6.0",
    ],
)
def test_sendgrid_names_the_id_its_relay_answered(sg_message_id: str) -> None:
    answered = from_reply("Ok: queued as nhIMmON9SFOPcT0ii4nt2A")
    event = {"event": "bounce", "type": "bounce", "sg_event_id": "e1"}
    report = sendgrid.read_event(event | {"sg_message_id": sg_message_id}).report
    assert report is not None and report.provider_id == answered


def test_sendgrid_forged() -> None:
    body = sendgrid_events(OURS)
    key = sendgrid.public_key(sendgrid_public_key())
    headers = headers_of(sendgrid_headers(body, NOW))
    with pytest.raises(Unauthentic):
        sendgrid.verify(body + b" ", headers, key, NOW)
    with pytest.raises(Unauthentic):
        sendgrid.verify(body, headers | {sendgrid.TIMESTAMP: "1"}, key, NOW)
    with pytest.raises(Unauthentic):
        sendgrid.verify(body, {}, key, NOW)
    with pytest.raises(Unauthentic, match="replay"):
        sendgrid.verify(body, headers, key, NOW + timedelta(days=2))
    with pytest.raises(BadInput):
        sendgrid.public_key("not a key")


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_sendgrid_one_bad_event_fails_alone(event: object) -> None:
    read = sendgrid.read_event(event)
    assert read.keys


# -- Postmark ---------------------------------------------------------------------------------


def test_postmark_documented_records() -> None:
    postmark.verify(headers_of(postmark_auth()), *POSTMARK)
    bounce = postmark.read(json.dumps(fixture("postmark_bounce.json")).encode())
    assert bounce.report is not None and bounce.report.kind == Kind.HARD
    assert bounce.report.provider_id == "883953f4-6105-42a2-a16a-77a8eac79483"
    complaint = postmark.read(json.dumps(fixture("postmark_spam_complaint.json")).encode())
    assert complaint.report is not None and complaint.report.kind == Kind.COMPLAINT
    assert bounce.keys != complaint.keys


@pytest.mark.parametrize(
    "headers",
    [{}, postmark_auth(password="x"), postmark_auth(user="x"), {"Authorization": "Basic !!"}],
)
def test_postmark_wrong_credentials(headers: dict[str, str]) -> None:
    with pytest.raises(Unauthentic):
        postmark.verify(headers_of(headers), *POSTMARK)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_postmark_any_record_reads_or_is_bad_input(record: object) -> None:
    try:
        postmark.read(json.dumps(record).encode())
    except BadInput:
        assert not isinstance(record, dict)


# -- the recipient each provider names (the last resort of `bounces.apply_report`) -------------


def _reports_of_documented_payloads() -> dict[str, object]:
    sendgrid_batch = json.loads(sendgrid_events(OURS))
    mailgun_data = json.loads(mailgun_payload(OURS, NOW))
    return {
        "ses-bounce": ses.read_notification(
            sns.SnsMessage("Notification", "m-1", TOPIC, json.dumps(ses_bounce("id", OURS)))
        ).report,
        "ses-complaint": ses.read_notification(
            sns.SnsMessage("Notification", "m-2", TOPIC, json.dumps(fixture("ses_complaint.json")))
        ).report,
        "postmark": postmark.read(json.dumps(fixture("postmark_bounce.json")).encode()).report,
        "mailgun": mailgun.read_event(mailgun_data).report,
        "sendgrid": sendgrid.read_event(sendgrid_batch[0]).report,
    }


def test_each_provider_names_the_recipient_of_its_documented_payload() -> None:
    for name, report in _reports_of_documented_payloads().items():
        assert getattr(report, "recipient", None) == "ada@example.com", name


@pytest.mark.parametrize(
    ("given_address", "read"),
    [
        ("Ada@Example.COM", "Ada@example.com"),  # the domain as addresses are kept
        ("  ada@example.com ", "ada@example.com"),
        ("ada@example.com\r\nBcc: eve@example.com", None),
        ("not an address", None),
        ("", None),
        (42, None),
        (["ada@example.com"], None),
        (None, None),
    ],
)
def test_a_recipient_is_a_valid_address_or_none(given_address: object, read: str | None) -> None:
    record = fixture("postmark_bounce.json") | {"Email": given_address}
    report = postmark.read(json.dumps(record).encode()).report
    assert report is not None and report.recipient == read
