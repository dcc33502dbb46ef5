"""Adding, importing and exporting subscribers from the dashboard, as scripts and hostile uploads
try them: roles on every POST however it is sent, CSRF, each bad field named beside it, a set of
hostile CSV files (binary, NUL, one 10 MB line, an unclosed quote, not UTF-8, BOM and CRLF), an
import that is refused on its last line leaving nothing written, the temporary file gone after
every import, and the audit log saying who did what from which shell."""

from __future__ import annotations

import csv
import html
import io
import re
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from test_dashboard_people_http import signed_in, token_of

from dripcourse.app import audit, subscriptions
from dripcourse.domain.roles import Role
from dripcourse.store.models import Enrollment, Subscriber, SuppressionReason
from dripcourse.store.queries import suppress
from dripcourse.web.dashboard_roster import MAX_UPLOAD_BODY
from dripcourse.web.importjobs import MAX_UPLOAD_BYTES

JOB_TIMEOUT = 60.0


@pytest.fixture(autouse=True)
def private_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the live server (in this process) puts its temporary files during the test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def count_subscribers(live_server) -> int:
    with live_server.database.read() as session:
        return session.scalar(select(func.count()).select_from(Subscriber)) or 0


def add(browser: httpx.Client, **fields: str) -> httpx.Response:
    data = {"email": "", "name": "", "timezone": "", "course": "runners", "consent": "confirmed"}
    data.update(fields)
    data.setdefault("csrf", token_of(browser))
    return browser.post("/admin/subscribers/new", data=data)


def error_beside(page: httpx.Response, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', page.text)
    assert found, f"no error beside {field}: {page.text[:3000]}"
    return found.group(1)


def upload(
    browser: httpx.Client,
    content: bytes,
    name: str = "people.csv",
    course: str = "runners",
    consent: str = "confirmed",
    csrf: str | None = None,
) -> httpx.Response:
    return browser.post(
        "/admin/subscribers/import",
        data={"course": course, "consent": consent, "csrf": csrf or token_of(browser)},
        files={"file": (name, content, "text/csv")},
    )


def finished(browser: httpx.Client, answer: httpx.Response) -> httpx.Response:
    """The import's status page once the import is over (it refreshes itself until then)."""
    assert answer.status_code == 303, answer.text[:2000]
    location = answer.headers["location"]
    assert re.fullmatch(r"/admin/imports/[A-Za-z0-9_-]{32}", location)
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        page = browser.get(location)
        assert page.status_code == 200
        if "refresh" not in page.headers:
            assert "Importing" not in page.text
            return page
        assert page.headers["refresh"] == "1" and "rows read" in page.text
        assert time.monotonic() < deadline, "the import did not finish"
        time.sleep(0.1)


# -- roles and CSRF ---------------------------------------------------------------------------


def test_a_viewer_can_neither_add_import_nor_export_even_by_hand(live_server):
    with signed_in(live_server, Role.VIEWER) as browser:
        token = token_of(browser)
        for path in ("/admin/subscribers/new", "/admin/subscribers/import"):
            assert browser.get(path).status_code == 403
        assert browser.post("/admin/subscribers/export", data={"csrf": token}).status_code == 403
        by_hand = add(browser, email="ann@example.com", csrf=token)
        uploaded = upload(browser, b"email\r\nbob@example.com\r\n", csrf=token)
        subscribers_page = browser.get("/admin/subscribers").text
    assert by_hand.status_code == 403 and uploaded.status_code == 403
    assert "Import a CSV file" not in subscribers_page
    assert count_subscribers(live_server) == 0


def test_a_post_without_the_csrf_token_is_refused(live_server):
    with signed_in(live_server, Role.EDITOR) as browser:
        added = add(browser, email="ann@example.com", csrf="")
        wrong = add(browser, email="ann@example.com", csrf="0" * 64)
        uploaded = browser.post(
            "/admin/subscribers/import",
            data={"course": "runners", "consent": "confirmed"},
            files={"file": ("a.csv", b"email\r\nbob@example.com\r\n", "text/csv")},
        )
        exported = browser.post("/admin/subscribers/export", data={})
    assert (added.status_code, wrong.status_code, uploaded.status_code) == (403, 403, 403)
    assert exported.status_code == 403
    assert count_subscribers(live_server) == 0


def test_signed_out_nothing_is_shown(live_server):
    with httpx.Client(base_url=live_server.url) as stranger:
        for path in ("/admin/subscribers/new", "/admin/imports/x"):
            assert stranger.get(path, follow_redirects=False).status_code == 303
        exported = stranger.post("/admin/subscribers/export", follow_redirects=False)
        assert exported.status_code == 303


# -- add one ----------------------------------------------------------------------------------


def test_an_editor_adds_a_confirmed_person_and_lands_on_their_page(live_server):
    with signed_in(live_server, Role.EDITOR) as browser:
        added = add(browser, email="Ann@Example.com", name="Ann", timezone="Asia/Tokyo")
        assert added.status_code == 303
        person = browser.get(added.headers["location"])
    assert person.status_code == 200
    assert "Ann@example.com" in person.text and "Asia/Tokyo" in person.text
    assert live_server.enrollment_status("Ann@example.com") == "active"
    assert "subscribed" in person.text  # the audit entry, on their page


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"email": ""}, "email", "an email address is required"),
        ({"email": "not an address"}, "email", "not a valid email address"),
        ({"email": "a@example.com", "timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"email": "a@example.com", "name": "Ann\nBcc: x"}, "name", "line breaks"),
        ({"email": "a@example.com", "course": ""}, "course", "choose a course"),
        ({"email": "a@example.com", "course": "knitting"}, "course", "knitting"),
        ({"email": "a@example.com", "consent": "maybe"}, "consent", "agreed already"),
    ],
)
def test_bad_input_gives_the_form_back_with_the_error_beside_the_field(
    live_server, fields, field, words
):
    with signed_in(live_server, Role.EDITOR) as browser:
        page = add(browser, **fields)
    assert 400 <= page.status_code < 500
    assert words in error_beside(page, field)
    assert count_subscribers(live_server) == 0


