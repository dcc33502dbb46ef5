"""The public pages as mail clients, scripts and careless or hostile visitors use them: plain HTTP
against the live server, with a real SMTP server and a real SQLite file behind it."""

from __future__ import annotations

import html
import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from dripcourse.app import subscriptions
from dripcourse.mail.tokens import Purpose, Signer
from dripcourse.store.models import (
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Enrollment,
    Subscriber,
    Suppression,
    SuppressionReason,
)

SECRET = "test-secret-key"  # the conftest settings' key
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"
ACCEPTED = (
    "Thanks! Check your inbox: we sent you an email with a link to confirm your subscription."
)


def subscribed_and_sent_lesson_1(live_server, inbox, email="ada@example.com", name="Ada Lovelace"):
    """Someone an operator enrolled (`dripcourse subscribe --confirmed`), a week on: lesson 1 is
    in their inbox. Returns that email."""
    now = datetime.now(UTC)
    with live_server.database.transaction() as session:
        subscriptions.subscribe(
            session,
            email=email,
            course_slug="runners",
            name=name,
            timezone="Europe/Berlin",
            confirmed=True,
            now=now,
        )
    live_server.dispatch_as_of(now + timedelta(days=7))
    return inbox.wait_for(email, "Lesson 1")


def suppression_of(live_server, email):
    with live_server.database.transaction() as session:
        found = session.scalar(select(Suppression).where(Suppression.email == email))
        return None if found is None else found.reason


def shown_to_the_user(response):
    """The JSON error, or the words of the HTML page as a reader sees them."""
    if response.headers["content-type"].startswith("application/json"):
        return response.json()["error"]
    body = response.text.split("<body>", 1)[1]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def rows_written(live_server):
    with live_server.database.transaction() as session:
        return {
            model.__name__: session.scalar(select(func.count()).select_from(model))
            for model in (Subscriber, Enrollment, Delivery, Suppression)
        }


# -- unsubscribing (RFC 8058 and the page's button) ---------------------------------------------


MULTIPART_BOUNDARY = "----mail-provider-boundary"
ONE_CLICK_BODIES = {
    "urlencoded": (FORM, ONE_CLICK),
    "multipart": (
        f"multipart/form-data; boundary={MULTIPART_BOUNDARY}",
        (
            f"--{MULTIPART_BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="List-Unsubscribe"\r\n'
            "\r\n"
            "One-Click\r\n"
            f"--{MULTIPART_BOUNDARY}--\r\n"
        ).encode(),
    ),
}


