"""SNS's signing certificates, fetched from AWS over https when the operator keeps none.

`SigningCertificates` is the `sns.CertificateSource` of `POST /hooks/ses`: the folder
`sns_cert_dir` first, when it is set and holds the file (offline deployments, and the tests), else
the SigningCertURL itself, fetched with httpx and kept in a small cache by URL, so that AWS's
rotation of its certificate needs nothing from the operator.

The URL was checked by `sns.verify` (https, an `sns.<region>.amazonaws.com` host, port 443) and is
checked again here before any request: nothing else is ever fetched. AWS is still a remote server
on the path of a stranger's request, so the fetch is bounded like `sending/webhooks`' POSTs: short
timeouts, no redirect followed, at most `MAX_CERT_BYTES` read, and the answer must be one PEM
certificate. A fetch that fails in any of these ways is `VerificationUnavailable`, a temporary
failure (the hook answers 503 and SNS retries the message); nothing failed is cached, so the retry
asks again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography import x509

from dripcourse.app.providers.sns import (
    MAX_CERT_BYTES,
    CertificateFolder,
    certificate_name,
    is_sns_url,
)
from dripcourse.errors import Unauthentic, VerificationUnavailable

TIMEOUT = httpx.Timeout(5.0, connect=3.0)
"""SNS waits 15 seconds for our answer by default; the fetch must leave room for the rest."""
CACHE_SIZE = 32
"""AWS signs with one certificate per region at a time, and rotates it rarely: a handful of URLs
in use at once. The bound only keeps forged messages naming many URLs from growing the cache."""
USER_AGENT = "dripcourse-sns-certificates"


@dataclass
class SigningCertificates:
    """The folder first (if any), then a cached fetch from AWS. Safe to share between the
    threads that handle requests; `transport` is httpx's default unless a test gives its own."""

    folder: Path | None = None
    transport: httpx.BaseTransport | None = None
    cache_size: int = CACHE_SIZE
    _cache: OrderedDict[str, x509.Certificate] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _client: httpx.Client | None = field(default=None, repr=False)

    def certificate(self, url: str) -> x509.Certificate:
        if not is_sns_url(url):
            raise Unauthentic(
                "the SigningCertURL is not https on an sns.<region>.amazonaws.com host"
            )
        name = certificate_name(url)
        if self.folder is not None:
            found = CertificateFolder(self.folder).find(url)
            if found is not None:
                return found
        with self._lock:
            cached = self._cache.get(url)
            if cached is not None:
                self._cache.move_to_end(url)
                return cached
        # Fetched outside the lock: two requests naming a new URL at once may both fetch it, which
        # is harmless, while one slow fetch must not hold up requests whose certificate is known.
        fetched = self._fetch(url, name)
        with self._lock:
            self._cache[url] = fetched
            self._cache.move_to_end(url)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return fetched

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _http(self) -> httpx.Client:
        """One client for the process, made at the first fetch (most processes never fetch)."""
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    transport=self.transport,
                    timeout=TIMEOUT,
                    follow_redirects=False,
                    headers={"user-agent": USER_AGENT},
                )
            return self._client

    def _fetch(self, url: str, name: str) -> x509.Certificate:
        try:
            with self._http().stream("GET", url) as answer:
                if answer.status_code != 200:
                    raise _unavailable(name, f"AWS answered {answer.status_code}")
                data = _read_at_most(answer, MAX_CERT_BYTES)
        except httpx.HTTPError as exc:
            raise _unavailable(name, type(exc).__name__) from None
        if data is None:
            raise _unavailable(name, f"the answer is larger than {MAX_CERT_BYTES} bytes")
        try:
            return x509.load_pem_x509_certificate(data)
        except ValueError:
            raise _unavailable(name, "the answer is not a PEM certificate") from None


def _read_at_most(answer: httpx.Response, limit: int) -> bytes | None:
    """The body, or None as soon as it proves longer than `limit` (the rest is never read)."""
    declared = answer.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    got = bytearray()
    for chunk in answer.iter_bytes():
        got += chunk
        if len(got) > limit:
            return None
    return bytes(got)


def _unavailable(name: str, why: str) -> VerificationUnavailable:
    return VerificationUnavailable(
        f"the signing certificate {name} could not be fetched ({why}); SNS will retry"
    )
