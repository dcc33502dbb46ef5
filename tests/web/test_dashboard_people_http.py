"""The dashboard's subscriber pages as scripts and hostile visitors try them: roles enforced on
every action however it is sent, CSRF, paging that never repeats or skips anyone, searches that
are prefixes and nothing more, and every change in the audit log whichever shell made it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest

from dripcourse.app import audit, operators, subscriptions
from dripcourse.domain.roles import Role

PASSWORD = "correct horse battery"


def people(live_server, count: int, names=None) -> None:
    with live_server.database.transaction() as session:
        for number in range(count):
            subscriptions.subscribe(
                session,
                email=f"p{number:03d}@example.com",
                course_slug="runners",
                name=(names or {}).get(number, f"Person {number}"),
                timezone="Europe/Berlin",
                confirmed=True,
                now=datetime.now(UTC),
            )


@contextmanager
def signed_in(live_server, role: Role) -> Iterator[httpx.Client]:
    email = f"{role.value}@clinic.example"
    with live_server.database.transaction() as session:
        operators.add_operator(session, email, role, PASSWORD, datetime.now(UTC), "test set-up")
    with httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=10) as browser:
        page = browser.get("/admin/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        answer = browser.post(
            "/admin/login", data={"email": email, "password": PASSWORD, "csrf": token}
        )
        assert answer.status_code == 303
        yield browser


def token_of(browser: httpx.Client) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', browser.get("/admin/").text).group(1)


def emails_on(page: httpx.Response) -> list[str]:
    return re.findall(r">(p\d{3}@example\.com)</a>", page.text)


def test_paging_goes_through_everyone_once_in_order(live_server):
    people(live_server, 120)
    with signed_in(live_server, Role.VIEWER) as browser:
        seen, url = [], "/admin/subscribers"
        while url:
            page = browser.get(url)
            assert page.status_code == 200
            seen += emails_on(page)
            found = re.search(r'href="(/admin/subscribers\?[^"]+)">Next page', page.text)
            url = found.group(1).replace("&amp;", "&") if found else ""
    assert seen == [f"p{n:03d}@example.com" for n in range(120)]


def test_a_search_is_a_prefix_of_the_address_or_the_name_and_nothing_more(live_server):
    people(live_server, 12, names={3: "Ada Lovelace", 4: "100% Ada", 5: "A_da"})
    with signed_in(live_server, Role.VIEWER) as browser:
        assert emails_on(browser.get("/admin/subscribers", params={"q": "P01"})) == [
            "p010@example.com",
            "p011@example.com",
        ]
        assert emails_on(browser.get("/admin/subscribers", params={"q": "ada"})) == [
            "p003@example.com"
        ]
        # LIKE's wildcards are only characters here.
        assert emails_on(browser.get("/admin/subscribers", params={"q": "100%"})) == [
            "p004@example.com"
        ]
        assert emails_on(browser.get("/admin/subscribers", params={"q": "%"})) == []
        assert emails_on(browser.get("/admin/subscribers", params={"q": "a_"})) == [
            "p005@example.com"
        ]


@pytest.mark.parametrize(
    ("params", "says"),
    [({"course": "no-such-course"}, "no-such-course"), ({"status": "<b>gone"}, "unknown status")],
)
def test_an_unknown_filter_is_said_not_shown_as_everyone_or_no_one(live_server, params, says):
    people(live_server, 2)
    with signed_in(live_server, Role.VIEWER) as browser:
        page = browser.get("/admin/subscribers", params=params)
    assert page.status_code == 400 and says in page.text and emails_on(page) == []
    assert "<b>gone" not in page.text


def test_names_with_accents_are_found_in_any_case(live_server):
    people(live_server, 3, names={0: "Émile Zola", 1: "ÖLAF", 2: "Emil"})
    with signed_in(live_server, Role.VIEWER) as browser:
        for typed, found in [("émile", [0]), ("ÉMILE", [0]), ("ölaf", [1]), ("Emi", [2])]:
            page = browser.get("/admin/subscribers", params={"q": typed})
            assert emails_on(page) == [f"p{n:03d}@example.com" for n in found], typed


def test_a_viewer_sees_a_subscriber_but_no_action_succeeds_even_posted_by_hand(live_server):
    people(live_server, 1)
    with signed_in(live_server, Role.VIEWER) as browser:
        page = browser.get("/admin/subscribers/1")
        assert page.status_code == 200 and "p000@example.com" in page.text
        assert "Pause</button>" not in page.text
        for action in ("pause", "resume", "unsubscribe"):
            answer = browser.post(
                f"/admin/subscribers/1/enrollments/runners/{action}",
                data={"csrf": token_of(browser)},
            )
            assert answer.status_code == 403
        assert browser.get("/admin/audit").status_code == 403
    assert live_server.enrollment_status("p000@example.com") == "active"


def test_an_action_without_the_pages_token_is_refused(live_server):
    people(live_server, 1)
    with signed_in(live_server, Role.EDITOR) as browser:
        for data in ({}, {"csrf": "guessed"}):
            answer = browser.post("/admin/subscribers/1/enrollments/runners/pause", data=data)
            assert answer.status_code == 403
    assert live_server.enrollment_status("p000@example.com") == "active"


def test_an_editor_pauses_and_a_conflict_is_said_next_to_the_course(live_server):
    people(live_server, 1)
    with signed_in(live_server, Role.EDITOR) as browser:
        url = "/admin/subscribers/1/enrollments/runners"
        done = browser.post(f"{url}/pause", data={"csrf": token_of(browser)})
        assert (done.status_code, done.headers["location"]) == (303, "/admin/subscribers/1")
        again = browser.post(f"{url}/pause", data={"csrf": token_of(browser)})
        assert again.status_code == 409 and 'role="alert"' in again.text
        assert browser.get("/admin/audit").status_code == 403
    assert live_server.enrollment_status("p000@example.com") == "paused"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/admin/subscribers/999999", 404),
        ("/admin/subscribers/0", 400),
        ("/admin/subscribers/99999999999999999999999", 400),
        ("/admin/subscribers/abc", 400),
    ],
)
def test_a_page_that_is_not_there_is_a_4xx(live_server, path, status):
    with signed_in(live_server, Role.VIEWER) as browser:
        assert browser.get(path).status_code == status


def test_hostile_actions_are_4xx_and_change_nothing(live_server):
    people(live_server, 1)
    with signed_in(live_server, Role.ADMIN) as browser:
        token = token_of(browser)
        for path in [
            "/admin/subscribers/1/enrollments/runners/delete",
            "/admin/subscribers/1/enrollments/no-such-course/pause",
            "/admin/subscribers/1/enrollments/" + "x" * 500 + "/pause",
            "/admin/subscribers/2/enrollments/runners/pause",
        ]:
            assert 400 <= browser.post(path, data={"csrf": token}).status_code < 500
    assert live_server.enrollment_status("p000@example.com") == "active"


def test_changes_from_the_dashboard_the_api_and_the_command_line_are_all_audited(
    live_server, cli_env, monkeypatch
):
    people(live_server, 1)
    with signed_in(live_server, Role.ADMIN) as browser:
        browser.post(
            "/admin/subscribers/1/enrollments/runners/pause", data={"csrf": token_of(browser)}
        )
    with live_server.database.transaction() as session:
        subscriptions.resume_enrollment(
            session, 1, "runners", datetime.now(UTC), actor=audit.API_ACTOR
        )
    from dripcourse.cli.main import main

    monkeypatch.setenv("DRIPCOURSE_DATABASE_URL", live_server.settings.database_url)
    with pytest.raises(SystemExit) as ended:
        main(["pause", "p000@example.com", "--course", "runners"])
    assert ended.value.code == 0
    with live_server.database.read() as session:
        entries = audit.entries(session, actions=audit.SUBSCRIBER_ACTIONS)
        log = [(e.actor.split(" (")[0], e.action, e.target) for e in entries]
    assert log == [
        ("command line", "paused", "p000@example.com"),
        ("API", "resumed", "p000@example.com"),
        ("operator admin@clinic.example", "paused", "p000@example.com"),
    ]


def test_a_failed_action_says_why_on_the_page(live_server):
    people(live_server, 1)
    with signed_in(live_server, Role.EDITOR) as browser:
        token = token_of(browser)
        not_enrolled = browser.post(
            "/admin/subscribers/1/enrollments/no-such-course/pause", data={"csrf": token}
        )
        resumed_while_active = browser.post(
            "/admin/subscribers/1/enrollments/runners/resume", data={"csrf": token}
        )
    assert not_enrolled.status_code == 404 and 'role="alert"' in not_enrolled.text
    assert resumed_while_active.status_code == 409
    assert (
        "nothing to resume" in resumed_while_active.text
        or "not paused" in resumed_while_active.text
    )


def test_unsubscribing_twice_is_one_change_in_the_log(live_server):
    people(live_server, 1)
    with signed_in(live_server, Role.EDITOR) as browser:
        for _ in range(3):
            answer = browser.post(
                "/admin/subscribers/1/enrollments/runners/unsubscribe",
                data={"csrf": token_of(browser)},
            )
            assert answer.status_code == 303
    with live_server.database.read() as session:
        assert [e.action for e in audit.entries(session, actions=audit.SUBSCRIBER_ACTIONS)] == [
            "unsubscribed"
        ]


def test_a_subscribers_page_shows_only_what_was_done_to_them(live_server):
    """An operator who is also a subscriber: changes to their account are for admins."""
    people(live_server, 1)
    with live_server.database.transaction() as session:
        operators.add_operator(
            session, "p000@example.com", Role.VIEWER, PASSWORD, datetime.now(UTC), "test set-up"
        )
    with signed_in(live_server, Role.EDITOR) as browser:
        browser.post(
            "/admin/subscribers/1/enrollments/runners/pause", data={"csrf": token_of(browser)}
        )
        page = browser.get("/admin/subscribers/1").text
    assert "paused" in page and "operator added" not in page


def test_forgetting_a_person_takes_their_address_out_of_the_audit_log(live_server):
    from dripcourse.app import people as people_ops

    people(live_server, 1)
    with signed_in(live_server, Role.ADMIN) as browser:
        browser.post(
            "/admin/subscribers/1/enrollments/runners/pause", data={"csrf": token_of(browser)}
        )
        with live_server.database.transaction() as session:
            people_ops.forget(session, "P000@example.com", datetime.now(UTC), actor=audit.API_ACTOR)
        log = browser.get("/admin/audit").text
    assert "p000@example.com" not in log.lower() and audit.FORGOTTEN in log


def test_a_lesson_queued_at_a_time_in_their_zone_is_due_then_in_utc(live_server):
    from sqlalchemy import select

    from dripcourse.store.models import Delivery

    people(live_server, 1)  # in Europe/Berlin
    with signed_in(live_server, Role.EDITOR) as browser:
        answer = browser.post(
            "/admin/subscribers/1/enrollments/runners/queue",
            data={"csrf": token_of(browser), "lesson": "4", "at": "2030-07-01T09:30"},
        )
    assert answer.status_code == 303
    with live_server.database.read() as session:
        due = session.scalar(select(Delivery.due_at).where(Delivery.kind == "extra"))
        [entry] = audit.entries(session, actions=["lesson queued"])
    assert due == datetime(2030, 7, 1, 7, 30, tzinfo=UTC)  # 09:30 summer time in Berlin
    assert entry.detail == "lesson 4 (knees) of runners, due 2030-07-01 07:30 UTC"


@pytest.mark.parametrize(
    ("fields", "status", "says"),
    [
        ({"lesson": "99", "at": ""}, 404, "99"),
        ({"lesson": "2", "at": "next tuesday"}, 400, "not a date and time"),
        ({"lesson": "2", "at": "2030-13-40T99:99"}, 400, "not a date and time"),
    ],
)
def test_a_bad_queue_form_comes_back_with_the_reason(live_server, fields, status, says):
    people(live_server, 1)
    with signed_in(live_server, Role.EDITOR) as browser:
        answer = browser.post(
            "/admin/subscribers/1/enrollments/runners/queue",
            data={"csrf": token_of(browser), **fields},
        )
    assert answer.status_code == status and says in answer.text and 'role="alert"' in answer.text
    with live_server.database.read() as session:
        assert audit.entries(session, actions=["lesson queued"]) == []


def test_a_viewer_cannot_queue_a_lesson(live_server):
    people(live_server, 1)
    with signed_in(live_server, Role.VIEWER) as browser:
        answer = browser.post(
            "/admin/subscribers/1/enrollments/runners/queue",
            data={"csrf": token_of(browser), "lesson": "2"},
        )
        assert "Queue a lesson" not in browser.get("/admin/subscribers/1").text
    assert answer.status_code == 403


def test_a_lesson_queued_from_the_command_line_is_audited(live_server, cli_env, monkeypatch):
    from dripcourse.cli.main import main

    people(live_server, 1)
    monkeypatch.setenv("DRIPCOURSE_DATABASE_URL", live_server.settings.database_url)
    with pytest.raises(SystemExit) as ended:
        main(["lessons", "queue", "runners", "2", "--to", "P000@example.com"])
    assert ended.value.code == 0
    with live_server.database.read() as session:
        [entry] = audit.entries(session, actions=["lesson queued"])
    assert entry.actor.startswith("command line (") and entry.target == "p000@example.com"
    assert entry.detail.startswith("lesson 2 (ankles) of runners, due ")
