"""What the optional per-message work costs: DKIM signing and click tracking.

Builds every lesson of the example course for many sample readers, exactly as the dispatcher builds
them (`messages.sample_message`), and times, per message:

- building it with click tracking off (the default) and on;
- DKIM-signing the built bytes with a 2048-bit RSA key (`dripcourse.mail.dkim.DkimSigner`), and with
  dkimpy's own `dkim.sign`, for comparison (dkimpy computes RSA in pure Python).

    .venv/bin/python bench/message_costs.py [--messages 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dripcourse.backends.base import OutgoingMessage
from dripcourse.courses.catalog import load_sources, view_of_source
from dripcourse.mail.builder import CourseView, MessageBuilder, sample_message
from dripcourse.mail.dkim import DkimSigner
from dripcourse.mail.rendering import Recipient
from dripcourse.mail.tokens import Signer

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)


def per_message_us(work: Callable[[int], object], count: int, rounds: int = 5) -> float:
    """The median over `rounds` of the mean time of one call, in microseconds."""
    means = []
    for _ in range(rounds):
        start = time.perf_counter()
        for index in range(count):
            work(index)
        means.append((time.perf_counter() - start) / count * 1e6)
    return statistics.median(means)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    count = parser.parse_args().messages

    source = load_sources(ROOT / "emails")[0]
    builder = MessageBuilder(Signer("bench-secret"), "https://courses.example.org")
    plain = view_of_source(source)
    source.settings = {**source.settings, "tracking": {"clicks": True}}
    tracked = view_of_source(source)
    keys = [lesson.key for lesson in source.lessons]
    readers = [
        Recipient(f"reader{n}@example.com", f"Reader {n}", "Europe/Berlin") for n in range(count)
    ]

    def build(view: CourseView) -> Callable[[int], OutgoingMessage]:
        return lambda n: sample_message(builder, view, keys[n % len(keys)], readers[n], NOW)

    messages = [build(plain)(n).data for n in range(count)]

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with tempfile.NamedTemporaryFile(suffix=".pem") as key_file:
        key_file.write(pem)
        key_file.flush()
        signer = DkimSigner.from_key_file(Path(key_file.name), "bench", "example.org")
    headers = [b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe"]

    rows = [
        ("build a lesson message, click tracking off", per_message_us(build(plain), count)),
        ("build a lesson message, click tracking on", per_message_us(build(tracked), count)),
        (
            "DKIM-sign it (dripcourse.mail.dkim, OpenSSL RSA)",
            per_message_us(lambda n: signer.sign(messages[n]), count),
        ),
        (
            "DKIM-sign it (dkimpy's dkim.sign, for comparison)",
            per_message_us(
                lambda n: dkim.sign(
                    messages[n], b"bench", b"example.org", pem, include_headers=headers
                ),
                min(count, 200),
                rounds=3,
            ),
        ),
    ]
    average = sum(len(m) for m in messages) / len(messages)
    print(f"{count} messages of the runners course, {average / 1024:.1f} KB on average")
    print("| step | per message |\n|---|---:|")
    for name, micros in rows:
        print(f"| {name} | {micros:,.0f} µs |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