@pytest.mark.parametrize("encoding", ONE_CLICK_BODIES)
def test_a_mail_providers_one_click_post_unsubscribes_without_cookies(live_server, inbox, encoding):
    lesson = subscribed_and_sent_lesson_1(live_server, inbox)
    assert lesson["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    content_type, body = ONE_CLICK_BODIES[encoding]

    # RFC 8058 section 3.2: a POST with that body and no cookies or other context.
    response = httpx.post(
        inbox.unsubscribe_url(lesson), content=body, headers={"content-type": content_type}
    )

    assert response.is_success, response.text
    assert "You will get no more lessons of Runners E-Course." in response.text
    assert live_server.enrollment_status("ada@example.com") == "unsubscribed"
    # One click leaves this course; it does not silence the address for everything.
    assert suppression_of(live_server, "ada@example.com") is None


def test_opening_the_unsubscribe_link_only_shows_the_choice(live_server, inbox):
    lesson = subscribed_and_sent_lesson_1(live_server, inbox)
    url = inbox.unsubscribe_url(lesson)

    # Mail scanners and link previews fetch every link they see, some more than once.
    pages = [httpx.get(url), httpx.get(url)]

    assert [page.status_code for page in pages] == [200, 200]
    assert "Nothing changes until you press the button." in pages[0].text
    assert live_server.enrollment_status("ada@example.com") == "active"
    assert suppression_of(live_server, "ada@example.com") is None


@pytest.mark.parametrize(
    ("scope", "page_says", "suppressed"),
    [
        ("course", "You will get no more lessons of Runners E-Course.", None),
        ("all", "You will get no more email from us.", SuppressionReason.UNSUBSCRIBED),
    ],
    ids=["only-this-course", "all-mail"],
)
def test_the_button_leaves_this_course_or_all_mail(
    live_server, inbox, scope, page_says, suppressed
):
    lesson = subscribed_and_sent_lesson_1(live_server, inbox)

    response = httpx.post(inbox.unsubscribe_url(lesson), data={"scope": scope})

    assert response.status_code == 200
    assert "You are unsubscribed" in response.text and page_says in response.text
    assert live_server.enrollment_status("ada@example.com") == "unsubscribed"
    assert suppression_of(live_server, "ada@example.com") == suppressed


def _one_character_changed(token, enrollment):
    # A character of the payload, not the last one: the last base64 character of the signature
    # carries padding bits, and some changes to it decode to the same bytes.
    return token[:3] + ("A" if token[3] != "A" else "B") + token[4:]


FORGERIES = {
    "one-character-changed": _one_character_changed,
    "view-token": lambda token, enrollment: Signer(SECRET).make(Purpose.VIEW, {"e": enrollment}),
    "confirm-token": lambda token, enrollment: Signer(SECRET).make(
        Purpose.CONFIRM, {"e": enrollment}
    ),
    "signed-with-another-key": lambda token, enrollment: Signer("another-key").make(
        Purpose.UNSUBSCRIBE, {"e": enrollment}
    ),
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES)
def test_a_forged_unsubscribe_link_is_refused_politely_and_changes_nothing(
    live_server, inbox, forge
):
    lesson = subscribed_and_sent_lesson_1(live_server, inbox)
    with live_server.database.transaction() as session:
        enrollment = session.scalar(select(Enrollment.id))
    real = inbox.unsubscribe_url(lesson)
    forged = f"{live_server.url}/unsubscribe/{forge(real.rsplit('/', 1)[1], enrollment)}"
    assert forged != real

    answers = [
        httpx.get(forged),
        httpx.post(forged, data={"scope": "all"}),
        httpx.post(forged, content=ONE_CLICK, headers={"content-type": FORM}),
    ]

    for answer in answers:
        assert answer.status_code == 400
        assert "This link is not valid." in answer.text
    assert live_server.enrollment_status("ada@example.com") == "active"
    assert suppression_of(live_server, "ada@example.com") is None


# -- confirming and viewing online ---------------------------------------------------------------


class _SignedLongAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 73 * 3600


def test_a_confirm_link_older_than_the_expiry_is_refused(live_server):
    signed_up = httpx.post(
        f"{live_server.url}/subscribe",
        json={"email": "ada@example.com", "course": "runners", "name": "Ada"},
    )
    assert signed_up.status_code == 202
    with live_server.database.transaction() as session:
        enrollment = session.scalar(select(Enrollment.id))
    # Signed like the real link, but 73 hours ago (confirmation_expiry_hours is 72).
    signer = URLSafeTimedSerializer(
        SECRET, salt=f"dripcourse.{Purpose.CONFIRM}", signer=_SignedLongAgo
    )
    old_token = signer.dumps({"e": enrollment})
    assert Signer(SECRET).read(Purpose.CONFIRM, old_token) == {"e": enrollment}  # but for its age

    response = httpx.get(f"{live_server.url}/confirm/{old_token}")

    assert response.status_code == 400
    assert "This link has expired." in response.text
    assert live_server.enrollment_status("ada@example.com") == "pending"


def test_an_old_confirm_link_does_not_undo_a_later_unsubscribe(live_server, inbox):
    httpx.post(
        f"{live_server.url}/subscribe", json={"email": "ada@example.com", "course": "runners"}
    )
    confirm_link = inbox.link_in(inbox.wait_for("ada@example.com", "onfirm"), "/confirm/")
    assert httpx.get(confirm_link).status_code == 200
    lesson = live_server.dispatch_as_of(datetime.now(UTC) + timedelta(days=7))
    assert lesson.count("sent") == 1
    unsubscribe = inbox.unsubscribe_url(inbox.wait_for("ada@example.com", "Lesson 1"))
    assert httpx.post(unsubscribe, data={"scope": "all"}).status_code == 200

    # The confirmation email is still in the inbox; a mail scanner or a stray click opens it.
    refused = httpx.get(confirm_link)

    assert refused.status_code == 409
    assert "older than your unsubscribe" in refused.text
    assert live_server.enrollment_status("ada@example.com") == "unsubscribed"
    assert suppression_of(live_server, "ada@example.com") == SuppressionReason.UNSUBSCRIBED


def test_view_online_shows_the_lesson_as_it_was_sent(live_server, inbox):
    lesson = subscribed_and_sent_lesson_1(live_server, inbox)

    page = httpx.get(inbox.link_in(lesson, "/view/"))

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # The same HTML, give or take the CRLF line endings that MIME gave the email's copy.
    assert page.text.split() == inbox.html_of(lesson).split()
    assert "Hi Ada," in page.text and "Feet first" in page.text


# -- signing up with JSON ------------------------------------------------------------------------


def test_a_json_sign_up_is_accepted_and_the_confirmation_email_follows(live_server, inbox):
    response = httpx.post(
        f"{live_server.url}/subscribe",
        json={
            "email": "ada@example.com",
            "name": "Ada Lovelace",
            "timezone": "Europe/Berlin",
            "course": "runners",
        },
    )

    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "message": ACCEPTED}
    confirmation = inbox.wait_for("ada@example.com", "onfirm")
    assert "Hi Ada," in inbox.text_of(confirmation)
    assert inbox.link_in(confirmation, "/confirm/").startswith(f"{live_server.url}/confirm/")
    assert live_server.enrollment_status("ada@example.com") == "pending"


