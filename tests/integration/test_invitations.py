"""Invitations as an admin and a new operator meet them: the mail arrives at a real SMTP server,
its link sets a password once, and forged, used, expired or borrowed links open nothing."""

from __future__ import annotations

import contextlib
import re
import threading
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from dripcourse.app import audit, invitations, operators
from dripcourse.domain.roles import Role
from dripcourse.errors import BadInput, Conflict, NotSent
from dripcourse.mail.tokens import Purpose, Signer
from dripcourse.store.models import Operator

PASSWORD = "correct horse battery"
ADMIN = audit.operator_actor("admin@clinic.example")


def link_in_mail(smtpd, address: str) -> str:
    (received,) = [m for m in smtpd.messages if address in m.rcpt_tos]
    text = received.message.get_body(("plain",)).get_content()
    return re.search(r"https://\S+/admin/invitation\?token=\S+", text).group(0)


def token_of(link: str) -> str:
    return unquote(parse_qs(urlsplit(link).query)["token"][0])


def test_the_invited_operator_chooses_a_password_once_and_signs_in(
    database, settings, smtpd, clock
):
    now = clock.now()
    sent = invitations.invite(database, settings, "Bo@Clinic.example", Role.EDITOR, now, ADMIN)

    link = link_in_mail(smtpd, "Bo@clinic.example")
    assert link == sent.link
    assert link.startswith("https://courses.example.org/admin/invitation?token=")
    (received,) = smtpd.messages
    assert received.message["Subject"] == "Your dripcourse dashboard account"
    token = token_of(link)
    later = now + timedelta(hours=1)
    assert invitations.invited_operator(database, settings, token, later) == "Bo@clinic.example"
    # No password yet: nothing signs in, not even an empty one.
    assert operators.sign_in(database, "bo@clinic.example", "", later, timedelta(hours=1)) is None

    assert invitations.accept(database, settings, token, PASSWORD, later) == "Bo@clinic.example"
    signed = operators.sign_in(database, "bo@clinic.example", PASSWORD, later, timedelta(hours=1))
    assert signed is not None and signed.operator.role == "editor"

    with pytest.raises(BadInput, match="used already"):
        invitations.accept(database, settings, token, "another password!", later)
    with database.read() as session:
        said = [(e.actor, e.action, e.target) for e in audit.entries(session)]
    assert said == [
        ("operator Bo@clinic.example", "password chosen", "Bo@clinic.example"),
        (ADMIN, "invitation sent", "Bo@clinic.example"),
        (ADMIN, "operator added", "Bo@clinic.example"),
    ]


def test_a_link_runs_out_on_the_injected_clock(database, settings, smtpd, clock):
    sent = invitations.invite(
        database, settings, "bo@clinic.example", Role.VIEWER, clock.now(), ADMIN
    )
    token = token_of(sent.link)
    assert sent.expires_at == clock.now() + timedelta(hours=settings.invitation_hours)
    with pytest.raises(BadInput, match="expired"):
        invitations.accept(
            database, settings, token, PASSWORD, sent.expires_at + timedelta(seconds=1)
        )
    assert (
        invitations.accept(database, settings, token, PASSWORD, sent.expires_at)
        == "bo@clinic.example"
    )


def test_a_new_link_for_the_same_person_ends_the_old_one(database, settings, smtpd, clock):
    now = clock.now()
    first = invitations.invite(database, settings, "bo@clinic.example", Role.VIEWER, now, ADMIN)
    later = now + timedelta(hours=2)
    second = invitations.send_invitation(database, settings, "BO@clinic.example", later, ADMIN)
    assert len(smtpd.messages) == 2 and first.link != second.link
    with pytest.raises(BadInput, match="a newer one was sent"):
        invitations.accept(database, settings, token_of(first.link), PASSWORD, later)
    invitations.accept(database, settings, token_of(second.link), PASSWORD, later)
    with pytest.raises(BadInput, match="used already"):
        invitations.accept(database, settings, token_of(second.link), "another password!", later)
    with pytest.raises(Conflict, match="has a password already"):
        invitations.send_invitation(database, settings, "bo@clinic.example", later, ADMIN)


