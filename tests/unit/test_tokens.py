"""The signed links in every email: confirm, unsubscribe, view online (tokens.py).

A link works for the one thing it was made for, cannot be altered, and a confirm link can be given an
age limit. The secret that signs them is configured, or generated once and kept in the database.
"""

from __future__ import annotations

import string
import time
from datetime import timedelta

import itsdangerous
import pytest
from sqlalchemy import select

from dripcourse.errors import BadInput
from dripcourse.mail.tokens import Purpose, Signer
from dripcourse.store.db import Database
from dripcourse.store.models import AppMeta
from dripcourse.store.queries import SECRET_KEY_META, secret_key

SIGNER = Signer("test-secret-key")


def made_ago(purpose: Purpose, payload: dict[str, int], age: timedelta) -> str:
    """A token signed `age` ago: itsdangerous reads the signing time from `get_timestamp`."""
    signed_at = int(time.time() - age.total_seconds())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda self: signed_at)
        return SIGNER.make(purpose, payload)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_a_token_gives_back_what_it_was_made_with(purpose: Purpose) -> None:
    token = SIGNER.make(purpose, {"e": 42, "d": 7})

    assert SIGNER.read(purpose, token) == {"e": 42, "d": 7}


def test_a_token_is_safe_to_put_in_a_url_path() -> None:
    token = SIGNER.make(Purpose.UNSUBSCRIBE, {"e": 42})

    assert token.replace("-", "").replace("_", "").replace(".", "").isalnum()


def test_another_installation_reads_the_same_token_with_the_same_secret() -> None:
    token = SIGNER.make(Purpose.VIEW, {"d": 99})

    assert Signer("test-secret-key").read(Purpose.VIEW, token) == {"d": 99}


@pytest.mark.parametrize(
    ("made_for", "used_as"),
    [
        (Purpose.UNSUBSCRIBE, Purpose.CONFIRM),
        (Purpose.VIEW, Purpose.UNSUBSCRIBE),
        (Purpose.CONFIRM, Purpose.VIEW),
    ],
)
def test_a_token_made_for_one_purpose_fails_for_another(
    made_for: Purpose, used_as: Purpose
) -> None:
    token = SIGNER.make(made_for, {"e": 42})

    with pytest.raises(BadInput, match="this link is not valid"):
        SIGNER.read(used_as, token)


def test_a_tampered_payload_is_refused() -> None:
    token = SIGNER.make(Purpose.UNSUBSCRIBE, {"e": 42})
    other = SIGNER.make(Purpose.UNSUBSCRIBE, {"e": 43})
    # Someone else's payload with this token's signature.
    forged = other.split(".")[0] + "." + ".".join(token.split(".")[1:])

    with pytest.raises(BadInput, match="this link is not valid"):
        SIGNER.read(Purpose.UNSUBSCRIBE, forged)


BASE64_LETTERS = string.ascii_letters + string.digits + "-_"


@pytest.mark.parametrize("purpose", [Purpose.CONFIRM, Purpose.UNSUBSCRIBE])
@pytest.mark.parametrize("position", [0, -1], ids=["first", "last"])
def test_a_token_with_any_one_letter_changed_is_refused(purpose: Purpose, position: int) -> None:
    # Every other letter, because base64's spare bits make some last letters decode alike.
    token = SIGNER.make(purpose, {"e": 42})
    for letter in BASE64_LETTERS.replace(token[position], ""):
        tampered = letter + token[1:] if position == 0 else token[:-1] + letter

        with pytest.raises(BadInput, match="this link is not valid"):
            SIGNER.read(purpose, tampered)


@pytest.mark.parametrize("garbage", ["", "not-a-token", "a.b.c", "x" * 500])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(BadInput, match="this link is not valid"):
        SIGNER.read(Purpose.UNSUBSCRIBE, garbage)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = Signer("someone-elses-secret").make(Purpose.UNSUBSCRIBE, {"e": 42})

    with pytest.raises(BadInput, match="this link is not valid"):
        SIGNER.read(Purpose.UNSUBSCRIBE, token)


def test_a_signed_payload_that_is_not_a_table_is_refused() -> None:
    serializer = itsdangerous.URLSafeTimedSerializer("test-secret-key", salt="dripcourse.confirm")
    token = str(serializer.dumps([42]))

    with pytest.raises(BadInput, match="this link is not valid"):
        SIGNER.read(Purpose.CONFIRM, token)


def test_a_confirm_link_older_than_its_limit_has_expired() -> None:
    token = made_ago(Purpose.CONFIRM, {"e": 42}, timedelta(hours=73))

    with pytest.raises(BadInput, match="expired"):
        SIGNER.read(Purpose.CONFIRM, token, max_age=timedelta(hours=72))


def test_a_confirm_link_within_its_limit_still_works() -> None:
    token = made_ago(Purpose.CONFIRM, {"e": 42}, timedelta(hours=71))

    assert SIGNER.read(Purpose.CONFIRM, token, max_age=timedelta(hours=72)) == {"e": 42}


def test_an_unsubscribe_link_without_a_limit_works_a_year_later() -> None:
    token = made_ago(Purpose.UNSUBSCRIBE, {"e": 42}, timedelta(days=365))

    assert SIGNER.read(Purpose.UNSUBSCRIBE, token) == {"e": 42}


# -- the secret key ------------------------------------------------------------------------------


def stored_keys(database: Database) -> list[str]:
    with database.transaction() as session:
        return list(session.scalars(select(AppMeta.value).where(AppMeta.key == SECRET_KEY_META)))


def test_without_a_configured_key_one_is_generated_and_kept(database: Database) -> None:
    assert stored_keys(database) == []

    with database.transaction() as session:
        first = secret_key(session, None)

    assert len(first) >= 32
    assert stored_keys(database) == [first]


def test_the_generated_key_is_the_same_on_the_second_call(database: Database) -> None:
    with database.transaction() as session:
        first = secret_key(session, None)
    with database.transaction() as session:
        second = secret_key(session, "")

    assert second == first
    assert stored_keys(database) == [first]


def test_links_signed_with_the_kept_key_work_in_a_later_process(database: Database) -> None:
    with database.transaction() as session:
        token = Signer(secret_key(session, None)).make(Purpose.UNSUBSCRIBE, {"e": 5})
    with database.transaction() as session:
        later = Signer(secret_key(session, None))

    assert later.read(Purpose.UNSUBSCRIBE, token) == {"e": 5}


def test_the_configured_key_wins_over_the_kept_one(database: Database) -> None:
    with database.transaction() as session:
        kept = secret_key(session, None)
    with database.transaction() as session:
        chosen = secret_key(session, "configured-secret")

    assert chosen == "configured-secret"
    assert stored_keys(database) == [kept]


def test_a_configured_key_is_not_written_to_the_database(database: Database) -> None:
    with database.transaction() as session:
        assert secret_key(session, "configured-secret") == "configured-secret"

    assert stored_keys(database) == []
