"""The dashboard's course pages as operators, scripts and hostile visitors use them: the report on a
course's page is the one `dripcourse report` prints, after real sends, failures, a bounce and
unsubscribes; the calendar in a chosen zone; a lesson as the preview shows it; "send a test to me"
for editors and admins only, with its CSRF token, audited; whatever is typed into the address bar,
an HTML page and never a 500."""

from __future__ import annotations

import mailbox
import re
import shutil
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import make_msgid
from html import unescape
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import httpx
import pytest
from test_dashboard_people_http import people, signed_in, token_of

from dripcourse.app import audit, subscriptions
from dripcourse.app.bounces import process_mailbox
from dripcourse.app.report import course_report
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.devtools.smtpserver import ReceivedMessage
from dripcourse.domain.roles import Role

NAMES = ["ada", "bruno", "chiara", "dmitri", "emma", "farid"]


class Tables(HTMLParser):
    """Every table of a page, as rows of cell texts (tags dropped, spaces collapsed), as a wide
    screen shows them, or a phone (`phone=True`): the pages' CSS hides `wide-only` parts on a
    phone and `narrow-only` (and `narrow-block`) ones on a wide screen."""

    def __init__(self, page: str, phone: bool = False) -> None:
        super().__init__()
        self.hidden_class = "wide-only" if phone else "narrow-"
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._hiding: str | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._hiding:
            return
        if self.hidden_class in (dict(attrs).get("class") or ""):
            self._hiding = tag
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if self._hiding:
            # The hidden parts are cells or spans with no element of their kind inside.
            self._hiding = None if tag == self._hiding else self._hiding
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None and not self._hiding:
            self._cell.append(data)


def address(name: str) -> str:
    return f"{name}@example.com"


def received(live_server, smtpd, name: str, number: int) -> ReceivedMessage:
    [found] = [
        m
        for m in smtpd.messages
        if address(name) in m.rcpt_tos and str(m.message["Subject"]).startswith(f"Lesson {number}:")
    ]
    return found


