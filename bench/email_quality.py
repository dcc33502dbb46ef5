"""Prints the table of docs/email-quality.md: every shipped lesson, its SpamAssassin score and sizes.

Each lesson is built by `sample_message` for the same sample subscriber as tests/email/, so the
bytes scored and measured are the bytes a subscriber gets. Run from the repository root:

    .venv/bin/python bench/email_quality.py
"""

from __future__ import annotations

import argparse
import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from dripcourse.courses.catalog import load_sources, view_of_source
from dripcourse.devtools.spamcheck import spam_report
from dripcourse.mail.builder import MessageBuilder, sample_message
from dripcourse.mail.rendering import Recipient
from dripcourse.mail.tokens import Signer

ROOT = Path(__file__).resolve().parents[1]
SUBSCRIBER = Recipient(
    email="ada.lovelace@example.com", name="Ada Lovelace", timezone="Europe/London"
)
BASE_URL = "https://courses.northside-physio.example"


def html_size(data: bytes) -> int:
    """Bytes of the decoded HTML part: what Gmail counts against its 102 KB clipping limit."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return len(payload)


def rows(courses_dir: Path) -> list[str]:
    builder = MessageBuilder(Signer("email-quality-table"), BASE_URL)
    now = datetime.now(UTC).replace(microsecond=0)
    lines = [
        "| lesson | subject | SpamAssassin | HTML part | whole message |",
        "|---|---|---:|---:|---:|",
    ]
    for source in load_sources(courses_dir):
        view = view_of_source(source)
        for lesson in source.lessons:
            data = sample_message(builder, view, lesson.key, SUBSCRIBER, now).data
            report = spam_report(data)
            # + 0.0: SpamAssassin writes an untouched score as -0.0.
            score = "not installed" if report is None else f"{report.score + 0.0:.1f}"
            fired = [rule.name for rule in report.scoring()] if report else []
            if fired:
                score += f" ({', '.join(fired)})"
            html = html_size(data)
            lines.append(
                f"| `{source.slug}/{lesson.key}` | {lesson.subject} | {score} "
                f"| {html:,} B ({html / 1024:.1f} KB) | {len(data):,} B ({len(data) / 1024:.1f} KB) |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--courses", type=Path, default=ROOT / "emails")
    print("\n".join(rows(parser.parse_args().courses)))


if __name__ == "__main__":
    main()