def test_several_bad_fields_are_named_at_once_and_the_values_kept(live_server):
    with signed_in(live_server, Role.EDITOR) as browser:
        page = add(browser, email="nope", timezone="Nowhere/Land", name="<b>Ann</b>")
    assert page.status_code == 400
    assert error_beside(page, "email") and error_beside(page, "timezone")
    assert 'value="&lt;b&gt;Ann&lt;/b&gt;"' in page.text  # kept, and escaped


def test_already_subscribed_and_suppressed_are_said_beside_the_address(live_server):
    with signed_in(live_server, Role.EDITOR) as browser:
        assert add(browser, email="ann@example.com").status_code == 303
        again = add(browser, email="ann@example.com")
        with live_server.database.transaction() as session:
            suppress(session, "bob@example.com", SuppressionReason.HARD_BOUNCE, datetime.now(UTC))
        suppressed = add(browser, email="bob@example.com")
        suppressed_asked = add(browser, email="bob@example.com", consent="confirmation")
        assert add(browser, email="cat@example.com").status_code == 303
        with live_server.database.transaction() as session:
            subscriptions.unsubscribe(session, "cat@example.com", datetime.now(UTC), "runners")
        left = add(browser, email="cat@example.com")
    assert again.status_code == 409
    assert "already enrolled in runners (active)" in error_beside(again, "email")
    assert suppressed.status_code == 409
    assert "suppressed (hard_bounce)" in error_beside(suppressed, "email")
    assert suppressed_asked.status_code == 409
    assert left.status_code == 409 and "confirmation" in error_beside(left, "email")


@pytest.mark.server_settings(api_token="t1")
def test_subscribing_is_audited_from_the_dashboard_the_api_and_the_command_line(
    live_server, monkeypatch
):
    with signed_in(live_server, Role.EDITOR) as browser:
        assert add(browser, email="ann@example.com", consent="confirmation").status_code == 303
    api = httpx.post(
        f"{live_server.url}/api/v1/subscribers",
        json={"email": "bob@example.com", "course": "runners", "confirmed": True},
        headers={"Authorization": "Bearer t1"},
    )
    assert api.status_code == 201, api.text
    from dripcourse.cli.main import main

    monkeypatch.setenv("DRIPCOURSE_DATABASE_URL", live_server.settings.database_url)
    with pytest.raises(SystemExit) as ended:
        main(["subscribe", "cat@example.com", "--course", "runners", "--confirmed"])
    assert ended.value.code == 0
    # The person's own sign-up is not an operator's change: consent evidence records it instead.
    httpx.post(
        f"{live_server.url}/subscribe",
        data={"email": "dan@example.com", "course": "runners", "name": "Dan"},
    )
    with live_server.database.read() as session:
        log = [
            (e.actor.split(" (")[0], e.action, e.target, e.detail)
            for e in audit.entries(session, actions=["subscribed"])
        ]
    assert log == [
        ("command line", "subscribed", "cat@example.com", "course runners, confirmed"),
        ("API", "subscribed", "bob@example.com", "course runners, confirmed"),
        (
            "operator editor@clinic.example",
            "subscribed",
            "ann@example.com",
            "course runners, confirmation email",
        ),
    ]


