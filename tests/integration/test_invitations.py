"""Invitations as an admin and a new operator meet them: the mail arrives at a real SMTP server,
its link sets a password once, and forged, used, expired or borrowed links open nothing."""

from __future__ import annotations

import re
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


def test_a_new_link_for_the_same_person_and_the_old_one_dies_with_the_first_use(
    database, settings, smtpd, clock
):
    now = clock.now()
    first = invitations.invite(database, settings, "bo@clinic.example", Role.VIEWER, now, ADMIN)
    later = now + timedelta(hours=2)
    second = invitations.send_invitation(database, settings, "BO@clinic.example", later, ADMIN)
    assert len(smtpd.messages) == 2 and first.link != second.link
    invitations.accept(database, settings, token_of(second.link), PASSWORD, now)
    with pytest.raises(BadInput, match="used already"):
        invitations.accept(database, settings, token_of(first.link), "another password!", now)
    with pytest.raises(Conflict, match="has a password already"):
        invitations.send_invitation(database, settings, "bo@clinic.example", now, ADMIN)


def test_a_refused_invitation_keeps_the_account_and_says_how_to_send_it_again(
    database, settings, smtpd, clock
):
    smtpd.fail_recipient("bo@clinic.example", 550, "5.1.1 no such mailbox")
    with pytest.raises(NotSent, match=r"dripcourse operators invite bo@clinic\.example"):
        invitations.invite(database, settings, "bo@clinic.example", Role.VIEWER, clock.now(), ADMIN)
    with database.read() as session:
        assert operators.find_operator(session, "bo@clinic.example").password_hash is None


def test_tokens_of_other_purposes_and_other_keys_open_nothing(database, settings, smtpd, clock):
    now = clock.now()
    invitations.invite(database, settings, "bo@clinic.example", Role.ADMIN, now, ADMIN)
    with database.read() as session:
        operator_id = session.scalar(select(Operator.id))
    payload = {"o": operator_id, "p": invitations._fingerprint(None), "e": 2**40}
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