def _wait_until_confirmations_sent(live_server):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with live_server.database.transaction() as session:
            open_ = session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(
                    Delivery.kind == DeliveryKind.CONFIRMATION,
                    Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
                )
            )
        if open_ == 0:
            return
        time.sleep(0.05)
    pytest.fail("confirmation emails were still waiting after 10 s")


@pytest.mark.server_settings(signup_rate_per_minute=100)
def test_a_sign_up_never_tells_whether_the_address_is_known(live_server, inbox):
    now = datetime.now(UTC)
    people = {
        "new": "new@example.com",
        "pending": "pending@example.com",
        "active": "active@example.com",
        "suppressed": "bounced@example.com",
    }
    httpx.post(
        f"{live_server.url}/subscribe", json={"email": people["pending"], "course": "runners"}
    )
    with live_server.database.transaction() as session:
        subscriptions.subscribe(
            session,
            email=people["active"],
            course_slug="runners",
            name="Ada Lovelace",
            confirmed=True,
            now=now,
        )
        session.add(
            Suppression(
                email=people["suppressed"], reason=SuppressionReason.HARD_BOUNCE, created_at=now
            )
        )

    def sign_up(email, as_json):
        fields = {"email": email, "name": "Mallory", "course": "runners"}
        if as_json:
            response = httpx.post(f"{live_server.url}/subscribe", json=fields)
        else:
            response = httpx.post(f"{live_server.url}/subscribe", data=fields)
        return response.status_code, response.text

    json_answers = {state: sign_up(email, True) for state, email in people.items()}
    form_answers = {state: sign_up(email, False) for state, email in people.items()}
    json_again = {state: sign_up(email, True) for state, email in people.items()}

    assert len(set(json_answers.values()) | set(json_again.values())) == 1
    assert json_answers["new"][0] == 202
    assert len(set(form_answers.values())) == 1
    assert form_answers["new"][0] == 200 and "Check your inbox" in form_answers["new"][1]

    _wait_until_confirmations_sent(live_server)
    confirmations = {
        state: len([m for m in inbox.of(email) if "onfirm" in str(m["Subject"])])
        for state, email in people.items()
    }
    assert confirmations == {"new": 1, "pending": 1, "active": 0, "suppressed": 0}
    # A stranger's sign-up changes nothing about a subscriber.
    with live_server.database.transaction() as session:
        active = session.scalar(select(Subscriber).where(Subscriber.email == people["active"]))
        assert active is not None and active.name == "Ada Lovelace"
    assert live_server.enrollment_status(people["active"]) == "active"


# -- bad input -----------------------------------------------------------------------------------


GOOD = {"email": "ada@example.com", "name": "Ada", "timezone": "Europe/Berlin", "course": "runners"}