@pytest.mark.both_databases
def test_the_link_of_a_removed_account_never_opens_the_next_one(database, settings, smtpd, clock):
    """SQLite gives a new row the id of a removed last one: the link must name more than an id."""
    now = clock.now()
    typo = invitations.invite(database, settings, "bob@clinlc.example", Role.VIEWER, now, ADMIN)
    with database.transaction() as session:
        operators.remove_operator(session, "bob@clinlc.example", now, ADMIN)
    invitations.invite(database, settings, "bob@clinic.example", Role.ADMIN, now, ADMIN)
    if database.engine.dialect.name == "sqlite":
        with database.read() as session:  # the id came back (PostgreSQL's sequence moves on)
            assert operators.find_operator(session, "bob@clinic.example").id == 1
    with pytest.raises(BadInput, match="used already, or a newer one was sent"):
        invitations.invited_operator(database, settings, token_of(typo.link), now)
    with pytest.raises(BadInput):
        invitations.accept(database, settings, token_of(typo.link), PASSWORD, now)
    with database.read() as session:
        assert operators.find_operator(session, "bob@clinic.example").password_hash is None


@pytest.mark.both_databases
def test_two_forms_sent_with_one_link_set_one_password(
    database, settings, smtpd, clock, monkeypatch
):
    """Each form, once it has checked the link inside its transaction, waits (up to a second) for
    the other to get that far too. Without the row lock both would, and both would store their
    password; with it the second waits for the first to commit, and finds the link used."""
    now = clock.now()
    sent = invitations.invite(database, settings, "bo@clinic.example", Role.EDITOR, now, ADMIN)
    token, outcomes = token_of(sent.link), []
    rendezvous, set_password = threading.Barrier(2), operators.set_password

    def set_password_when_both_got_here(*args, **kwargs) -> None:
        # Broken when the other form is kept waiting by the lock: as it should be.
        with contextlib.suppress(threading.BrokenBarrierError):
            rendezvous.wait(timeout=1)
        set_password(*args, **kwargs)

    monkeypatch.setattr(operators, "set_password", set_password_when_both_got_here)

    def choose(password: str) -> None:
        try:
            invitations.accept(database, settings, token, password, now)
            outcomes.append(password)
        except BadInput:
            outcomes.append("refused")

    threads = [threading.Thread(target=choose, args=(f"password of person {n}",)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (chosen,) = [outcome for outcome in outcomes if outcome != "refused"]
    assert sorted(outcomes) == sorted([chosen, "refused"])
    hours = timedelta(hours=1)
    assert operators.sign_in(database, "bo@clinic.example", chosen, now, hours) is not None
    with database.read() as session:
        assert [e.action for e in audit.entries(session)].count("password chosen") == 1


def test_a_refused_invitation_keeps_the_account_and_says_how_to_send_it_again(
    database, settings, smtpd, clock
):
    smtpd.fail_recipient("bo@clinic.example", 550, "5.1.1 no such mailbox")
    with pytest.raises(NotSent, match=r"dripcourse operators invite bo@clinic\.example"):
        invitations.invite(database, settings, "bo@clinic.example", Role.VIEWER, clock.now(), ADMIN)
    with database.read() as session:
        assert operators.find_operator(session, "bo@clinic.example").password_hash is None
        assert [e.action for e in audit.entries(session)] == ["operator added"]  # not "sent"


def test_tokens_of_other_purposes_and_other_keys_open_nothing(database, settings, smtpd, clock):
    now = clock.now()
    invitations.invite(database, settings, "bo@clinic.example", Role.ADMIN, now, ADMIN)
    with database.read() as session:
        operator_id = session.scalar(select(Operator.id))
    with database.read() as session:
        nonce = session.scalar(select(Operator.invitation_nonce))
    payload = {"o": operator_id, "n": nonce, "e": 2**40}
    borrowed = Signer(settings.secret_key).make(Purpose.CONFIRM, payload)
    foreign = Signer("another-secret").make(Purpose.INVITE, payload)
    for token in (borrowed, foreign, "", "x" * 5000, "a.b.c"):
        with pytest.raises(BadInput):
            invitations.accept(database, settings, token, PASSWORD, now)
    with database.read() as session:
        assert operators.find_operator(session, "bo@clinic.example").password_hash is None


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=st.text(max_size=500))
def test_any_text_as_a_token_is_a_bad_input_never_a_crash(database, settings, clock, token):
    with pytest.raises(BadInput):
        invitations.invited_operator(database, settings, token, clock.now())
