"""The dashboard's door as scripts and hostile visitors try it: plain HTTP against the live server.

Sign-in with a double-submitted form token, a session cookie with the right flags, the same answer
for a wrong password and an unknown address, a limit on attempts, CSRF on every change, sign-out
that ends the session, and forged or expired cookies that open nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from dripcourse.app import audit, operators
from dripcourse.domain.roles import Role
from dripcourse.store.models import OperatorSession

PASSWORD = "correct horse battery"
ADMIN = "ada@clinic.example"


@pytest.fixture
def admin(live_server):
    with live_server.database.transaction() as session:
        operators.add_operator(
            session, ADMIN, Role.ADMIN, PASSWORD, datetime.now(UTC), audit.command_line_actor("t")
        )
    return ADMIN


def client(live_server) -> httpx.Client:
    return httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=10)


def form_token(browser: httpx.Client) -> str:
    page = browser.get("/admin/login")
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def sign_in(browser: httpx.Client, email=ADMIN, password=PASSWORD) -> httpx.Response:
    token = form_token(browser)
    return browser.post("/admin/login", data={"email": email, "password": password, "csrf": token})


def page_token(browser: httpx.Client) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', browser.get("/admin/").text).group(1)


def test_signed_out_every_page_sends_you_to_sign_in(live_server):
    with client(live_server) as browser:
        answer = browser.get("/admin/")
    assert (answer.status_code, answer.headers["location"]) == (303, "/admin/login")


def test_signing_in_sets_a_session_cookie_that_scripts_cannot_read(live_server, admin):
    with client(live_server) as browser:
        answer = sign_in(browser)
        assert (answer.status_code, answer.headers["location"]) == (303, "/admin/")
        cookie = next(
            value
            for name, value in answer.headers.multi_items()
            if name == "set-cookie" and value.startswith("dripcourse_admin=")
        )
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/admin" in cookie
        # The live server's base URL is http: no Secure flag, or the browser would drop it.
        assert "Secure" not in cookie
        overview = browser.get("/admin/")
    assert overview.status_code == 200
    assert "<h1>Overview</h1>" in overview.text and ADMIN in overview.text


def test_behind_https_the_cookie_is_secure(settings, database, clock):
    """The conftest's settings have an https base URL, as a deployment behind a proxy has."""
    from fastapi.testclient import TestClient

    from dripcourse.web.app import create_app

    with database.transaction() as session:
        operators.add_operator(session, ADMIN, Role.ADMIN, PASSWORD, clock.now(), "test")
    with TestClient(
        create_app(settings, database, clock), base_url="https://testserver", follow_redirects=False
    ) as browser:
        answer = sign_in(browser)
    cookies = [v for n, v in answer.headers.multi_items() if n == "set-cookie"]
    assert any(c.startswith("dripcourse_admin=") and "Secure" in c for c in cookies)


def test_a_wrong_password_and_an_unknown_address_look_the_same(live_server, admin):
    with client(live_server) as browser:
        wrong = sign_in(browser, password="not the password")
        unknown = sign_in(browser, email="nobody@clinic.example")
    assert wrong.status_code == unknown.status_code == 400
    message = "That email and password do not match."
    assert message in wrong.text and message in unknown.text
    assert "dripcourse_admin=" not in str(wrong.headers) + str(unknown.headers)


def test_a_sign_in_without_the_form_token_is_refused(live_server, admin):
    with client(live_server) as browser:
        answer = browser.post("/admin/login", data={"email": ADMIN, "password": PASSWORD})
        forged = browser.post(
            "/admin/login", data={"email": ADMIN, "password": PASSWORD, "csrf": "guessed"}
        )
    assert answer.status_code == forged.status_code == 400
    assert "The form had expired" in answer.text


def sign_in_from(browser, client_address, email=ADMIN, password=PASSWORD):
    """A sign-in as if from `client_address` (the live server trusts X-Forwarded-For from
    loopback, as it would from its reverse proxy)."""
    token = form_token(browser)
    return browser.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf": token},
        headers={"x-forwarded-for": client_address},
    )


@pytest.mark.server_settings(signin_rate_per_minute=5)
def test_one_client_guessing_is_slowed_down(live_server, admin):
    with client(live_server) as browser:
        answers = [
            sign_in_from(browser, "192.0.2.1", f"guess{n}@clinic.example", "x" * 12).status_code
            for n in range(6)
        ]
        assert answers == [400] * 5 + [429]
        blocked = sign_in_from(browser, "192.0.2.1")
        # Another client is not held back by that one.
        other = sign_in_from(browser, "192.0.2.2")
    assert blocked.status_code == 429 and blocked.headers["retry-after"] == "60"
    assert "Too many sign-in attempts" in blocked.text
    assert other.status_code == 303