# -- import -----------------------------------------------------------------------------------


@pytest.mark.both_databases
def test_an_import_keeps_the_good_rows_and_lists_the_bad_ones_as_the_command_line_does(
    live_server, private_temp, tmp_path, monkeypatch, capsys
):
    content = (
        b"\xef\xbb\xbfemail,name,timezone\r\n"  # a spreadsheet's BOM and CRLF
        b"ann@example.com,Ann,Europe/Berlin\r\n"
        b"not-an-address,Bob,\r\n"
        b"cat@example.com,Cat,Mars/Olympus\r\n"
        b'dan@example.com,"Dan, the ""runner""",\r\n'
        b"ANN@example.com,Ann again,\r\n"
    )
    with signed_in(live_server, Role.EDITOR) as browser:
        report = finished(browser, upload(browser, content, name="spring <list>.csv"))
    assert "imported 2, already enrolled 0, skipped 3" in report.text
    problems = re.findall(r"<li>([^<]*)</li>", report.text)
    shown = [html.unescape(problem) for problem in problems]
    assert [problem.split(":")[1] for problem in shown] == ["3", "4", "6"]
    assert all(problem.startswith("spring <list>.csv:") for problem in shown)
    # The same file given to `dripcourse subscribers import`: the same words for the same lines.
    from dripcourse.cli.main import main

    saved = tmp_path / "spring.csv"
    saved.write_bytes(content)
    monkeypatch.setenv("DRIPCOURSE_DATABASE_URL", live_server.settings.database_url)
    with pytest.raises(SystemExit):
        main(["subscribers", "import", str(saved), "--course", "runners", "--confirmed"])
    said = capsys.readouterr().err.splitlines()
    assert [line.removeprefix(f"{saved}:") for line in said if line.startswith(str(saved))] == [
        problem.removeprefix("spring <list>.csv:") for problem in shown
    ]
    assert live_server.enrollment_status("dan@example.com") == "active"
    with live_server.database.read() as session:
        assert session.scalar(
            select(Subscriber.name).where(Subscriber.email == "dan@example.com")
        ) == ('Dan, the "runner"')
        by_cli, entry = audit.entries(session, actions=["imported"])
    assert (entry.actor, entry.target) == ("operator editor@clinic.example", "runners")
    assert entry.detail == "spring <list>.csv: imported 2, already enrolled 0, skipped 3"
    assert by_cli.actor.startswith("command line") and by_cli.detail == (
        "spring.csv: imported 0, already enrolled 2, skipped 3"
    )
    assert list(private_temp.iterdir()) == []


@pytest.mark.both_databases
def test_a_file_refused_on_its_last_line_of_twenty_thousand_leaves_nothing_written(
    live_server, private_temp
):
    rows = "".join(f"p{n:05d}@example.com,Person {n},\r\n" for n in range(20_000))
    content = f'email,name,timezone\r\n{rows}"unclosed@example.com,Never\r\n'.encode()
    with signed_in(live_server, Role.EDITOR) as browser:
        report = finished(browser, upload(browser, content))
    assert "Nothing was imported" in report.text
    assert "line 20002: a quoted field starts in this row and is never closed" in report.text
    assert count_subscribers(live_server) == 0
    assert list(private_temp.iterdir()) == []


@pytest.mark.both_databases
def test_twenty_thousand_rows_go_through_with_their_count(live_server, private_temp):
    rows = "".join(f"p{n:05d}@example.com,Person {n},\r\n" for n in range(20_000))
    with signed_in(live_server, Role.EDITOR) as browser:
        report = finished(browser, upload(browser, f"email,name,timezone\r\n{rows}".encode()))
    assert "imported 20000, already enrolled 0, skipped 0" in report.text, report.text[-3000:]
    assert count_subscribers(live_server) == 20_000
    assert list(private_temp.iterdir()) == []


