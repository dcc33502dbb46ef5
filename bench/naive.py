"""The baseline: what a user would write instead of dripcourse.

Renders a Jinja2 template per message, builds an `email.message.EmailMessage` with both parts, and
sends it with `smtplib.SMTP.send_message` on one connection. No database, no ledger.
"""

from __future__ import annotations

import smtplib
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import jinja2

TEMPLATE = jinja2.Template(
    (Path(__file__).parent / "naive_lesson.html").read_text(encoding="utf-8"), autoescape=True
)


def main(host: str, port: int, count: int) -> None:
    began = time.perf_counter()
    with smtplib.SMTP(host, port) as smtp:
        for number in range(count):
            name = f"Reader {number}"
            html = TEMPLATE.render(first_name=name, unsubscribe=f"https://x.example/u/{number}")
            message = EmailMessage()
            message["From"] = "Northside Physio <course@northside-physio.example>"
            message["To"] = f"{name} <reader{number}@example.com>"
            message["Subject"] = "Lesson 1: Feet first"
            message.set_content(f"Hi {name},\n\nYour lesson is in the HTML part.\n")
            message.add_alternative(html, subtype="html")
            smtp.send_message(message)
    elapsed = time.perf_counter() - began
    print(f"{count} {elapsed:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
