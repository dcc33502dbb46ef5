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

HERE = Path(__file__).parent
# The same lesson dripcourse sends: its HTML and its text part, personalised the same way.
HTML = jinja2.Template((HERE / "naive_lesson.html").read_text(encoding="utf-8"), autoescape=True)
TEXT = jinja2.Template((HERE / "naive_lesson.txt").read_text(encoding="utf-8"))


def main(host: str, port: int, count: int) -> None:
    began = time.perf_counter()
    with smtplib.SMTP(host, port) as smtp:
        for number in range(count):
            name = f"Reader {number}"
            links = {
                "first_name": name,
                "unsubscribe": f"https://x.example/unsubscribe/{number}",
                "view_online": f"https://x.example/view/{number}",
            }
            message = EmailMessage()
            message["From"] = "Northside Physio <course@northside-physio.example>"
            message["To"] = f"{name} <reader{number}@example.com>"
            message["Subject"] = "Lesson 1: Feet first"
            message["List-Unsubscribe"] = f"<{links['unsubscribe']}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            message.set_content(TEXT.render(**links))
            message.add_alternative(HTML.render(**links), subtype="html")
            smtp.send_message(message)
    elapsed = time.perf_counter() - began
    print(f"{count} {elapsed:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