def test_rows_with_too_many_fields_are_named_by_their_own_line(live_server):
    content = (
        b"email,name\r\n"
        b"ann@example.com,Ann,extra\r\n"
        b"bob@example.com,Bob\r\n"
        b"cat@example.com,Cat,extra\r\n"
    )
    with signed_in(live_server, Role.EDITOR) as browser:
        report = finished(browser, upload(browser, content))
    assert re.findall(r"<li>([^<]*)</li>", report.text) == [
        "people.csv:2: more fields than the header has",
        "people.csv:4: more fields than the header has",
    ]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (bytes(range(256)) * 40, "NUL bytes"),
        (b"email,name\r\nann@example.com,A\0nn\r\n", "NUL bytes"),
        (b"email,name\r\nann@example.com,Andr\xe9\r\n", "not UTF-8 text"),
        (b"\x89PNG\r\n\x1a\n" + b"\xff" * 500, "not UTF-8 text"),
        (b"", "the file is empty"),
    ],
    ids=["binary", "nul", "latin-1", "png", "empty"],
)
def test_a_file_that_is_not_text_is_refused_beside_the_file_field(
    live_server, private_temp, content, words
):
    with signed_in(live_server, Role.EDITOR) as browser:
        page = upload(browser, content)
    assert page.status_code == 400
    assert words in error_beside(page, "file")
    assert count_subscribers(live_server) == 0
    assert list(private_temp.iterdir()) == []


def test_a_file_larger_than_the_limit_is_refused_with_a_message(live_server, private_temp):
    one_line = b"email," + b"x" * (10 * 1024 * 1024) + b"\r\n"
    with signed_in(live_server, Role.EDITOR) as browser:
        page = upload(browser, one_line)
    assert page.status_code == 413
    assert "The file is larger than 5 MB, the most one import takes" in page.text
    assert count_subscribers(live_server) == 0
    assert list(private_temp.iterdir()) == []


def test_a_file_just_over_the_limit_is_named_beside_the_file_field(live_server, private_temp):
    rows = b"a@example.com,Ann\r\n" * (MAX_UPLOAD_BYTES // 19 + 100)
    with signed_in(live_server, Role.EDITOR) as browser:
        page = upload(browser, b"email,name\r\n" + rows)
    assert MAX_UPLOAD_BYTES < len(rows) < MAX_UPLOAD_BODY
    assert page.status_code == 413
    assert "larger than 5 MB" in error_beside(page, "file")
    assert list(private_temp.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"name,timezone\r\nAnn,\r\n", "needs a header row with an &#39;email&#39; column"),
        (b"email," + b"x" * 1_000_000 + b"\r\n", "not a readable CSV file"),
        (b'email,name\r\nann@example.com,"Ann\r\nbob@example.com,Bob\r\n', "never closed"),
        (b"email,email\r\na@example.com,b@example.com\r\n", "names a column twice"),
    ],
    ids=["no-email-column", "one-huge-field", "unclosed-quote", "column-twice"],
)
def test_a_file_that_is_no_usable_csv_is_refused_whole(live_server, private_temp, content, words):
    with signed_in(live_server, Role.EDITOR) as browser:
        report = finished(browser, upload(browser, content))
    assert "Nothing was imported" in report.text and words in report.text
    assert count_subscribers(live_server) == 0
    assert list(private_temp.iterdir()) == []


def test_the_import_form_names_each_missing_field(live_server):
    with signed_in(live_server, Role.EDITOR) as browser:
        token = token_of(browser)
        nothing = browser.post(
            "/admin/subscribers/import",
            data={"course": "", "consent": "", "csrf": token},
            files={"other": ("x.txt", b"x", "text/plain")},
        )
        unknown = upload(browser, b"email\r\na@example.com\r\n", course="knitting")
    assert nothing.status_code == 400
    assert error_beside(nothing, "file") == "choose a CSV file"
    assert error_beside(nothing, "course") == "choose a course"
    assert "agreed already" in error_beside(nothing, "consent")
    assert unknown.status_code == 400 and "knitting" in error_beside(unknown, "course")


def test_an_import_status_page_is_for_signed_in_operators_and_its_id_unguessable(live_server):
    with signed_in(live_server, Role.EDITOR) as browser:
        answer = upload(browser, b"email\r\nann@example.com\r\n")
        finished(browser, answer)
        location = answer.headers["location"]
        assert browser.get("/admin/imports/not-a-job").status_code == 404
    with httpx.Client(base_url=live_server.url) as stranger:
        assert stranger.get(location, follow_redirects=False).status_code == 303
    with signed_in(live_server, Role.VIEWER) as viewer:
        assert viewer.get(location).status_code == 200


