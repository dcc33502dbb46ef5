"""A test send names who asked for it in the audit log ("test sent", to whom, which lesson),
written by the operation once the server took the message; a test the server refused is not in
the log, and the command line's test sends are there too."""

from __future__ import annotations

import pytest

from dripcourse.app import audit, lessons
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.errors import BadInput
from dripcourse.store.db import Database

pytestmark = pytest.mark.both_databases


def test_a_test_send_with_an_actor_is_one_entry_in_the_audit_log(
    synced: Database, settings: Settings, smtpd: CapturingSMTPServer, clock: FixedClock
) -> None:
    lessons.send_test(
        synced,
        settings,
        "runners",
        "ankles",
        "ed@clinic.example",
        now=clock.now(),
        actor=audit.operator_actor("ed@clinic.example"),
    )

    with synced.read() as session:
        [entry] = audit.entries(session)
    assert (entry.actor, entry.action, entry.target, entry.detail, entry.at) == (
        "operator ed@clinic.example",
        "test sent",
        "ed@clinic.example",
        "lesson 2 (ankles) of runners",
        clock.now().replace(tzinfo=entry.at.tzinfo),
    )
    assert [m.rcpt_tos for m in smtpd.messages] == [("ed@clinic.example",)]


def test_a_refused_test_is_not_in_the_log(
    synced: Database, settings: Settings, smtpd: CapturingSMTPServer, clock: FixedClock
) -> None:
    smtpd.fail_recipient("ed@clinic.example", 550, "5.1.1 no such mailbox")

    with pytest.raises(BadInput, match="550"):
        lessons.send_test(
            synced,
            settings,
            "runners",
            "1",
            "ed@clinic.example",
            now=clock.now(),
            actor=audit.operator_actor("ed@clinic.example"),
        )
    with synced.read() as session:
        assert audit.entries(session) == []


def test_a_test_sent_from_the_command_line_is_audited(cli, synced, smtpd) -> None:
    result = cli("lessons", "send-test", "runners", "3", "--to", "author@example.com")

    assert result.code == 0, result.err
    with synced.read() as session:
        [entry] = audit.entries(session)
    assert entry.actor.startswith("command line (") and entry.action == "test sent"
    assert (entry.target, entry.detail) == (
        "author@example.com",
        "lesson 3 (calves-achilles) of runners",
    )