@pytest.mark.server_settings(signin_rate_per_minute=5)
def test_guessing_one_accounts_password_from_many_clients_and_spellings_is_slowed_down(
    live_server, admin
):
    spellings = [
        "ada@clinic.example",
        "ADA@clinic.example",
        "ada@Clinic.Example",
        "ada@clinic\uff0eexample",
        "ada@\uff43linic.example",
    ]
    with client(live_server) as browser:
        answers = [
            sign_in_from(browser, f"192.0.2.{n}", email, "not the password").status_code
            for n, email in enumerate(spellings, start=10)
        ]
        assert answers == [400] * 5
        # The account's allowance is spent: even its right password waits, from a new client.
        blocked = sign_in_from(browser, "192.0.2.99")
    assert blocked.status_code == 429


@pytest.mark.server_settings(signin_rate_per_minute=2)
def test_the_owners_own_sign_ins_do_not_spend_the_accounts_allowance(live_server, admin):
    with client(live_server) as browser:
        answers = [sign_in_from(browser, f"192.0.2.{n}").status_code for n in range(1, 5)]
    assert answers == [303] * 4


def test_a_sign_in_token_made_by_someone_else_is_refused(live_server, admin):
    """A neighbouring site can set a cookie for us; it cannot sign a token with our secret."""
    with client(live_server) as browser:
        browser.cookies.set("dripcourse_signin", "made.up", path="/admin")
        answer = browser.post(
            "/admin/login", data={"email": ADMIN, "password": PASSWORD, "csrf": "made.up"}
        )
    assert answer.status_code == 400 and "The form had expired" in answer.text


def test_dashboard_pages_are_never_framed_nor_cached_and_run_no_inline_script(live_server, admin):
    with client(live_server) as browser:
        pages = [browser.get("/admin/login")]
        sign_in(browser)
        pages.append(browser.get("/admin/"))
    for answer in pages:
        assert answer.headers["x-frame-options"] == "DENY"
        policy = dict(
            part.strip().split(" ", 1)
            for part in answer.headers["content-security-policy"].split(";")
        )
        assert policy["frame-ancestors"] == "'none'"
        assert policy["script-src"] == "'self'"  # no inline script can run
        assert policy["base-uri"] == "'none'" and policy["form-action"] == "'self'"
        assert answer.headers["cache-control"] == "no-store"


def test_sign_out_needs_the_pages_token_and_ends_the_session(live_server, admin):
    with client(live_server) as browser:
        sign_in(browser)
        cookie = browser.cookies["dripcourse_admin"]
        refused = browser.post("/admin/logout", data={"csrf": "not the token"})
        assert refused.status_code == 403
        assert browser.get("/admin/").status_code == 200
        answer = browser.post("/admin/logout", data={"csrf": page_token(browser)})
        assert (answer.status_code, answer.headers["location"]) == (303, "/admin/login")
    # The old cookie, replayed by someone who copied it, opens nothing any more.
    with client(live_server) as replay:
        replay.cookies.set("dripcourse_admin", cookie, path="/admin")
        assert replay.get("/admin/").status_code == 303
    with live_server.database.read() as session:
        assert session.scalar(select(func.count()).select_from(OperatorSession)) == 0


def test_an_expired_session_opens_nothing(live_server, admin):
    with client(live_server) as browser:
        sign_in(browser)
        with live_server.database.transaction() as session:
            session.execute(
                update(OperatorSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert browser.get("/admin/").status_code == 303


@pytest.mark.parametrize(
    "cookie",
    [
        b"",
        b"x",
        b"A" * 43,
        "\u00fc".encode() * 50,
        b"%00" * 10,
        b"a" * 5000,
        b"'; DROP TABLE x; --",
    ],
)
def test_a_forged_session_cookie_opens_nothing(live_server, admin, cookie):
    with client(live_server) as browser:
        answer = browser.get("/admin/", headers={"cookie": b"dripcourse_admin=" + cookie})
    assert answer.status_code == 303


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "a" * 5000, "password": PASSWORD},
        {"email": ADMIN, "password": "p" * 5000},
        {"email": "ada@clinic.example\r\nBcc: x@y", "password": PASSWORD},
        {"email": "\x00", "password": "\x00"},
        {"email": "", "password": ""},
        {"email": ["a", "b"], "password": PASSWORD},
    ],
)
def test_hostile_sign_in_fields_get_an_answer_never_a_500(live_server, admin, fields):
    with client(live_server) as browser:
        token = form_token(browser)
        answer = browser.post("/admin/login", data={**fields, "csrf": token})
    if any(isinstance(v, str) and len(v) > 1024 for v in fields.values()):
        assert answer.status_code == 400 and "request is not complete" in answer.text
    else:
        assert answer.status_code == 400
        assert "That email and password do not match." in answer.text
