"""The test send as an operation (`app.lessons.send_test`), the one every shell calls: the lesson as a
subscriber gets it, marked [Test], mailed to one address through the configured backend, recorded
nowhere; a copy the server refuses is bad input that says why."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dripcourse.app import lessons
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.errors import BadInput
from dripcourse.store.db import Database
from dripcourse.store.models import Delivery


def test_a_test_send_mails_the_lesson_marked_and_says_which_it_was(
    synced: Database, settings: Settings, smtpd: CapturingSMTPServer, clock: FixedClock
) -> None:
    sent = lessons.send_test(
        synced, settings, "runners", "ankles", "Author@Example.com", name="Ada", now=clock.now()
    )

    assert sent == lessons.SentTestCopy("runners", 2, "ankles", "Author@example.com")
    (message,) = smtpd.messages
    assert message.rcpt_tos == ("Author@example.com",)
    assert str(message.message["Subject"]).startswith("[Test] Lesson 2: ")
    text = message.message.get_body(("plain",))
    assert text is not None and "Hi Ada," in text.get_content()
    with synced.read() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_a_refused_test_send_is_bad_input_with_the_servers_reason(
    synced: Database, settings: Settings, smtpd: CapturingSMTPServer, clock: FixedClock
) -> None:
    smtpd.fail_recipient("author@example.com", 550, "5.1.1 no such mailbox")

    with pytest.raises(
        BadInput, match=r"test send to author@example.com failed \(permanent\).*550"
    ):
        lessons.send_test(synced, settings, "runners", "1", "author@example.com", now=clock.now())
