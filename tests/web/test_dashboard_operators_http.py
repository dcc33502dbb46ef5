"""The Operators page and the invitation link as scripts and hostile visitors try them: admins
only, every refusal beside its field or row, a link that works once, and a person's details and
erasure from their page, each in the audit log."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from test_dashboard_people_http import people, signed_in, token_of

from dripcourse.app import audit, operators
from dripcourse.domain.roles import Role
from dripcourse.store.models import Operator, Subscriber

PASSWORD = "correct horse battery"


def invitation_link(inbox, address: str) -> str:
    message = inbox.wait_for(address, "Your dripcourse dashboard account")
    return re.search(r"http://\S+/admin/invitation\?token=\S+", inbox.text_of(message)).group(0)


def field_error(page: httpx.Response, field: str) -> str:
    found = re.search(rf'id="{field}-error">([^<]*)<', page.text)
    return html.unescape(found.group(1)) if found else ""


def choose(live_server, link: str, password: str, repeat: str | None = None) -> httpx.Response:
    """Open the emailed link in a fresh browser and send the form as a person would."""
    with httpx.Client(base_url=live_server.url, timeout=10) as browser:
        form = browser.get(link)
        assert form.status_code == 200, form.text
        token = re.search(r'name="token" value="([^"]+)"', form.text).group(1)
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        return browser.post(
            "/admin/invitation",
            data={
                "token": token,
                "csrf": csrf,
                "password": password,
                "repeat": password if repeat is None else repeat,
            },
        )


def test_an_admin_invites_an_editor_who_chooses_a_password_and_signs_in(live_server, inbox):
    with signed_in(live_server, Role.ADMIN) as admin:
        answer = admin.post(
            "/admin/operators",
            data={"email": "Bo@Clinic.example", "role": "editor", "csrf": token_of(admin)},
        )
        assert answer.status_code == 200
        assert "Invited Bo@clinic.example as editor" in answer.text
        assert "invited, no password yet" in answer.text
    link = invitation_link(inbox, "Bo@clinic.example")

    assert field_error(choose(live_server, link, PASSWORD, "another one!!"), "repeat") == (
        "The two passwords are not the same."
    )
    assert "too short" in field_error(choose(live_server, link, "short"), "password")
    done = choose(live_server, link, PASSWORD)
    assert done.status_code == 200 and "Your password is set" in done.text
    used = choose_again = httpx.get(link, timeout=10)
    assert used.status_code == 400 and "used already" in choose_again.text

    with live_server.database.read() as session:
        said = [(e.action, e.target) for e in audit.entries(session, limit=3)]
    assert said == [
        ("password chosen", "Bo@clinic.example"),
        ("invitation sent", "Bo@clinic.example"),
        ("operator added", "Bo@clinic.example"),
    ]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR])
def test_only_admins_see_or_change_operators_even_by_hand(live_server, role):
    with live_server.database.transaction() as session:
        other = operators.add_operator(
            session, "other@clinic.example", Role.ADMIN, PASSWORD, datetime.now(UTC), "set-up"
        )
        other_id = other.id
    with signed_in(live_server, role) as browser:
        token = token_of(browser)
        assert browser.get("/admin/operators").status_code == 403
        assert "/admin/operators" not in browser.get("/admin/").text
        tries = [
            ("/admin/operators", {"email": "x@clinic.example", "role": "admin"}),
            (f"/admin/operators/{other_id}/role", {"role": "viewer"}),
            (f"/admin/operators/{other_id}/remove", {}),
            (f"/admin/operators/{other_id}/invite", {}),
        ]
        for path, data in tries:
            assert browser.post(path, data={**data, "csrf": token}).status_code == 403, path
    with live_server.database.read() as session:
        assert {(o.email, o.role) for o in operators.list_operators(session)} == {
            (f"{role.value}@clinic.example", role.value),
            ("other@clinic.example", "admin"),
        }


def test_a_form_without_its_token_changes_nothing(live_server):
    with signed_in(live_server, Role.ADMIN) as admin:
        for data in ({}, {"csrf": "forged"}):
            answer = admin.post(
                "/admin/operators", data={"email": "x@clinic.example", "role": "viewer", **data}
            )
            assert answer.status_code == 403
    with live_server.database.read() as session:
        assert session.scalar(select(Operator).where(Operator.email == "x@clinic.example")) is None


def test_refusals_are_shown_beside_their_field_or_row(live_server):
    with signed_in(live_server, Role.ADMIN) as admin:
        token = token_of(admin)
        bad_address = admin.post(
            "/admin/operators", data={"email": "not an address", "role": "viewer", "csrf": token}
        )
        assert bad_address.status_code == 400
        assert "not a valid email address" in field_error(bad_address, "invite-email")
        bad_role = admin.post(
            "/admin/operators", data={"email": "x@clinic.example", "role": "owner", "csrf": token}
        )
        assert bad_role.status_code == 400
        assert "unknown role 'owner'" in field_error(bad_role, "invite-role")
        again = admin.post(
            "/admin/operators",
            data={"email": "ADMIN@clinic.example", "role": "viewer", "csrf": token},
        )
        assert again.status_code == 409
        assert "is an operator already" in field_error(again, "invite-email")

        with live_server.database.read() as session:
            me = operators.find_operator(session, "admin@clinic.example").id
        last = admin.post(f"/admin/operators/{me}/role", data={"role": "viewer", "csrf": token})
        assert last.status_code == 409
        row = re.search(rf'id="operator-{me}">(.*?)</li>', last.text, re.S).group(1)
        assert "is the last admin" in row
        assert admin.post("/admin/operators/999/remove", data={"csrf": token}).status_code == 404
        assert admin.post(f"/admin/operators/{me}/drop", data={"csrf": token}).status_code in (
            404,
            405,
        )


def test_an_admin_changes_a_role_and_removes_an_operator(live_server):
    with live_server.database.transaction() as session:
        bo = operators.add_operator(
            session, "bo@clinic.example", Role.VIEWER, PASSWORD, datetime.now(UTC), "set-up"
        ).id
    with signed_in(live_server, Role.ADMIN) as admin:
        token = token_of(admin)
        promoted = admin.post(f"/admin/operators/{bo}/role", data={"role": "editor", "csrf": token})
        assert "bo@clinic.example is now editor." in promoted.text
        removed = admin.post(f"/admin/operators/{bo}/remove", data={"csrf": token})
        assert "Removed bo@clinic.example." in removed.text
    with live_server.database.read() as session:
        said = [(e.actor, e.action, e.detail) for e in audit.entries(session, limit=2)]
    assert said == [
        ("operator admin@clinic.example", "operator removed", ""),
        ("operator admin@clinic.example", "role changed", "viewer -> editor"),
    ]


@pytest.mark.parametrize(
    "token", ["", "x", "a.b.c", "%00", "é" * 50, "eyJvIjoxfQ.AAAAAA.AAAA", "x" * 399]
)
def test_a_forged_link_is_refused_with_a_page_never_a_crash(live_server, token):
    answer = httpx.get(f"{live_server.url}/admin/invitation", params={"token": token}, timeout=10)
    assert answer.status_code == 400
    assert "not valid" in answer.text
    sent = httpx.post(
        f"{live_server.url}/admin/invitation",
        data={"token": token, "password": PASSWORD, "repeat": PASSWORD, "csrf": "x"},
        timeout=10,
    )
    assert sent.status_code == 400


def test_an_editor_changes_a_persons_details_and_the_page_says_who_did(live_server):
    people(live_server, 1)
    with live_server.database.read() as session:
        person = session.scalar(select(Subscriber.id))
    with signed_in(live_server, Role.EDITOR) as editor:
        token = token_of(editor)
        page = f"/admin/subscribers/{person}"
        bad_zone = editor.post(
            f"{page}/details", data={"name": "Ada", "timezone": "Mars/Olympus", "csrf": token}
        )
        assert bad_zone.status_code == 400
        assert "unknown time zone 'Mars/Olympus'" in field_error(bad_zone, "timezone")
        assert 'value="Mars/Olympus"' in bad_zone.text  # what was typed comes back
        bad_name = editor.post(
            f"{page}/details",
            data={"name": "Ada\r\nBcc: x@evil.example", "timezone": "Asia/Tokyo", "csrf": token},
        )
        assert bad_name.status_code == 400
        assert "line breaks" in field_error(bad_name, "name")
        good = editor.post(
            f"{page}/details",
            data={"name": " Ada  Lovelace ", "timezone": "Asia/Tokyo", "csrf": token},
        )
        assert good.status_code == 303
        shown = editor.get(page).text
    assert "<dd>Ada Lovelace</dd>" in shown and "Asia/Tokyo" in shown
    assert "details changed" in shown and "time zone Europe/Berlin -&gt; Asia/Tokyo" in shown


def test_forgetting_takes_the_address_typed_again_and_leaves_only_an_entry(live_server):
    people(live_server, 1)
    with live_server.database.read() as session:
        person = session.scalar(select(Subscriber.id))
    with signed_in(live_server, Role.EDITOR) as editor:
        token = token_of(editor)
        wrong = editor.post(
            f"/admin/subscribers/{person}/forget", data={"confirm": "p001@", "csrf": token}
        )
        assert wrong.status_code == 400
        assert "type p000@example.com exactly" in field_error(wrong, "confirm")
        done = editor.post(
            f"/admin/subscribers/{person}/forget",
            data={"confirm": " P000@EXAMPLE.com ", "csrf": token},
        )
        assert done.status_code == 303
        assert "was forgotten" in editor.get(done.headers["location"]).text
        assert editor.get(f"/admin/subscribers/{person}").status_code == 404
    with live_server.database.read() as session:
        assert session.scalar(select(Subscriber.id)) is None
        entries = [(e.actor, e.action, e.target) for e in audit.entries(session)]
    assert ("operator editor@clinic.example", "forgotten", audit.FORGOTTEN) in entries
    assert not [entry for entry in entries if "p000" in entry[2].lower()]


def test_a_viewer_can_neither_change_details_nor_forget_even_by_hand(live_server):
    people(live_server, 1)
    with live_server.database.read() as session:
        person = session.scalar(select(Subscriber.id))
    with signed_in(live_server, Role.VIEWER) as viewer:
        token = token_of(viewer)
        page = viewer.get(f"/admin/subscribers/{person}").text
        assert "Forget this person" not in page and "Change name" not in page
        for action, data in (
            ("details", {"name": "X", "timezone": "UTC"}),
            ("forget", {"confirm": "p000@example.com"}),
        ):
            answer = viewer.post(
                f"/admin/subscribers/{person}/{action}", data={**data, "csrf": token}
            )
            assert answer.status_code == 403
    with live_server.database.read() as session:
        assert session.scalar(select(Subscriber.name)) == "Person 0"


def test_an_admin_who_steps_down_leaves_the_operators_page(live_server):
    with live_server.database.transaction() as session:
        operators.add_operator(
            session, "other@clinic.example", Role.ADMIN, PASSWORD, datetime.now(UTC), "set-up"
        )
    with signed_in(live_server, Role.ADMIN) as admin:
        with live_server.database.read() as session:
            me = operators.find_operator(session, "admin@clinic.example").id
        answer = admin.post(
            f"/admin/operators/{me}/role", data={"role": "viewer", "csrf": token_of(admin)}
        )
        assert (answer.status_code, answer.headers["location"]) == (303, "/admin/")
        assert admin.get("/admin/operators").status_code == 403


def test_a_sign_in_form_sent_from_another_origin_is_refused(live_server):
    with live_server.database.transaction() as session:
        operators.add_operator(
            session, "ed@clinic.example", Role.EDITOR, PASSWORD, datetime.now(UTC), "set-up"
        )
    with httpx.Client(base_url=live_server.url, timeout=10) as browser:
        token = re.search(r'name="csrf" value="([^"]+)"', browser.get("/admin/login").text).group(1)
        fields = {"email": "ed@clinic.example", "password": PASSWORD, "csrf": token}
        planted = browser.post(
            "/admin/login", data=fields, headers={"Origin": "https://evil.clinic.example"}
        )
        assert planted.status_code == 400 and "The form had expired" in planted.text
        token = re.search(r'name="csrf" value="([^"]+)"', planted.text).group(1)
        fields["csrf"] = token
        ours = browser.post("/admin/login", data=fields, headers={"Origin": live_server.url})
        assert ours.status_code == 303
