"""DKIM signatures (RFC 6376): each outgoing message signed for our domain, so that a receiver can
check that it comes from us unchanged, and DMARC (RFC 7489) can pass on it.

Responsible for reading the private key once, when the signer is made from the settings
(`signer_for`; the command line does so at start-up, so that a missing or unusable key is a bad
setting, `BadInput`, never a failed delivery), and for one operation per message:
`DkimSigner.sign(message)` puts a DKIM-Signature header field in front of the finished bytes. The
message builder calls it last; nothing changes a message after that, and every backend sends,
writes or shows the bytes as they are, so the signature covers what goes on the wire.

Fixed choices:
- rsa-sha256 (RFC 8301 3.1: rsa-sha1 must not be used), with a key of at least 1024 bits (RFC 8301
  3.2; 2048 is the size to make). Ed25519 (RFC 8463) is not offered: receivers that do not know it
  treat such a mail as unsigned, so it is only worth having beside an RSA signature.
- The RSA operation is OpenSSL's, through `cryptography`: about 0.25 ms with a 2048-bit key, where
  dkimpy's pure-Python RSA takes 6 ms, which at our rate would make signing twenty times the cost of
  building the message. dkimpy is the independent verifier in the tests.
- relaxed/relaxed canonicalisation (3.4.2, 3.4.4): it survives the re-folding and whitespace
  changes relays make, which "simple" does not.
- h= names each field of `SIGNED_HEADERS` once for every copy in the message and once more, so that
  a copy added on the way breaks the signature (5.4.2, 8.15). RFC 8058 4 requires List-Unsubscribe
  and List-Unsubscribe-Post to be covered for one-click unsubscribing.
- No l= (body length) tag: with it anyone could append to the body (8.2). t= says when it was signed;
  no x=, as a message held up in a queue must not arrive with an expired signature.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dripcourse.config import Settings
from dripcourse.errors import BadInput

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

SIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
    "feedback-id",
)
"""The fields that identify the message and what it offers; trace and transport fields stay out."""

_SIGNED = tuple(name.encode("ascii") for name in SIGNED_HEADERS)
MIN_KEY_BITS = 1024
# RFC 6376 3.1: a selector, like the domain, is a dot-separated list of DNS labels.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_FOLD = b"\r\n\t"
_LINE = 72


def signer_for(settings: Settings) -> DkimSigner | None:
    """The signer the settings configure, its key read now; None when DKIM is not configured."""
    dkim = settings.dkim
    if dkim is None:
        return None
    return DkimSigner.from_key_file(dkim.key_file, dkim.selector, dkim.domain)


class DkimSigner:
    """Signs messages for `domain` with the key published at `selector._domainkey.domain`."""

    def __init__(self, key: rsa.RSAPrivateKey, selector: str, domain: str) -> None:
        # Imported here: cryptography is loaded only where DKIM is configured.
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        if not _DNS_NAME.fullmatch(selector):
            raise BadInput(
                f"DKIM selector {selector!r} is not a DNS name (letters, digits, '-', '.')"
            )
        if not (_DNS_NAME.fullmatch(domain) and "." in domain):
            raise BadInput(f"DKIM domain {domain!r} is not a domain name such as example.com")
        if key.key_size < MIN_KEY_BITS:
            raise BadInput(
                f"the DKIM key has {key.key_size} bits; receivers ignore signatures by keys under "
                f"{MIN_KEY_BITS} bits (RFC 8301): make one of 2048"
            )
        self.selector = selector
        self.domain = domain.lower()
        self._key = key
        self._padding = padding.PKCS1v15()
        self._hash = hashes.SHA256()
        # Everything before t= is the same for every message.
        self._head = (
            f"v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n\td={self.domain}; s={selector};"
        ).encode("ascii")

    @classmethod
    def from_key_file(cls, path: Path, selector: str, domain: str) -> DkimSigner:
        """The signer for the PEM private key in `path` (PKCS#1 or PKCS#8, not encrypted)."""
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BadInput(f"cannot read the DKIM key file {path}: {exc.strerror or exc}") from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError:  # what cryptography raises for a key that needs a password
            raise BadInput(
                f"the DKIM key file {path} is protected by a password; "
                "dripcourse needs it without one (`openssl pkey -in KEY -out PLAIN`)"
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            raise BadInput(
                f"the DKIM key file {path} does not hold a PEM private key "
                "(-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise BadInput(
                f"the DKIM key file {path} holds a {type(key).__name__.removeprefix('_')} key; "
                "only RSA keys are supported (rsa-sha256)"
            )
        return cls(key, selector, domain)

    def sign(self, message: bytes) -> bytes:
        """`message` (RFC 5322, CRLF line ends) with a DKIM-Signature field in front of it."""
        head, _, body = message.partition(b"\r\n\r\n")
        # RFC 6376 3.7: the body hash goes into bh=; the header hash covers the signed fields, in
        # h= order, and then this very field with an empty b= and without its final CRLF.
        body_hash = base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest())
        names, signed = _select(head)
        tags = _FOLD.join(
            (
                b"%s t=%d;" % (self._head, time.time()),
                b"bh=%s;" % body_hash,
                b"h=%s;" % names,
                b"b=",
            )
        )
        signed.append(b"dkim-signature:" + _relaxed_value(tags))
        signature = self._key.sign(b"".join(signed), self._padding, self._hash)
        # Whitespace inside b= is ignored by verifiers (3.5), so it may be folded freely.
        value = base64.b64encode(signature)
        folded = _FOLD.join(value[i : i + _LINE] for i in range(0, len(value), _LINE))
        return b"DKIM-Signature: " + tags + folded + b"\r\n" + message


def _select(head: bytes) -> tuple[bytes, list[bytes]]:
    """h= (folded) and the signed fields, canonicalised, in h= order (RFC 6376 5.4, 5.4.2)."""
    copies: dict[bytes, list[bytes]] = {}
    name = b""
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if name in copies:
                copies[name][-1] += line  # unfolding: the CRLF goes (3.4.2)
            continue
        raw_name, _, value = line.partition(b":")
        name = raw_name.rstrip(b" \t").lower()
        if name in _SIGNED:
            copies.setdefault(name, []).append(value)
    names: list[bytes] = []
    signed: list[bytes] = []
    for header in _SIGNED:
        found = copies.get(header, [])
        # A verifier takes the copies from the bottom up; the one more name than copies is the
        # field that is not there, which then may not be added.
        names += [header] * (len(found) + 1)
        signed += [b"%s:%s\r\n" % (header, _relaxed_value(v)) for v in reversed(found)]
    return _fold_names(names), signed


def _fold_names(names: list[bytes]) -> bytes:
    # RFC 6376 3.5: h= may have folding white space around its colons.
    lines: list[bytes] = []
    line = b""
    for name in names:
        if line and len(line) + 1 + len(name) > _LINE:
            lines.append(line + b":")
            line = name
        else:
            line = line + b":" + name if line else name
    lines.append(line)
    return _FOLD.join(lines)


def _relaxed_value(value: bytes) -> bytes:
    """A field's value canonicalised "relaxed" (RFC 6376 3.4.2): unfolded, runs of white space
    made one space, none at either end."""
    return _one_space(value.replace(b"\r\n", b"")).strip(b" ")


def _relaxed_body(body: bytes) -> bytes:
    """The body canonicalised "relaxed" (RFC 6376 3.4.4): no white space at line ends, runs of it
    made one space, empty lines at the end dropped; a body that is not empty ends in one CRLF."""
    # After _one_space() a line ends in one space at most.
    body = _one_space(body).replace(b" \r\n", b"\r\n")
    end = len(body)
    while body.endswith(b"\r\n", 0, end):
        end -= 2
    return body[:end] + b"\r\n" if end else b""


def _one_space(data: bytes) -> bytes:
    """Every run of spaces and tabs made one space."""
    # Halving runs with bytes.replace (C speed; runs of n need log2(n) rounds) is four times
    # faster on a lesson than a regular expression, which tries every one of its thousands of
    # single spaces.
    data = data.replace(b"\t", b" ")
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    return data