def hard_bounce_of(original: ReceivedMessage) -> bytes:
    """An RFC 3464 report, sent back to the message's VERP envelope sender."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.com>"
    report["To"] = original.mail_from
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Message-ID"] = make_msgid(domain="mx.example.com")
    report.attach(MIMEText("Your message could not be delivered.\n"))
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; mx.example.com"
    per_recipient["Final-Recipient"] = f"rfc822; {original.rcpt_tos[0]}"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = "5.1.1"
    per_recipient["Diagnostic-Code"] = "smtp; 550 5.1.1 mailbox unavailable"
    status = MIMEBase("message", "delivery-status")
    status.set_payload([per_message, per_recipient])
    report.attach(status)
    report.attach(MIMEMessage(original.message))
    return report.as_bytes()


def leave(live_server, name: str, at: datetime) -> None:
    """`name` unsubscribes from the course at `at` (`dripcourse unsubscribe --course`), in the
    passes' time rather than the live server's, which runs on the real clock."""
    with live_server.database.transaction() as session:
        subscriptions.unsubscribe(session, address(name), at, "runners")


def test_every_synced_course_is_listed_with_its_lessons_and_active_subscribers(live_server):
    people(live_server, 3)
    with live_server.database.transaction() as session:
        subscriptions.pause_enrollment(session, 1, "runners", datetime.now(UTC))
    with signed_in(live_server, Role.VIEWER) as browser:
        page = browser.get("/admin/courses")
    assert page.status_code == 200
    [table] = Tables(page.text).tables
    assert table[0] == ["Course", "Slug", "Lessons", "Active subscribers"]
    assert table[1] == ["Runners E-Course", "runners", "10", "2"]
    # A phone has no room for the slug's column: it is under the title.
    assert Tables(page.text, phone=True).tables[0][1] == ["Runners E-Course (runners)", "10", "2"]
    assert 'href="/admin/courses/runners"' in page.text
    assert 'aria-current="page">Courses</a>' in page.text


@pytest.mark.both_databases
def test_the_report_on_the_page_is_the_one_the_report_command_prints(live_server, smtpd, tmp_path):
    # In the future of the live server's own scheduler (it runs on the real clock), so that the
    # passes below, each as of its instant, are the only ones that send.
    start = datetime.now(UTC) + timedelta(days=1)
    with live_server.database.transaction() as session:
        for name in NAMES:
            subscriptions.subscribe(
                session,
                email=address(name),
                course_slug="runners",
                name=name.title(),
                timezone="America/Toronto",
                confirmed=True,
                now=start,
            )
    # Lesson 1: dmitri's mailbox does not exist; bruno's bounces a day later; chiara leaves.
    smtpd.fail_recipient(address("dmitri"))
    live_server.dispatch_as_of(start + timedelta(days=2))
    folder = tmp_path / "Maildir"
    mailbox.Maildir(folder, create=True).add(
        hard_bounce_of(received(live_server, smtpd, "bruno", 1))
    )
    bounces = process_mailbox(
        live_server.database, folder, start + timedelta(days=3), live_server.settings
    )
    assert bounces.hard == 1
    leave(live_server, "chiara", start + timedelta(days=3))
    # Lesson 2: farid's mailbox is gone too; emma leaves after it.
    smtpd.fail_recipient(address("farid"))
    live_server.dispatch_as_of(start + timedelta(days=9))
    leave(live_server, "emma", start + timedelta(days=10))

    with signed_in(live_server, Role.VIEWER) as browser:
        page = browser.get("/admin/courses/runners")
    with live_server.database.read() as session:
        report = course_report(session, "runners")

    assert page.status_code == 200
    table = Tables(page.text).tables[0]
    assert table[0] == ["Lesson", "Subject", "Sent", "Failed", "Bounced", "Unsubscribed"]
    shown = [
        (row[0], row[1], int(row[2]), int(row[3]), int(row[4]), int(row[5])) for row in table[1:]
    ]
    assert shown == [
        (str(r.lesson), f"{r.subject} {r.key}", r.sent, r.failed, r.bounced, r.unsubscribed)
        for r in report
    ]
    # And those are what happened: the numbers are not all zero.
    assert shown[0][2:] == (5, 1, 1, 1) and shown[1][2:] == (2, 1, 0, 1)
    # The chart: a bar per lesson, and the lessons numbered under it.
    assert page.text.count("<rect x=") == 10  # a bar per lesson
    assert page.text.count('<rect class="left"') == 2  # two with people who left after it
    assert "Still with the course at each lesson" in page.text


def test_the_calendar_in_a_chosen_zone_gives_each_lesson_there_and_in_utc(live_server):
    with signed_in(live_server, Role.VIEWER) as browser:
        page = browser.get("/admin/courses/runners", params={"zone": "Asia/Kolkata"})
    assert page.status_code == 200
    calendar = Tables(page.text).tables[1]
    assert calendar[0] == ["Lesson", "In Asia/Kolkata", "UTC"]
    assert [row[0] for row in calendar[1:]][:2] == ["1 feet", "2 ankles"]
    assert len(calendar) == 11
    zone = ZoneInfo("Asia/Kolkata")
    for _, there, utc in calendar[1:]:
        local = datetime.strptime(there, "%a %d %b %Y %H:%M").replace(tzinfo=zone)
        assert local.strftime("%H:%M") == "08:00"  # the course's send time, in their zone
        assert local.astimezone(UTC).strftime("%a %d %b %H:%M") == utc  # 02:30 UTC
    # A phone has no room for a third column: UTC is said under the time there.
    on_a_phone = Tables(page.text, phone=True).tables[1]
    assert on_a_phone[0] == ["Lesson", "In Asia/Kolkata"]
    assert [row[1] for row in on_a_phone[1:]] == [
        f"{there} {utc} UTC" for _, there, utc in calendar[1:]
    ]
    assert 'value="Asia/Kolkata"' in page.text


def test_without_a_zone_the_calendar_is_in_the_courses_zone(live_server):
    with signed_in(live_server, Role.VIEWER) as browser:
        page = browser.get("/admin/courses/runners")
    assert Tables(page.text).tables[1][0] == ["Lesson", "In America/Toronto", "UTC"]


@pytest.mark.parametrize(
    ("zone", "says"),
    [
        ("Mars/Olympus_Mons", "Unknown time zone 'Mars/Olympus_Mons'"),
        ("EST", "EST is a fixed offset"),
        ('<script>alert("zone")</script>', "Unknown time zone"),
        ("Europe/Berlin\x00", "Unknown time zone"),
        ("../../../etc/passwd", "Unknown time zone"),
        ("x" * 1000, "Unknown time zone"),
    ],
)
def test_a_bad_zone_gives_the_form_back_with_the_error_beside_the_field(live_server, zone, says):
    with signed_in(live_server, Role.VIEWER) as browser:
        page = browser.get("/admin/courses/runners", params={"zone": zone})
    assert page.status_code == 400
    assert "<script>" not in page.text
    form = re.search(r'<form class="zone".*?</form>', page.text, re.S).group(0)
    assert 'aria-invalid="true" aria-describedby="zone-error"' in form
    error = re.search(r'id="zone-error" role="alert">([^<]*)<', form).group(1)
    assert says in unescape(error)
    assert len(Tables(page.text).tables) == 1  # the report; no calendar for a zone that is not one


def test_a_lesson_is_shown_as_the_preview_shows_it(live_server):
    with signed_in(live_server, Role.VIEWER) as browser:
        page = browser.get("/admin/courses/runners/lessons/ankles")
    assert page.status_code == 200
    assert "<h1>Lesson 2: Ankles that bend and balance</h1>" in page.text
    frame = re.search(r"<iframe [^>]*>", page.text).group(0)
    # Sandboxed: the email's scripts, if any, never run, and no form of it is sent.
    assert 'sandbox="allow-same-origin"' in frame and "allow-scripts" not in frame
    assert "Hi Sam," in unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
    text = re.search(r'<pre class="text">(.*?)</pre>', page.text, re.S).group(1)
    assert "LESSON 2 OF 10" in unescape(text) and "Hi Sam," in unescape(text)
    # A viewer reads it but gets no button to send it.
    assert "Send a test to me" not in page.text
    assert 'href="/admin/courses/runners/lessons/feet"' in page.text  # the lesson before
    assert 'href="/admin/courses/runners/lessons/calves-achilles"' in page.text  # and after


def test_a_lesson_by_its_number_is_the_same_lesson(live_server):
    with signed_in(live_server, Role.VIEWER) as browser:
        page = browser.get("/admin/courses/runners/lessons/2")
    assert page.status_code == 200 and "Lesson 2: Ankles that bend and balance" in page.text


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/admin/courses/no-such-course", "Unknown course 'no-such-course'"),
        ("/admin/courses/no-such-course/lessons/feet", "Unknown course 'no-such-course'"),
        ("/admin/courses/runners/lessons/no-such-lesson", "has no lesson 'no-such-lesson'"),
        ("/admin/courses/runners/lessons/11", "has lessons 1 to 10, not 11"),
    ],
)
def test_an_unknown_course_or_lesson_is_a_404_page_that_says_so(live_server, path, says):
    with signed_in(live_server, Role.VIEWER) as browser:
        page = browser.get(path)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert says in unescape(page.text) and 'role="alert"' in page.text
    assert "Sign out" in page.text  # still the dashboard, with its navigation


HOSTILE = [
    "%00",
    "runners%00",
    "..%2F..%2Fetc%2Fpasswd",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "x" * 500,
    "%C3%BF%FE",
    "RUNNERS",
    "-1",
    "0",
    "99999999999999999999999999",
    "%20",
    "'%20OR%201=1--",
]


@pytest.mark.both_databases
@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_slugs_keys_and_zones_are_never_a_500(live_server, hostile):
    with signed_in(live_server, Role.EDITOR) as browser:
        token = token_of(browser)
        answers = [
            browser.get(f"/admin/courses/{hostile}"),
            browser.get(f"/admin/courses/{hostile}/lessons/feet"),
            browser.get(f"/admin/courses/runners/lessons/{hostile}"),
            browser.get(f"/admin/courses/runners?zone={hostile}"),
            browser.post(f"/admin/courses/runners/lessons/{hostile}/test", data={"csrf": token}),
            browser.post(f"/admin/courses/{hostile}/lessons/1/test", data={"csrf": token}),
        ]
    for answer in answers:
        assert 400 <= answer.status_code < 500 or answer.status_code == 200, answer.url
        assert answer.headers["content-type"].startswith("text/html"), answer.url
        assert "<script>alert" not in answer.text


@pytest.mark.both_databases
def test_an_editor_sends_a_test_to_themself_and_it_is_audited(live_server, inbox):
    with signed_in(live_server, Role.EDITOR) as browser:
        page = browser.get("/admin/courses/runners/lessons/knees")
        assert "Send a test to me" in page.text
        answer = browser.post(
            "/admin/courses/runners/lessons/knees/test", data={"csrf": token_of(browser)}
        )
    assert answer.status_code == 200
    assert 'role="status">Sent: lesson 4 (knees) went to' in answer.text
    message = inbox.wait_for("editor@clinic.example", "[Test] Lesson 4:")
    assert "editor@clinic.example" in str(message["To"])
    with live_server.database.read() as session:
        [entry] = audit.entries(session, actions=["test sent"])
    assert (entry.actor, entry.target, entry.detail) == (
        "operator editor@clinic.example",
        "editor@clinic.example",
        "lesson 4 (knees) of runners",
    )


def test_a_test_the_server_refuses_is_said_on_the_page_and_not_audited(live_server, smtpd):
    smtpd.fail_recipient("admin@clinic.example", 550, "5.1.1 no such mailbox here")
    with signed_in(live_server, Role.ADMIN) as browser:
        answer = browser.post(
            "/admin/courses/runners/lessons/1/test", data={"csrf": token_of(browser)}
        )
    assert answer.status_code == 400
    alert = re.search(r'role="alert">([^<]*)<', answer.text).group(1)
    assert alert.startswith("The test was not sent: test send to admin@clinic.example failed")
    assert "550" in alert
    assert "<h1>Lesson 1: " in answer.text  # the lesson's page, with the form to try again
    with live_server.database.read() as session:
        assert audit.entries(session, actions=["test sent"]) == []


def test_a_viewer_cannot_send_a_test_even_posted_by_hand(live_server, smtpd):
    with signed_in(live_server, Role.VIEWER) as browser:
        answer = browser.post(
            "/admin/courses/runners/lessons/1/test", data={"csrf": token_of(browser)}
        )
    assert answer.status_code == 403
    assert smtpd.messages == []
    with live_server.database.read() as session:
        assert audit.entries(session, actions=["test sent"]) == []


def test_a_test_without_the_pages_token_is_refused(live_server, smtpd):
    with signed_in(live_server, Role.EDITOR) as browser:
        for data in ({}, {"csrf": "guessed"}):
            answer = browser.post("/admin/courses/runners/lessons/1/test", data=data)
            assert answer.status_code == 403
    assert smtpd.messages == []


def test_the_course_pages_need_a_sign_in(live_server):
    for path in ["/admin/courses", "/admin/courses/runners", "/admin/courses/runners/lessons/1"]:
        answer = httpx.get(f"{live_server.url}{path}", follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, "/admin/login")
    posted = httpx.post(f"{live_server.url}/admin/courses/runners/lessons/1/test", data={})
    assert posted.status_code == 303


def test_a_course_that_tracks_clicks_has_a_clicked_column(live_server):
    toml = live_server.settings.courses_dir / "runners" / "course.toml"
    toml.write_text(toml.read_text() + "\n[tracking]\nclicks = true\n")
    with live_server.database.transaction() as session:
        for source in load_sources(live_server.settings.courses_dir):
            sync_course(session, source, datetime.now(UTC))
    with signed_in(live_server, Role.VIEWER) as browser:
        page = browser.get("/admin/courses/runners")
    report = Tables(page.text).tables[0]
    assert report[0][-1] == "Clicked" and [row[-1] for row in report[1:]] == ["0"] * 10
    assert "Clicks are not tracked" not in page.text


def test_when_the_courses_files_are_gone_the_calendar_says_so_and_the_report_stays(live_server):
    shutil.rmtree(live_server.settings.courses_dir / "runners")
    with signed_in(live_server, Role.VIEWER) as browser:
        page = browser.get("/admin/courses/runners", params={"zone": "Europe/Paris"})
    assert page.status_code == 200
    calendar = re.search(
        r'<section class="card" aria-labelledby="calendar-title">.*?</section>', page.text, re.S
    ).group(0)
    # The only course folder is gone: there is no course there at all.
    assert "cannot be used now. No courses found in " in unescape(calendar)
    assert len(Tables(page.text).tables) == 1  # the report, still there
