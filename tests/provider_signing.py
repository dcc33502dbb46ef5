"""The providers' side of the tests: our own keys and certificate, and payloads from the
documented examples in tests/web/data/providers/, signed as each provider signs them, offline."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from dripcourse.app.providers.sns import string_to_sign

DATA = Path(__file__).resolve().parent / "web" / "data" / "providers"
CERT_NAME = "SimpleNotificationService-test.pem"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-bounces"
MAILGUN_KEY = "key-mailgun-signing-0123456789abcdef"
POSTMARK = ("postmark-hook", "correct horse battery staple")


def fixture(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def certificate() -> x509.Certificate:
    """A self-signed certificate standing for SNS's, valid for all of 2026."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(rsa_key().public_key())
        .serial_number(1)
        .not_valid_before(datetime(2026, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2027, 1, 1, tzinfo=UTC))
        .sign(rsa_key(), hashes.SHA256())
    )


def write_certificate(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CERT_NAME).write_bytes(certificate().public_bytes(serialization.Encoding.PEM))
    return folder


def sign_sns(fields: dict[str, Any], key: rsa.RSAPrivateKey | None = None) -> dict[str, Any]:
    algorithm = hashes.SHA1() if fields["SignatureVersion"] == "1" else hashes.SHA256()
    signature = (key or rsa_key()).sign(string_to_sign(fields), padding.PKCS1v15(), algorithm)
    return fields | {"Signature": base64.b64encode(signature).decode()}


def ses_notification(
    content: dict[str, Any], timestamp: datetime, message_id: str = "", **changes: Any
) -> bytes:
    """An SNS Notification carrying an SES notification, signed by our stand-in for SNS."""
    fields = fixture("sns_notification.json") | {
        "Message": json.dumps(content),
        "Timestamp": timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if message_id:
        fields["MessageId"] = message_id
    return json.dumps(sign_sns(fields | changes)).encode()


def ses_bounce(ses_id: str, our_message_id: str, bounce_type: str = "Permanent") -> dict[str, Any]:
    content = fixture("ses_bounce_permanent.json")
    content["bounce"]["bounceType"] = bounce_type
    content["mail"]["messageId"] = ses_id
    content["mail"]["commonHeaders"]["messageId"] = our_message_id
    for header in content["mail"]["headers"]:
        if header["name"] == "Message-ID":
            header["value"] = our_message_id
    return content


def mailgun_payload(
    our_message_id: str, at: datetime, token: str = "a" * 50, key: str = MAILGUN_KEY
) -> bytes:
    payload = fixture("mailgun_failed_permanent.json")
    timestamp = str(int(at.timestamp()))
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    payload["signature"] = {"timestamp": timestamp, "token": token, "signature": signature}
    payload["event-data"]["message"]["headers"]["message-id"] = our_message_id.strip("<>")
    return json.dumps(payload).encode()


@cache
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sendgrid_public_key() -> str:
    """As SendGrid's settings show it: base64 of the DER SubjectPublicKeyInfo."""
    der = (
        sendgrid_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()


def sendgrid_headers(body: bytes, at: datetime) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    signature = sendgrid_key().sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


def sendgrid_events(our_message_id: str, provider_id: str = "14c5d75ce93.dfd.64b469") -> bytes:
    events = fixture("sendgrid_events.json")
    events[0]["smtp-id"] = our_message_id
    events[0]["sg_message_id"] = f"{provider_id}.filter0001.16648.5515E0B88.0"
    return json.dumps(events).encode()


def postmark_auth(user: str = POSTMARK[0], password: str = POSTMARK[1]) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}