def _chunks(size):
    # A generator body is sent chunked, without Content-Length: the cap must hold all the same.
    yield b'{"email": "ada@example.com", "course": "runners", "name": "'
    for _ in range(size // 1024):
        yield b"x" * 1024
    yield b'"}'


JSON, PAGE = "application/json", "text/html"
BAD_SIGN_UPS = {
    # name: (the request, the status, words of the explanation, how the answer comes)
    "invalid-address": (
        {"json": {**GOOD, "email": "ada.example.com"}},
        400,
        "not a valid email address",
        JSON,
    ),
    # Only sendable over SMTPUTF8, which few servers on the way promise: refused at the door
    # rather than failing at every dispatch pass (see validation.normalise_email).
    "non-ascii-local-part": (
        {"json": {**GOOD, "email": "jörg@example.com"}},
        400,
        "characters before the @-sign are not supported",
        JSON,
    ),
    "invalid-address-in-form": (
        {"data": {**GOOD, "email": "ada@example"}},
        400,
        "not a valid email address",
        PAGE,
    ),
    "unknown-course": ({"json": {**GOOD, "course": "swimmers"}}, 404, "no such course", JSON),
    "unknown-course-in-form": (
        {"data": {**GOOD, "course": "swimmers"}},
        404,
        "no such course",
        PAGE,
    ),
    "unknown-zone": (
        {"json": {**GOOD, "timezone": "Mars/Olympus_Mons"}},
        400,
        "unknown time zone",
        JSON,
    ),
    "line-break-in-name": (
        {"data": {**GOOD, "name": "Ada\r\nBcc: everyone@example.com"}},
        400,
        "may not contain line breaks",
        PAGE,
    ),
    "300-character-name": (
        {"json": {**GOOD, "name": "A" * 300}},
        400,
        "at most 200 characters",
        JSON,
    ),
    "100-KB-body": (
        {"json": {**GOOD, "name": "A" * 100_000}},
        413,
        "larger than 65536 bytes",
        JSON,
    ),
    "100-KB-body-chunked": (
        {"content": _chunks(100_000), "headers": {"content-type": JSON}},
        413,
        "larger than 65536 bytes",
        JSON,
    ),
    "malformed-json": (
        {"content": b'{"email": "ada@', "headers": {"content-type": JSON}},
        400,
        "not valid JSON",
        JSON,
    ),
    "plain-text": (
        {"content": b"ada@example.com", "headers": {"content-type": "text/plain"}},
        415,
        "unsupported content type",
        PAGE,
    ),
    "json-list": ({"json": [GOOD]}, 400, "send a JSON object", JSON),
    "json-number-field": ({"json": {**GOOD, "name": 7}}, 400, "send a JSON object", JSON),
}


@pytest.mark.parametrize(
    ("request_", "status", "explanation", "answered_as"), BAD_SIGN_UPS.values(), ids=BAD_SIGN_UPS
)
def test_a_bad_sign_up_is_explained_and_nothing_is_written(
    live_server, request_, status, explanation, answered_as
):
    response = httpx.post(f"{live_server.url}/subscribe", **request_)

    assert response.status_code == status
    # A script that sent JSON reads the reason as JSON; a form (or a confused client) a page.
    assert response.headers["content-type"].startswith(answered_as)
    assert explanation.lower() in shown_to_the_user(response).lower()
    assert rows_written(live_server) == {
        "Subscriber": 0,
        "Enrollment": 0,
        "Delivery": 0,
        "Suppression": 0,
    }


@pytest.mark.parametrize("send_as", ["json", "data"])
def test_a_name_of_encoded_words_cannot_add_headers_or_a_body(live_server, inbox, send_as):
    # Decoded, this name would end the To: line and write a Reply-To and a body of its own.
    name = (
        "=?utf-8?q?Ada=0D=0AReply-To:_attacker=40evil.example=0D=0A=0D=0A"
        "<h1>Your_account_is_locked</h1>?="
    )
    response = httpx.post(
        f"{live_server.url}/subscribe",
        **{send_as: {**GOOD, "email": "eve@example.com", "name": name}},
    )

    assert response.status_code in (200, 202)
    confirmation = inbox.wait_for("eve@example.com", "onfirm")
    assert confirmation.get_all("Reply-To") == ["hello@northside-physio.example"]
    assert [a.display_name for a in confirmation["To"].addresses] == [name]
    assert "attacker" not in str(confirmation["Reply-To"])
    assert "Your account is locked" not in inbox.html_of(confirmation)
    assert confirmation.get_content_type() == "multipart/alternative"


def test_what_a_visitor_typed_comes_back_as_text_never_as_markup(live_server):
    typed = {**GOOD, "email": "ada@example", "name": '"><script>alert(1)</script>'}

    response = httpx.post(f"{live_server.url}/subscribe", data=typed)

    assert response.status_code == 400
    assert "<script>alert(1)" not in response.text
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in response.text


def test_a_flood_of_sign_ups_from_one_client_is_slowed_down(live_server):
    limit = live_server.settings.signup_rate_per_minute

    answers = [
        httpx.post(
            f"{live_server.url}/subscribe",
            json={"email": f"runner{n}@example.com", "course": "runners"},
        )
        for n in range(limit + 1)
    ]

    assert [a.status_code for a in answers] == [202] * limit + [429]
    refused = answers[-1]
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json() == {"error": "too many sign-ups from your address; try again later"}
    assert live_server.enrollment_status(f"runner{limit}@example.com") is None
    assert rows_written(live_server)["Subscriber"] == limit
