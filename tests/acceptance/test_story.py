"""The issue's story, as a new user lives it: real `dripcourse` processes, a real SMTP server, a real
SQLite file, and time moved with `tick --now`."""

from __future__ import annotations

import re
from email.message import EmailMessage

from dripcourse.devtools.smtpserver import CapturingSMTPServer

PEOPLE = {
    "ada@example.com": ("Ada Lovelace", "America/Toronto"),
    "bruno@example.com": ("Bruno Schulz", "Europe/Berlin"),
    "chiara@example.com": ("Chiara Rossi", "Australia/Sydney"),
}


def inbox(smtpd: CapturingSMTPServer, email: str) -> list[EmailMessage]:
    return [m.message for m in smtpd.messages if m.rcpt_tos == (email,)]


def subjects(smtpd: CapturingSMTPServer, email: str) -> list[str]:
    return [str(m["Subject"]) for m in inbox(smtpd, email)]


def test_three_people_three_zones_weekly_lessons_no_burst_no_copy(cli_process, smtpd):
    assert cli_process("db", "upgrade").code == 0
    synced = cli_process("courses", "sync")
    assert synced.code == 0, synced.err
    assert "runners: 10 added" in synced.out
    for email, (name, zone) in PEOPLE.items():
        done = cli_process(
            "subscribe",
            email,
            "--course",
            "runners",
            "--name",
            name,
            "--timezone",
            zone,
            "--confirmed",
            "--now",
            "2026-03-02T15:00:00Z",
        )
        assert done.code == 0, done.err
        assert "lesson 1 is due 2026-03-03 08:00 " + zone in done.out

    day1 = cli_process("tick", "--now", "2026-03-03T15:00:00Z")
    assert day1.code == 0, day1.err
    assert "3 sent" in day1.out
    for email in PEOPLE:
        assert subjects(smtpd, email) == ["Lesson 1: Feet first"]

    day8 = cli_process("tick", "--now", "2026-03-10T15:00:00Z")
    assert "3 sent" in day8.out
    for email in PEOPLE:
        assert [s.split(":")[0] for s in subjects(smtpd, email)] == ["Lesson 1", "Lesson 2"]

    # Bruno leaves; the scheduler then stays down for a month.
    left = cli_process("unsubscribe", "bruno@example.com", "--now", "2026-03-11T09:00:00Z")
    assert left.code == 0, left.err
    day40 = cli_process("tick", "--now", "2026-04-11T15:00:00Z")
    assert "2 sent" in day40.out, day40.out
    again = cli_process("tick", "--now", "2026-04-11T15:05:00Z")
    assert "0 sent" in again.out
    for email in ("ada@example.com", "chiara@example.com"):
        assert [s.split(":")[0] for s in subjects(smtpd, email)] == [
            "Lesson 1",
            "Lesson 2",
            "Lesson 3",
        ]
    assert len(inbox(smtpd, "bruno@example.com")) == 2

    ids = [m["Message-ID"] for m in (m.message for m in smtpd.messages)]
    assert len(ids) == len(set(ids)) == 8


def test_each_message_is_a_complete_personalised_list_email(cli_process, smtpd):
    cli_process("db", "upgrade")
    cli_process("courses", "sync")
    cli_process(
        "subscribe",
        "ada@example.com",
        "--course",
        "runners",
        "--name",
        "Ada Lovelace",
        "--timezone",
        "America/Toronto",
        "--confirmed",
        "--now",
        "2026-03-02T15:00:00Z",
    )
    cli_process("tick", "--now", "2026-03-03T15:00:00Z")
    [message] = inbox(smtpd, "ada@example.com")

    assert message.get_content_type() == "multipart/alternative"
    text_part, html_part = message.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    assert str(message["From"]) == "Northside Physio <course@northside-physio.example>"
    assert str(message["To"]) == "Ada Lovelace <ada@example.com>"
    assert message["Date"].datetime is not None
    assert re.fullmatch(r"<[0-9a-f]{32}\.runners@northside-physio\.example>", message["Message-ID"])
    assert message["List-Id"] == "Runners E-Course <runners.northside-physio.example>"
    targets = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    assert targets[0].startswith("https://courses.example.org/unsubscribe/")
    assert targets[1].startswith("mailto:")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    text, html = text_part.get_content(), html_part.get_content()
    assert "Hi Ada," in text and "Hi Ada," in html
    assert targets[0] in text and f'href="{targets[0]}"' in html
    assert "418 Birchmount Lane" in text and "418 Birchmount Lane" in html
    # Styles are inlined for mail clients that drop <style>.
    assert 'style="' in html and "<link" not in html
    assert "<style" not in html.split("@media")[0].split("<head>")[1] or "@media" in html