# -- export -----------------------------------------------------------------------------------


@pytest.mark.both_databases
def test_an_export_has_everyone_escaped_against_formulas_and_is_audited(live_server):
    with signed_in(live_server, Role.EDITOR) as browser:
        add(browser, email="ann@example.com", name='=HYPERLINK("https://evil.example")')
        add(browser, email="bob@example.com", name="Bob", consent="confirmation")
        token = token_of(browser)
        everyone = browser.post("/admin/subscribers/export", data={"csrf": token})
        pending = browser.post(
            "/admin/subscribers/export", data={"status": "pending", "csrf": token}
        )
        bad = browser.post("/admin/subscribers/export", data={"course": "knitting", "csrf": token})
        by_link = browser.get("/admin/subscribers/export")
    assert everyone.status_code == 200
    assert everyone.headers["content-type"].startswith("text/csv")
    assert "attachment" in everyone.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(everyone.text, newline="")))
    assert [(r["email"], r["status"]) for r in rows] == [
        ("ann@example.com", "active"),
        ("bob@example.com", "pending"),
    ]
    assert rows[0]["name"] == '\'=HYPERLINK("https://evil.example")'
    assert [r["email"] for r in csv.DictReader(io.StringIO(pending.text))] == ["bob@example.com"]
    assert bad.status_code == 404 and "knitting" in bad.text
    assert by_link.status_code in (400, 405)  # a link from anywhere takes no export
    with live_server.database.read() as session:
        exports = [(e.actor, e.detail) for e in audit.entries(session, actions=["exported"])]
    assert exports == [
        ("operator editor@clinic.example", "status pending"),
        ("operator editor@clinic.example", "everyone"),
    ]


def test_an_export_from_the_command_line_is_audited_too(live_server, monkeypatch, capsys):
    with signed_in(live_server, Role.EDITOR) as browser:
        add(browser, email="ann@example.com")
    from dripcourse.cli.main import main

    monkeypatch.setenv("DRIPCOURSE_DATABASE_URL", live_server.settings.database_url)
    with pytest.raises(SystemExit) as ended:
        main(["subscribers", "export", "--course", "runners", "--status", "active"])
    assert ended.value.code == 0
    assert "ann@example.com,,America/Toronto,runners,active," in capsys.readouterr().out
    with live_server.database.read() as session:
        [entry] = audit.entries(session, actions=["exported"])
    assert entry.actor.startswith("command line (")
    assert entry.detail == "course runners, status active"


def test_an_exported_file_imports_unchanged(live_server):
    with signed_in(live_server, Role.EDITOR) as browser:
        add(browser, email="ann@example.com", name="-Ann", timezone="Asia/Tokyo")
        exported = browser.post(
            "/admin/subscribers/export", data={"csrf": token_of(browser)}
        ).content
        with live_server.database.transaction() as session:
            session.execute(Enrollment.__table__.delete())
            session.execute(Subscriber.__table__.delete())
        report = finished(browser, upload(browser, exported, name="export.csv"))
    assert "imported 1, already enrolled 0, skipped 0" in report.text
    with live_server.database.read() as session:
        person = session.scalars(select(Subscriber)).one()
    assert (person.email, person.name, person.timezone) == ("ann@example.com", "-Ann", "Asia/Tokyo")


def test_while_an_import_waits_its_page_refreshes_itself_unless_asked_not_to(live_server):
    with signed_in(live_server, Role.EDITOR) as browser:
        # Holding the write lock keeps the import waiting, however fast the machine is.
        with live_server.database.transaction():
            answer = upload(browser, b"email\r\nann@example.com\r\n")
            location = answer.headers["location"]
            running = browser.get(location)
            still = browser.get(location, params={"refresh": "off"})
            second = upload(browser, b"email\r\nbob@example.com\r\n")
        done = finished(browser, answer)
    assert running.headers["refresh"] == "1" and "0 rows read" in running.text
    assert "Stop refreshing" in running.text
    assert "refresh" not in still.headers and "Refresh by itself again" in still.text
    assert second.status_code == 409
    assert "another import is still running" in error_beside(second, "file")
    assert "imported 1, already enrolled 0, skipped 0" in done.text
    assert count_subscribers(live_server) == 1
