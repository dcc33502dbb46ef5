"""`dripcourse timeline` and `dripcourse courses calendar` as an operator uses them: the real CLI, a
real SQLite file, a real SMTP server, and time moved with `--now`."""

from __future__ import annotations

from pathlib import Path

from dripcourse.devtools.smtpserver import CapturingSMTPServer

ADA = "ada@example.com"


def start_course(cli, *ticks: str) -> None:
    assert cli("db", "upgrade").code == 0
    assert cli("courses", "sync").code == 0
    done = cli(
        "subscribe",
        ADA,
        "--course",
        "runners",
        "--name",
        "Ada Lovelace",
        "--timezone",
        "Europe/Berlin",
        "--confirmed",
        "--now",
        "2026-03-02T15:00:00Z",
    )
    assert done.code == 0, done.err
    for at in ticks:
        ticked = cli("tick", "--now", at)
        assert ticked.code == 0, ticked.err


def line_of(out: str, start: str) -> str:
    """The one line that starts with `start`, its runs of spaces (the columns) made single."""
    lines = [" ".join(line.split()) for line in out.splitlines()]
    [line] = [line for line in lines if line.startswith(start)]
    return line


def test_timeline_in_the_middle_of_the_course(cli, smtpd: CapturingSMTPServer):
    start_course(cli, "2026-03-03T07:00:00Z", "2026-03-10T07:00:00Z", "2026-03-17T07:00:00Z")
    shown = cli("timeline", ADA, "--now", "2026-03-20T12:00:00Z")
    assert shown.code == 0, shown.err
    out = shown.out
    assert out.splitlines()[0] == (
        "ada@example.com (Ada Lovelace), Europe/Berlin, as of 2026-03-20 13:00 Europe/Berlin"
    )
    assert "runners  Runners E-Course  active since 2026-03-02 16:00 Europe/Berlin" in out
    message_ids = [str(m.message["Message-ID"]) for m in smtpd.messages]
    assert line_of(out, "sent 1 feet") == (
        "sent 1 feet 2026-03-03 08:00 Europe/Berlin (2026-03-03 07:00 UTC) attempts 1 "
        + message_ids[0]
    )
    assert line_of(out, "sent 3 calves-achilles").endswith(message_ids[2])
    assert line_of(out, "owed 4 knees") == (
        "owed 4 knees 2026-03-24 08:00 Europe/Berlin (2026-03-24 07:00 UTC)"
    )
    # After the change to summer time on 29 March: still 08:00 in Berlin, now 06:00 UTC.
    assert line_of(out, "owed 5 hips") == (
        "owed 5 hips 2026-03-31 08:00 Europe/Berlin (2026-03-31 06:00 UTC)"
    )
    assert line_of(out, "owed 10 recovery").startswith("owed 10 recovery 2026-05-05 08:00")

    # The dispatcher agrees: nothing a minute early, lesson 4 on the dot.
    assert "0 sent" in cli("tick", "--now", "2026-03-24T06:59:00Z").out
    on_time = cli("tick", "--now", "2026-03-24T07:00:00Z").out
    assert "lesson 4 (knees)" in on_time and "1 sent" in on_time


def test_a_paused_person_is_shown_held_with_the_reason(cli):
    start_course(cli, "2026-03-03T07:00:00Z")
    assert cli("pause", ADA, "--now", "2026-03-05T09:30:00Z").code == 0
    out = cli("timeline", ADA, "--now", "2026-03-12T12:00:00Z").out
    assert "runners  Runners E-Course  paused since 2026-03-05 10:30 Europe/Berlin" in out
    assert line_of(out, "held 2 ankles") == (
        "held 2 ankles held: paused since 2026-03-05 10:30 Europe/Berlin"
    )
    assert line_of(out, "held 10 recovery") == "held 10 recovery"
    assert "owed" not in out


def test_timeline_of_an_unknown_or_malformed_address_is_one_line_and_exit_2(cli):
    start_course(cli)
    unknown = cli("timeline", "nobody@example.com")
    assert (unknown.code, unknown.out) == (2, "")
    assert unknown.err == "dripcourse: error: no subscriber nobody@example.com\n"
    malformed = cli("timeline", "not-an-address")
    assert malformed.code == 2 and len(malformed.err.splitlines()) == 1
    bad_now = cli("timeline", ADA, "--now", "next tuesday")
    assert bad_now.code == 2
    assert bad_now.err.startswith("dripcourse: error: not an ISO-8601 date and time")


def test_calendar_across_the_dst_change_without_a_database(cli, cli_env):
    shown = cli(
        "courses",
        "calendar",
        "runners",
        "--start",
        "2026-03-02T15:00:00Z",
        "--timezone",
        "America/Toronto",
    )
    assert shown.code == 0, shown.err
    out = shown.out
    assert out.splitlines()[0] == (
        "runners  Runners E-Course: subscribing 2026-03-02 10:00 America/Toronto "
        "(2026-03-02 15:00 UTC)"
    )
    # Toronto moves to daylight time on 8 March: 08:00 local goes from 13:00 to 12:00 UTC.
    assert line_of(out, "1 feet") == (
        "1 feet 2026-03-03 08:00 America/Toronto (2026-03-03 13:00 UTC)"
    )
    assert line_of(out, "2 ankles") == (
        "2 ankles 2026-03-10 08:00 America/Toronto (2026-03-10 12:00 UTC)"
    )
    assert line_of(out, "10 recovery").startswith("10 recovery 2026-05-05 08:00 America/Toronto")
    # Nothing was read or written: there is no database at all.
    database_file = Path(cli_env["DRIPCOURSE_DATABASE_URL"].removeprefix("sqlite:///"))
    assert not database_file.exists()


def test_calendar_says_when_a_lesson_moves_off_a_day_outside_the_send_days(cli, courses_dir):
    toml = courses_dir / "runners" / "course.toml"
    text = toml.read_text()
    every_day = 'send_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]'
    assert every_day in text
    toml.write_text(text.replace(every_day, 'send_days = ["mon", "tue", "wed", "thu", "fri"]'))
    # Saturday 7 March, 10:00 in Berlin.
    out = cli(
        "courses",
        "calendar",
        "runners",
        "--start",
        "2026-03-07T09:00:00Z",
        "--timezone",
        "Europe/Berlin",
    ).out
    assert "a lesson every 7 days at 08:00, sent on Mon, Tue, Wed, Thu, Fri" in out
    assert line_of(out, "1 feet") == (
        "1 feet 2026-03-09 08:00 Europe/Berlin (2026-03-09 07:00 UTC) "
        "moved from Sun to Mon: outside the send days"
    )


def test_calendar_refuses_a_bad_zone_course_or_start_with_exit_2(cli):
    bad_zone = cli("courses", "calendar", "runners", "--timezone", "Mars/Olympus")
    assert (bad_zone.code, bad_zone.out) == (2, "")
    assert bad_zone.err.startswith("dripcourse: error: unknown time zone 'Mars/Olympus'")
    assert len(bad_zone.err.splitlines()) == 1
    unknown = cli("courses", "calendar", "swimmers")
    assert unknown.code == 2 and "no course 'swimmers'" in unknown.err
    bad_start = cli("courses", "calendar", "runners", "--start", "2026-13-01")
    assert bad_start.code == 2 and "not an ISO-8601 date and time" in bad_start.err
