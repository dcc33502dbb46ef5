"""SNS's signing certificate fetched from AWS (`sns_certificates.SigningCertificates`), with an
`httpx.MockTransport` standing in for AWS's certificate host. What AWS serves at a SigningCertURL is
one PEM X.509 certificate (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html,
step 3: "Get the X509 certificate that Amazon SNS used to sign the message"); the stand-in serves
the tests' own (`provider_signing.certificate`), at the URL of the documented example message
(tests/web/data/providers/sns_notification.json).

Every way the fetch can fail is a temporary failure (`VerificationUnavailable`, the hook's 503),
never cached; a URL on another host is never fetched at all."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from provider_signing import (
    TOPIC,
    certificate,
    fixture,
    ses_bounce,
    ses_notification,
    write_certificate,
)

from dripcourse.app.providers import sns
from dripcourse.app.providers.sns_certificates import SigningCertificates
from dripcourse.errors import Unauthentic, VerificationUnavailable

NOW = datetime(2026, 3, 3, 13, 0, 10, tzinfo=UTC)
URL = fixture("sns_notification.json")["SigningCertURL"]
PEM = certificate().public_bytes(serialization.Encoding.PEM)
Answer = Callable[[httpx.Request], httpx.Response]


class Aws:
    """The stand-in for AWS's certificate host: answers with `answer`, remembers each request."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def source(self, folder: Path | None = None, cache_size: int = 32) -> SigningCertificates:
        return SigningCertificates(folder, httpx.MockTransport(self._handle), cache_size)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


def serving(body: bytes = PEM, status: int = 200) -> Answer:
    return lambda request: httpx.Response(status, content=body)


def test_a_certificate_is_fetched_once_then_cached() -> None:
    aws = Aws(serving())
    source = aws.source()
    assert source.certificate(URL) == certificate()
    assert source.certificate(URL) == certificate()
    assert [(request.method, str(request.url)) for request in aws.requests] == [("GET", URL)]


def test_a_fetched_certificate_verifies_a_notification() -> None:
    aws = Aws(serving())
    body = ses_notification(ses_bounce("id-1", "<a@b.example>"), NOW)
    assert sns.verify(body, NOW, frozenset({TOPIC}), aws.source()).type == "Notification"


def _streamed_megabyte(read: list[int]) -> Answer:
    """A body with no Content-Length, 1 MB in 1 KB chunks, counting the chunks taken."""

    def chunks() -> Iterator[bytes]:
        for _ in range(1024):
            read.append(1)
            yield b"A" * 1024

    return lambda request: httpx.Response(200, content=chunks())


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def _refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(serving(PEM + b"\n" * 16_384), id="oversized"),
        pytest.param(serving(status=404), id="404"),
        pytest.param(serving(status=500), id="500"),
        pytest.param(serving(status=204), id="204"),
        pytest.param(serving(b"<html><body>Service Unavailable</body></html>"), id="not-pem"),
        pytest.param(
            serving(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"),
            id="pem-not-a-certificate",
        ),
        pytest.param(_timeout, id="timeout"),
        pytest.param(_refused, id="connect-error"),
    ],
)
def test_a_failed_fetch_is_a_temporary_refusal_and_is_not_cached(answer: Answer) -> None:
    aws = Aws(answer)
    source = aws.source()
    with pytest.raises(VerificationUnavailable, match="could not be fetched"):
        source.certificate(URL)
    # When AWS answers well again (SNS's retry), the certificate is fetched: nothing was kept.
    aws.answer = serving()
    assert source.certificate(URL) == certificate()
    assert len(aws.requests) == 2


def test_a_redirect_is_refused_not_followed() -> None:
    aws = Aws(
        lambda request: httpx.Response(301, headers={"Location": "https://evil.example/x.pem"})
    )
    with pytest.raises(VerificationUnavailable, match="301"):
        aws.source().certificate(URL)
    assert [str(request.url) for request in aws.requests] == [URL]


def test_an_endless_answer_is_read_no_further_than_the_limit() -> None:
    read: list[int] = []
    aws = Aws(_streamed_megabyte(read))
    with pytest.raises(VerificationUnavailable, match="larger than 16384 bytes"):
        aws.source().certificate(URL)
    assert len(read) <= 17  # 17 KB taken of the 1 MB offered


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-test.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://user:pw@sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-test.pem",
        "https://127.0.0.1/SimpleNotificationService-test.pem",
        "https://sns.us-east-1.amazonaws.com/not-a-certificate.txt",
        "https://s3.amazonaws.com/SimpleNotificationService-test.pem",
        "file:///etc/passwd",
    ],
)
def test_a_url_elsewhere_is_never_fetched(url: str) -> None:
    aws = Aws(serving())
    with pytest.raises(Unauthentic) as refused:
        aws.source().certificate(url)
    assert not isinstance(refused.value, VerificationUnavailable)
    # ... nor through a whole message naming it.
    body = ses_notification(ses_bounce("id-1", "<a@b.example>"), NOW, SigningCertURL=url)
    with pytest.raises(Unauthentic):
        sns.verify(body, NOW, frozenset({TOPIC}), aws.source())
    assert aws.requests == []


def test_a_message_for_another_topic_costs_no_fetch() -> None:
    aws = Aws(serving())
    body = ses_notification(ses_bounce("id-1", "<a@b.example>"), NOW)
    with pytest.raises(Unauthentic, match="TopicArn"):
        sns.verify(body, NOW, frozenset({"arn:aws:sns:us-east-1:1:other"}), aws.source())
    assert aws.requests == []


def test_the_folder_is_read_first(tmp_path: Path) -> None:
    aws = Aws(serving(status=500))
    assert aws.source(write_certificate(tmp_path / "certs")).certificate(URL) == certificate()
    assert aws.requests == []
    # A certificate the folder lacks (AWS rotated it) is fetched.
    aws.answer = serving()
    assert aws.source(tmp_path / "empty").certificate(URL) == certificate()
    assert len(aws.requests) == 1


def test_the_cache_is_bounded() -> None:
    aws = Aws(serving())
    source = aws.source(cache_size=2)
    urls = [URL.replace("-test.pem", f"-{n}.pem") for n in range(3)]
    for url in urls:
        source.certificate(url)
    source.certificate(urls[2])  # still kept
    source.certificate(urls[0])  # the oldest was let go: fetched again
    assert [str(request.url) for request in aws.requests] == [*urls, urls[0]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=20_000), st.sampled_from([200, 200, 302, 403, 503]))
def test_whatever_aws_answers_is_a_certificate_or_a_temporary_refusal(
    body: bytes, status: int
) -> None:
    aws = Aws(serving(body, status))
    with pytest.raises(VerificationUnavailable):
        aws.source().certificate(URL)


def test_the_request_asks_for_the_certificate_only() -> None:
    aws = Aws(serving())
    aws.source().certificate(URL)
    (request,) = aws.requests
    assert request.headers["user-agent"] == "dripcourse-sns-certificates"
    assert request.content == b""
    assert "authorization" not in request.headers
    assert "cookie" not in request.headers
