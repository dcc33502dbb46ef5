"""Operators of the dashboard against a real database: accounts, argon2id passwords, roles, the last
admin, sessions that end and expire, and the audit log of each change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from dripcourse.app import audit, operators
from dripcourse.domain.roles import Role
from dripcourse.errors import BadInput, Conflict, NotFound
from dripcourse.store.models import AuditEntry, Operator, OperatorSession

pytestmark = pytest.mark.both_databases

PASSWORD = "a long enough secret"
ADA = "ada@clinic.example"
ACTOR = audit.command_line_actor("tester")
HOUR = timedelta(hours=1)


def add(database, clock, email="ada@clinic.example", role=Role.ADMIN, password=PASSWORD):
    with database.transaction() as session:
        return operators.add_operator(session, email, role, password, clock.now(), ACTOR).email


def test_a_password_is_kept_only_as_an_argon2id_hash(database, clock):
    add(database, clock)
    with database.read() as session:
        stored = session.scalar(select(Operator.password_hash))
    assert PASSWORD not in stored
    # argon2-cffi itself reads the hash: argon2id, with RFC 9106's second recommended parameters.
    parameters = __import__("argon2").extract_parameters(stored)
    assert parameters.type is Type.ID
    assert (parameters.time_cost, parameters.memory_cost) == (
        RFC_9106_LOW_MEMORY.time_cost,
        RFC_9106_LOW_MEMORY.memory_cost,
    )
    assert PasswordHasher().verify(stored, PASSWORD)
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(stored, PASSWORD + "!")


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("tiny-pw", "too short"),
        ("x" * 1025, "too long"),
        ("ten chars\x00!", "control characters"),
    ],
)
def test_a_bad_password_is_refused_without_being_echoed(database, clock, password, says):
    with pytest.raises(BadInput, match=says) as refused:
        add(database, clock, password=password)
    assert password not in str(refused.value)
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Operator)) == 0


def test_one_account_per_mailbox_whatever_the_spelling(database, clock):
    add(database, clock, "Ada@Clinic.example")
    with pytest.raises(Conflict, match="is an operator already"):
        add(database, clock, "ada@clinic.EXAMPLE")


def test_the_last_admin_can_be_neither_removed_nor_demoted(database, clock):
    add(database, clock)
    with database.transaction() as session, pytest.raises(Conflict, match="last admin"):
        operators.remove_operator(session, "ada@clinic.example", clock.now(), ACTOR)
    with database.transaction() as session, pytest.raises(Conflict, match="last admin"):
        operators.set_role(session, "ada@clinic.example", Role.VIEWER, clock.now(), ACTOR)
    add(database, clock, "bo@clinic.example", Role.ADMIN)
    with database.transaction() as session:
        operators.set_role(session, "ada@clinic.example", Role.VIEWER, clock.now(), ACTOR)
        operators.remove_operator(session, "ada@clinic.example", clock.now(), ACTOR)
    with database.read() as session:
        assert [o.email for o in operators.list_operators(session)] == ["bo@clinic.example"]


@pytest.mark.parametrize("email", ["nobody@clinic.example", "\x00", "not an address", "x" * 5000])
def test_unknown_operators_are_not_found(database, clock, email):
    with database.transaction() as session, pytest.raises(NotFound):
        operators.remove_operator(session, email, clock.now(), ACTOR)


def test_each_change_is_in_the_audit_log_with_who_what_to_whom_and_when(database, clock):
    add(database, clock)
    clock.advance(HOUR)
    add(database, clock, "bo@clinic.example", Role.EDITOR)
    clock.advance(HOUR)
    with database.transaction() as session:
        operators.set_role(session, "bo@clinic.example", Role.VIEWER, clock.now(), ACTOR)
        operators.set_role(session, "bo@clinic.example", Role.VIEWER, clock.now(), ACTOR)  # no-op
    clock.advance(HOUR)
    with database.transaction() as session:
        operators.remove_operator(session, "bo@clinic.example", clock.now(), ACTOR)
    with database.read() as session:
        log = [(e.at, e.actor, e.action, e.target, e.detail) for e in audit.entries(session)]
        about_bo = audit.entries(session, target="bo@clinic.example")
    start = clock.now() - 3 * HOUR
    assert log == [
        (start + 3 * HOUR, "command line (tester)", "operator removed", "bo@clinic.example", ""),
        (
            start + 2 * HOUR,
            "command line (tester)",
            "role changed",
            "bo@clinic.example",
            "editor -> viewer",
        ),
        (
            start + HOUR,
            "command line (tester)",
            "operator added",
            "bo@clinic.example",
            "role editor",
        ),
        (start, "command line (tester)", "operator added", "ada@clinic.example", "role admin"),
    ]
    assert len(about_bo) == 3


def test_a_failed_change_leaves_no_audit_entry(database, clock):
    add(database, clock)
    with pytest.raises(Conflict):
        add(database, clock)
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 1


def test_a_session_lasts_until_sign_out_or_expiry(database, clock):
    add(database, clock)
    signed = operators.sign_in(database, "ADA@clinic.example", PASSWORD, clock.now(), HOUR)
    assert signed is not None
    with database.read() as session:
        stored = session.scalar(select(OperatorSession.token_hash))
        assert signed.token not in stored  # only its hash is kept
    with database.transaction() as session:
        assert operators.signed_in(session, signed.token, clock.now()).email == "ada@clinic.example"
        assert operators.signed_in(session, signed.token, clock.now() + HOUR) is None
        assert operators.signed_in(session, signed.token[:-1], clock.now()) is None
        operators.sign_out(session, signed.token)
        assert operators.signed_in(session, signed.token, clock.now()) is None


def test_signing_in_again_ends_the_browsers_previous_session(database, clock):
    add(database, clock)
    first = operators.sign_in(database, ADA, PASSWORD, clock.now(), HOUR)
    second = operators.sign_in(database, ADA, PASSWORD, clock.now(), HOUR, replacing=first.token)
    with database.read() as session:
        assert operators.signed_in(session, first.token, clock.now()) is None
        assert operators.signed_in(session, second.token, clock.now()).email == ADA


def test_another_spelling_of_the_domain_is_the_same_account_and_the_same_attempt_key(
    database, clock
):
    add(database, clock)
    spellings = ["ada@clinic.example", "ADA@Clinic.Example", "ada@clinic\uff0eexample"]
    assert {operators.attempt_key(s) for s in spellings} == {"ada@clinic.example"}
    assert operators.sign_in(database, spellings[2], PASSWORD, clock.now(), HOUR) is not None


def test_control_characters_cannot_forge_a_second_audit_line(database, clock):
    with database.transaction() as session:
        audit.record(session, clock.now(), "command line (x\nforged)", "added", "a\r\nb", "\x1b[2J")
    with database.read() as session:
        [entry] = audit.entries(session)
    assert (entry.actor, entry.target, entry.detail) == (
        "command line (x\\nforged)",
        "a\\r\\nb",
        "\\x1b[2J",
    )


def test_removing_an_operator_ends_their_sessions(database, clock):
    add(database, clock)
    add(database, clock, "bo@clinic.example", Role.EDITOR)
    signed = operators.sign_in(database, "bo@clinic.example", PASSWORD, clock.now(), HOUR)
    with database.transaction() as session:
        operators.remove_operator(session, "bo@clinic.example", clock.now(), ACTOR)
    with database.transaction() as session:
        assert operators.signed_in(session, signed.token, clock.now()) is None
        assert session.scalar(select(func.count()).select_from(OperatorSession)) == 0


def test_a_wrong_password_and_an_unknown_address_get_the_same_answer(database, clock):
    add(database, clock)
    for email, password in [
        ("ada@clinic.example", "wrong password"),
        ("nobody@clinic.example", PASSWORD),
        ("not an address", PASSWORD),
    ]:
        assert operators.sign_in(database, email, password, clock.now(), HOUR) is None
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(OperatorSession)) == 0


def test_an_invited_operator_without_a_password_cannot_sign_in(database, clock):
    with database.transaction() as session:
        operators.add_operator(session, "cy@clinic.example", Role.VIEWER, None, clock.now(), ACTOR)
    assert operators.sign_in(database, "cy@clinic.example", "", clock.now(), HOUR) is None


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(email=st.text(max_size=400), password=st.text(max_size=2000), token=st.text(max_size=200))
@example(email="\x00", password="\x00", token="\x00")  # PostgreSQL refuses NUL in text
@example(email="ada@clinic.example\x00", password=PASSWORD, token="")
def test_whatever_a_stranger_types_sign_in_answers_none_and_never_raises(
    database, clock, email, password, token
):
    assert operators.sign_in(database, email, password, clock.now(), HOUR) is None
    with database.read() as session:
        assert operators.signed_in(session, token, clock.now()) is None
