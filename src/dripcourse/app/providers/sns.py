"""Amazon SNS messages posted to an HTTPS endpoint, verified as AWS documents it:
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html

- `SignatureVersion` 1 is SHA1withRSA, 2 is SHA256withRSA, over the string to sign: for each of
  the fields of its `Type` (in this order, `Subject` only when present) `name\\nvalue\\n`;
- the signing certificate's URL must be https on an `sns.<region>.amazonaws.com` host, port 443
  (or the China regions' `.amazonaws.com.cn`), checked before anything is read or fetched, so a
  forged URL cannot make us reach anywhere else; the certificate comes from a `CertificateSource`:
  `sns_certificates.SigningCertificates` (the folder `sns_cert_dir` first, if set, then AWS over
  https, cached), or `CertificateFolder` alone (the folder only, as the unit tests use);
- the `TopicArn` must be one of ours (checked before the certificate is sought, so a message for
  another topic costs no fetch; it counts only once the signature verifies), the certificate valid
  at `now`, and the `Timestamp` within `WINDOW` of `now` (SNS's retries of an HTTPS delivery end
  within an hour).

A `SubscriptionConfirmation` is verified the same way and then only reported: the route logs its
SubscribeURL for the operator to open (see docs/deliverability.md), rather than have a web process
fetch a URL that a message named.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from dripcourse.app.providers import load_json, within_window
from dripcourse.errors import BadInput, Unauthentic

WINDOW = timedelta(minutes=90)
"""SNS keeps a retried message's MessageId and Timestamp (the time it was published), and an HTTPS
subscription's retries end within 3,600 seconds of the first attempt, a hard limit
(https://docs.aws.amazon.com/sns/latest/dg/sns-message-delivery-retries.html); the last half
hour is for the first attempt's delay, jitter and throttling."""
_SNS_HOST = re.compile(r"sns\.[a-z0-9-]{1,40}\.amazonaws\.com(\.cn)?")
_CERT_NAME = re.compile(r"[A-Za-z0-9._-]{1,200}\.pem")
_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_FIELDS["UnsubscribeConfirmation"] = _FIELDS["SubscriptionConfirmation"]
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
MAX_CERT_BYTES = 16_384


@dataclass(frozen=True)
class SnsMessage:
    """A verified SNS message."""

    type: str
    message_id: str
    topic_arn: str
    message: str
    subscribe_url: str = ""


class CertificateSource(Protocol):
    """Where the signing certificate of a checked SigningCertURL (`is_sns_url`) comes from;
    raises `Unauthentic` (or `VerificationUnavailable`, a temporary failure) if it has none."""

    def certificate(self, url: str) -> x509.Certificate: ...


def certificate_name(url: str) -> str:
    """The last part of a SigningCertURL (`SimpleNotificationService-<hash>.pem`)."""
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    if not _CERT_NAME.fullmatch(name):
        raise Unauthentic("the SigningCertURL does not name a .pem file")
    return name


@dataclass(frozen=True)
class CertificateFolder:
    """The signing certificates the operator keeps in a folder, by the last part of their URL."""

    folder: Path

    def find(self, url: str) -> x509.Certificate | None:
        """The certificate for `url` in the folder, or None if the folder has no such file."""
        name = certificate_name(url)
        try:
            with (self.folder / name).open("rb") as file:
                data = file.read(MAX_CERT_BYTES + 1)
        except OSError:
            return None
        try:
            return x509.load_pem_x509_certificate(data[:MAX_CERT_BYTES])
        except ValueError:
            raise Unauthentic(f"the signing certificate {name} cannot be read") from None

    def certificate(self, url: str) -> x509.Certificate:
        found = self.find(url)
        if found is None:
            name = certificate_name(url)
            raise Unauthentic(
                f"no signing certificate {name} in sns_cert_dir (download it from {url})"
            )
        return found


def string_to_sign(fields: dict[str, Any]) -> bytes:
    """AWS's string to sign for the message's Type (`Subject` only when the message has one)."""
    names = _FIELDS.get(str(fields.get("Type")))
    if names is None:
        raise BadInput("not an SNS message of a known Type")
    lines = []
    for name in names:
        value = fields.get(name)
        if name == "Subject" and value is None:
            continue
        if not isinstance(value, str):
            raise BadInput(f"the SNS message has no {name}")
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode("utf-8")


def verify(
    body: bytes, now: datetime, topics: frozenset[str], certificates: CertificateSource
) -> SnsMessage:
    """The verified message in `body`; `Unauthentic` for anything not proven to come from SNS."""
    fields = load_json(body)
    if not isinstance(fields, dict):
        raise BadInput("an SNS message is a JSON object")
    signed = string_to_sign(fields)
    algorithm = _HASHES.get(str(fields.get("SignatureVersion")))
    if algorithm is None:
        raise Unauthentic("unknown SignatureVersion")
    url = fields.get("SigningCertURL")
    if not isinstance(url, str) or not is_sns_url(url):
        raise Unauthentic("the SigningCertURL is not https on an sns.<region>.amazonaws.com host")
    try:
        signature = base64.b64decode(str(fields.get("Signature", "")), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthentic("the Signature is not base64") from None
    if fields["TopicArn"] not in topics:
        raise Unauthentic("the TopicArn is not one of sns_topic_arns")
    certificate = certificates.certificate(url)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise Unauthentic("the signing certificate is not valid now")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Unauthentic("the signing certificate's key is not RSA")
    try:
        key.verify(signature, signed, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise Unauthentic("the signature does not verify") from None
    within_window(_instant(fields["Timestamp"]), now, WINDOW, "the SNS Timestamp")
    return SnsMessage(
        type=fields["Type"],
        message_id=fields["MessageId"],
        topic_arn=fields["TopicArn"],
        message=fields["Message"],
        subscribe_url=str(fields.get("SubscribeURL") or ""),
    )


def is_sns_url(url: str) -> bool:
    """https on an `sns.<region>.amazonaws.com(.cn)` host, port 443, no credentials in it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and port in (None, 443)
        and parts.username is None
        and _SNS_HOST.fullmatch(parts.hostname or "") is not None
    )


def _instant(value: str) -> datetime:
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput("the SNS Timestamp is not ISO 8601") from None
    if instant.tzinfo is None:
        raise BadInput("the SNS Timestamp has no zone")
    return instant
