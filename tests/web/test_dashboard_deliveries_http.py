"""The Deliveries page as scripts and hostile servers try it: a mail server's reason is shown as
text, never as markup; "retry now" is for editors and admins only, however it is sent, and needs
the page's token; a delivery already sent is refused on the page; bad ids get a 4xx, never a 500."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update
from test_dashboard_people_http import people, signed_in, token_of

from dripcourse.app import audit
from dripcourse.domain.roles import Role
from dripcourse.store.models import Delivery, Enrollment, Lesson, Subscriber, Suppression

HOSTILE = '<script>alert("owned")</script><img src=x onerror=alert(1)> 550 mailbox full'


def owe_lesson_one(live_server, email: str, status: str, attempts: int, error: str = "") -> int:
    """A delivery of lesson 1 to `email` in the given state, as the dispatcher would leave it."""
    now = datetime.now(UTC)
    with live_server.database.transaction() as session:
        enrollment = session.scalars(
            select(Enrollment).join(Subscriber).where(Subscriber.email == email)
        ).one()
        lesson = session.scalars(
            select(Lesson).where(Lesson.course_id == enrollment.course_id, Lesson.position == 1)
        ).one()
        delivery = Delivery(
            enrollment_id=enrollment.id,
            lesson_id=lesson.id,
            kind="lesson",
            status=status,
            due_at=now - timedelta(days=4),
            next_attempt_at=now + timedelta(hours=6),
            attempts=attempts,
            first_attempt_at=now - timedelta(days=4) if attempts else None,
            last_attempt_at=now - timedelta(hours=1) if attempts else None,
            sent_at=now if status == "sent" else None,
            smtp_code=451 if error else None,
            last_error=error or None,
            # A well-formed id: the woken scheduler may send it, and a malformed one would fail.
            message_id=f"<{uuid.uuid4().hex}@test.example>",
            created_at=now - timedelta(days=4),
        )
        session.add(delivery)
        session.flush()
        session.execute(
            update(Enrollment).where(Enrollment.id == enrollment.id).values(next_due_at=None)
        )
        return delivery.id


def retry_form_ids(page_text: str) -> list[int]:
    return [int(n) for n in re.findall(r'action="/admin/deliveries/(\d+)/retry"', page_text)]


def test_the_servers_reason_is_shown_as_text_and_a_viewer_gets_no_button(live_server):
    people(live_server, 1)
    failed = owe_lesson_one(live_server, "p000@example.com", "failed", 3, HOSTILE)
    with signed_in(live_server, Role.VIEWER) as browser:
        page = browser.get("/admin/deliveries")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in page.text
    assert 'href="/admin/subscribers/1">p000@example.com</a>' in page.text
    assert "3 attempts" in page.text and "451" in page.text
    assert retry_form_ids(page.text) == [] and failed > 0


def test_an_editor_retries_and_the_entry_is_on_the_persons_page(live_server):
    people(live_server, 1)
    waiting = owe_lesson_one(live_server, "p000@example.com", "pending", 1, "451 try later")
    with signed_in(live_server, Role.EDITOR) as browser:
        page = browser.get("/admin/deliveries")
        assert retry_form_ids(page.text) == [waiting]
        assert "America" not in page.text and "Europe/Berlin" in page.text  # their zone
        answer = browser.post(
            f"/admin/deliveries/{waiting}/retry", data={"csrf": token_of(browser)}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/admin/deliveries#delivery-{waiting}"
        person = browser.get("/admin/subscribers/1").text
    assert "delivery retried" in person and "operator editor@clinic.example" in person
    with live_server.database.read() as session:
        delivery = session.get(Delivery, waiting)
        assert delivery is not None and delivery.status in ("pending", "sending", "sent")
        assert delivery.next_attempt_at <= datetime.now(UTC)


def test_a_viewer_posting_by_hand_with_a_valid_token_is_refused(live_server):
    people(live_server, 1)
    failed = owe_lesson_one(live_server, "p000@example.com", "failed", 2, "gave up")
    with signed_in(live_server, Role.VIEWER) as browser:
        answer = browser.post(f"/admin/deliveries/{failed}/retry", data={"csrf": token_of(browser)})
    assert answer.status_code == 403
    with live_server.database.read() as session:
        delivery = session.get(Delivery, failed)
        assert delivery is not None and delivery.status == "failed"
        assert audit.entries(session, actions=["delivery retried"]) == []


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
def test_a_retry_without_the_pages_token_is_refused(live_server, token):
    people(live_server, 1)
    failed = owe_lesson_one(live_server, "p000@example.com", "failed", 2, "gave up")
    with signed_in(live_server, Role.ADMIN) as browser:
        data = {} if token is None else {"csrf": token}
        answer = browser.post(f"/admin/deliveries/{failed}/retry", data=data)
    assert answer.status_code == 403
    with live_server.database.read() as session:
        delivery = session.get(Delivery, failed)
        assert delivery is not None and delivery.status == "failed"


def test_signed_out_the_page_and_the_retry_send_you_to_sign_in(live_server):
    with httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=10) as browser:
        for answer in (
            browser.get("/admin/deliveries"),
            browser.post("/admin/deliveries/1/retry", data={"csrf": "x"}),
        ):
            assert answer.status_code == 303 and answer.headers["location"] == "/admin/login"


def test_a_sent_delivery_is_refused_on_the_page_with_the_reason(live_server):
    people(live_server, 2)
    failed = owe_lesson_one(live_server, "p000@example.com", "failed", 2, "gave up")
    sent = owe_lesson_one(live_server, "p001@example.com", "sent", 1)
    with signed_in(live_server, Role.EDITOR) as browser:
        answer = browser.post(f"/admin/deliveries/{sent}/retry", data={"csrf": token_of(browser)})
    assert answer.status_code == 409
    assert "was already sent; it is never sent twice" in answer.text
    assert retry_form_ids(answer.text) == [failed]  # the page, with what can be retried
    with live_server.database.read() as session:
        delivery = session.get(Delivery, sent)
        assert delivery is not None and delivery.status == "sent"


def test_a_suppressed_persons_delivery_is_refused_beside_it(live_server):
    people(live_server, 1)
    failed = owe_lesson_one(live_server, "p000@example.com", "failed", 1, "550 no such user")
    with live_server.database.transaction() as session:
        session.add(
            Suppression(
                email="p000@example.com",
                reason="hard_bounce",
                detail="550 5.1.1 <b>no</b> such user",
                created_at=datetime.now(UTC),
            )
        )
    with signed_in(live_server, Role.EDITOR) as browser:
        page = browser.get("/admin/deliveries")
        assert "Suppressed after a bounce or complaint" in page.text
        assert "&lt;b&gt;no&lt;/b&gt; such user" in page.text
        answer = browser.post(f"/admin/deliveries/{failed}/retry", data={"csrf": token_of(browser)})
    assert answer.status_code == 409
    row = re.search(rf'<tr id="delivery-{failed}">.*?</tr>', answer.text, re.S)
    assert row is not None and "suppressed after a hard bounce" in row.group(0)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/admin/deliveries/999/retry", 404),
        ("/admin/deliveries/0/retry", 400),
        ("/admin/deliveries/-1/retry", 400),
        ("/admin/deliveries/abc/retry", 400),
        ("/admin/deliveries/99999999999999999999999/retry", 400),
    ],
)
def test_bad_ids_get_a_4xx_never_a_500(live_server, path, status):
    people(live_server, 1)
    with signed_in(live_server, Role.EDITOR) as browser:
        answer = browser.post(path, data={"csrf": token_of(browser)})
        assert answer.status_code == status
        if status == 404:
            assert "no delivery with id 999" in answer.text
        for query in ("abc", "0", "-5", "1e9", "99999999999999999999999"):
            assert browser.get("/admin/deliveries", params={"before": query}).status_code == 400


def test_paging_goes_through_every_delivery_in_trouble_once(live_server):
    people(live_server, 60)
    made = [
        owe_lesson_one(live_server, f"p{n:03d}@example.com", "failed", 1, "gave up")
        for n in range(60)
    ]
    with signed_in(live_server, Role.EDITOR) as browser:
        seen, url = [], "/admin/deliveries"
        while url:
            page = browser.get(url)
            assert page.status_code == 200
            seen += retry_form_ids(page.text)
            found = re.search(r'href="(/admin/deliveries\?before=\d+)">Older deliveries', page.text)
            url = found.group(1) if found else ""
    assert seen == sorted(made, reverse=True)


def test_recent_bounces_and_suppressions_are_listed_newest_first(live_server):
    people(live_server, 3)
    now = datetime.now(UTC)
    for number, (kind, hours_ago) in enumerate([("soft", 3), ("hard", 1)]):
        delivery = owe_lesson_one(live_server, f"p00{number}@example.com", "sent", 1)
        with live_server.database.transaction() as session:
            session.execute(
                update(Delivery)
                .where(Delivery.id == delivery)
                .values(bounce=kind, bounced_at=now - timedelta(hours=hours_ago))
            )
    with live_server.database.transaction() as session:
        session.add_all(
            [
                Suppression(
                    email="p002@example.com",
                    reason="complaint",
                    detail="complaint (abuse)",
                    created_at=now - timedelta(hours=2),
                ),
                Suppression(
                    email=None,
                    email_hash="0" * 64,
                    reason="hard_bounce",
                    created_at=now - timedelta(hours=1),
                ),
                Suppression(email="left@example.com", reason="unsubscribed", created_at=now),
            ]
        )
    with signed_in(live_server, Role.VIEWER) as browser:
        page = browser.get("/admin/deliveries").text
    bounces = page[page.index("Recent bounces") : page.index("Suppressed after")]
    assert re.findall(r">(p\d{3}@example\.com)</a>", bounces) == [
        "p001@example.com",
        "p000@example.com",
    ]
    assert '<td data-label="Kind">hard</td>' in bounces
    suppressed = page[page.index("Suppressed after") :]
    assert suppressed.index("a forgotten person") < suppressed.index("p002@example.com")
    assert "complaint" in suppressed and "left@example.com" not in suppressed
