"""`dripcourse operators` as an administrator uses it: passwords from a pipe, roles, the last admin,
one readable line and exit status 2 for every mistake, and every change in the audit log."""

from __future__ import annotations

import io

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from dripcourse.app import audit
from dripcourse.store.db import Database
from dripcourse.store.models import Operator

PASSWORD = "correct horse battery"


@pytest.fixture
def upgraded(cli):
    assert cli("db", "upgrade").code == 0
    return cli


def typed(monkeypatch, text: str) -> None:
    """Standard input as a pipe that holds `text` (not a terminal: no prompt)."""
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_an_admin_adds_operators_from_a_script_and_lists_them(upgraded, monkeypatch, settings):
    typed(monkeypatch, PASSWORD + "\n")
    added = upgraded("operators", "add", "Ada@Clinic.example", "--role", "admin")
    assert (added.code, added.out, added.err) == (0, "added Ada@clinic.example as admin\n", "")
    typed(monkeypatch, "another password!\r\n")
    assert upgraded("operators", "add", "bo@clinic.example", "--role", "EDITOR").code == 0

    listed = upgraded("operators", "list")
    assert listed.out.splitlines() == ["Ada@clinic.example  admin", "bo@clinic.example   editor"]
    database = Database(settings.database_url)
    with database.read() as session:
        hashes = dict(session.execute(select(Operator.email, Operator.password_hash)).all())
    database.dispose()
    # The line end is not part of the password.
    assert PasswordHasher().verify(hashes["bo@clinic.example"], "another password!")


def test_no_operators_yet_says_how_to_add_one(upgraded):
    assert "dripcourse operators add EMAIL --role admin" in upgraded("operators", "list").out


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (["add", "ada@clinic.example", "--role", "owner"], PASSWORD, "'owner' is not one of"),
        (["add", "ada@clinic.example", "--role", "admin"], "tiny-pw", "too short"),
        (["add", "ada@clinic.example", "--role", "admin"], "", "too short"),
        (["add", "not an address", "--role", "admin"], PASSWORD, "not a valid email address"),
        (["add", "ada@clinic.example", "--role", "admin"], "x" * 5000, "too long"),
        (["remove", "nobody@clinic.example"], "", "no operator 'nobody@clinic.example'"),
        (["set-role", "nobody@clinic.example", "viewer"], "", "no operator"),
    ],
)
def test_each_mistake_is_one_line_and_exit_status_2(upgraded, monkeypatch, args, stdin, says):
    typed(monkeypatch, stdin + "\n")
    result = upgraded("operators", *args)
    assert result.code == 2
    assert len(result.err.splitlines()) == 1 and says in result.err
    assert "Traceback" not in result.err and "tiny-pw" not in result.err


def test_the_last_admin_stays_and_every_change_is_audited(upgraded, monkeypatch, settings):
    typed(monkeypatch, PASSWORD + "\n")
    upgraded(
        "operators", "add", "ada@clinic.example", "--role", "admin", "--now", "2026-03-02T09:00Z"
    )
    refused = upgraded("operators", "remove", "ada@clinic.example")
    assert refused.code == 2
    assert refused.err == (
        "dripcourse: error: ada@clinic.example is the last admin; make another admin first\n"
    )
    typed(monkeypatch, PASSWORD + "\n")
    upgraded(
        "operators", "add", "bo@clinic.example", "--role", "viewer", "--now", "2026-03-02T09:05Z"
    )
    assert upgraded("operators", "set-role", "bo@clinic.example", "admin").out == (
        "bo@clinic.example is now admin\n"
    )
    assert (
        upgraded("operators", "remove", "ada@clinic.example").out == "removed ada@clinic.example\n"
    )

    database = Database(settings.database_url)
    with database.read() as session:
        log = [(e.actor.split(" (")[0], e.action, e.target) for e in audit.entries(session)]
        first = audit.entries(session)[-1].at
    database.dispose()
    assert log == [
        ("command line", "operator removed", "ada@clinic.example"),
        ("command line", "role changed", "bo@clinic.example"),
        ("command line", "operator added", "bo@clinic.example"),
        ("command line", "operator added", "ada@clinic.example"),
    ]
    assert first.isoformat() == "2026-03-02T09:00:00+00:00"


def test_an_invited_operator_gets_a_link_and_no_password_is_asked(upgraded, monkeypatch, smtpd):
    typed(monkeypatch, "")  # nothing to read: --invite asks for no password
    added = upgraded(
        "operators", "add", "cy@clinic.example", "--role", "editor", "--invite",
        "--now", "2026-03-02T09:00Z",
    )  # fmt: skip
    assert added.code == 0, added.err
    assert added.out == (
        "added cy@clinic.example as editor; an invitation was mailed, "
        "valid until 2026-03-05 09:00 UTC\n"
    )
    (received,) = smtpd.messages
    assert received.rcpt_tos == ("cy@clinic.example",)
    text = received.message.get_body(("plain",)).get_content()
    assert "https://courses.example.org/admin/invitation?token=" in text
    assert upgraded("operators", "list").out == (
        "cy@clinic.example  editor  (has not chosen a password yet)\n"
    )

    again = upgraded("operators", "invite", "CY@clinic.example")
    assert again.code == 0 and again.out.startswith("invitation mailed to cy@clinic.example")
    assert len(smtpd.messages) == 2


def test_a_refused_invitation_is_one_line_that_says_how_to_try_again(upgraded, smtpd):
    smtpd.fail_recipient("cy@clinic.example", 550, "5.1.1 no such mailbox")
    result = upgraded("operators", "add", "cy@clinic.example", "--role", "viewer", "--invite")
    assert result.code == 2 and len(result.err.splitlines()) == 1
    assert "was added, but the invitation was not sent" in result.err
    assert "dripcourse operators invite cy@clinic.example" in result.err
    unknown = upgraded("operators", "invite", "nobody@clinic.example")
    assert unknown.code == 2
    assert "no operator 'nobody@clinic.example'" in unknown.err
