"""The demo: the runners course dripped to three people in three zones over simulated weeks.

Everything is real except time: a SQLite file, the course files, the dispatcher, and an SMTP server on
loopback that receives every message. The clock jumps from one due time to the next, so eleven weeks
take seconds. One person unsubscribes midway, to show that nothing reaches them after it. The
folder and what is in it are private (`privatefiles.py`), as they would be for real people.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from zoneinfo import ZoneInfo

from dripcourse.app import media, overview, subscriptions
from dripcourse.backends import load_backend
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.devtools.smtpserver import CapturingSMTPServer, ReceivedMessage
from dripcourse.sending.dispatch import Dispatcher, Sent
from dripcourse.store import migrations
from dripcourse.store.db import Database
from dripcourse.store.privatefiles import make_private_dir, tighten, write_private

COURSE = "runners"
# Early March: the demo's weeks cross the clock changes of North America (8 March), Europe
# (29 March) and Australia (5 April), and every lesson still arrives at 08:00 local time.
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@dataclass(frozen=True)
class DemoPerson:
    email: str
    name: str
    timezone: str


PEOPLE = (
    DemoPerson("ada@demo.example", "Ada Lovelace", "America/Toronto"),
    DemoPerson("bruno@demo.example", "Bruno Schulz", "Europe/Berlin"),
    DemoPerson("chiara@demo.example", "Chiara Rossi", "Australia/Sydney"),
)
LEAVER = PEOPLE[1]
LEAVES_AFTER_LESSONS = 3


def example_courses(courses_dir: Path) -> Path:
    """The runners course beside the working folder, else the copy shipped in the package."""
    if (courses_dir / COURSE / "course.toml").is_file():
        return courses_dir / COURSE
    return Path(str(files("dripcourse"))) / "example_courses" / COURSE


def run_demo(folder: Path, weeks: int, courses_dir: Path, echo: Callable[[str], None]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    make_private_dir(folder / "mail")
    clock = FixedClock(START)
    with CapturingSMTPServer() as server:
        settings = Settings(
            database_url=f"sqlite:///{folder / 'demo.db'}",
            email_backend=server.url,
            base_url="http://localhost:8000",
            secret_key="demo-secret-key-not-for-production",
        )
        database = Database(settings.database_url)
        migrations.upgrade(database)
        course_path = example_courses(courses_dir)
        with database.transaction() as session:
            source = load_sources(course_path.parent, course_path)[0]
            sync_course(session, source, clock.now())
            for person in PEOPLE:
                subscriptions.subscribe(
                    session,
                    email=person.email,
                    course_slug=COURSE,
                    name=person.name,
                    timezone=person.timezone,
                    confirmed=True,
                    now=clock.now(),
                    source="demo",
                )
        echo(
            f"Demo: {len(source.lessons)} lessons of '{source.checked_settings.title}' to "
            f"{len(PEOPLE)} people, starting {START:%Y-%m-%d %H:%M} UTC, over {weeks} weeks."
        )
        echo(
            f"A real SMTP server listens on {server.host}:{server.port}; each tick below is "
            "`dripcourse tick --now <instant>`.\n"
        )
        dispatcher = Dispatcher(database, settings, load_backend(server.url), clock)
        _simulate(database, dispatcher, clock, START + timedelta(weeks=weeks), echo)
        received = server.messages
        # The lesson page written below is opened from a file, where BASE_URL/media is not
        # served: the course's images go beside it, as `dripcourse media export` writes them.
        with database.read() as session:
            media.export(session, folder / "media")
        for path in [folder / "media", *(folder / "media").rglob("*")]:
            tighten(path)  # the demo's folder is private, the copies of the images too
        database.dispose()
    _report(received, folder, f"{settings.base_url}/media/", echo)


def _simulate(
    database: Database,
    dispatcher: Dispatcher,
    clock: FixedClock,
    end: datetime,
    echo: Callable[[str], None],
) -> None:
    sent_to_leaver = 0
    while True:
        with database.transaction() as session:
            next_due = overview.status(session, clock.now()).next_due
        if next_due is None or next_due > end:
            break
        clock.set(max(next_due, clock.now()))
        outcomes: list[Sent] = []
        dispatcher.run_pass(on_outcome=outcomes.append)
        for outcome in outcomes:
            zone = next(p.timezone for p in PEOPLE if p.email == outcome.email)
            local = outcome.at.astimezone(ZoneInfo(zone))
            echo(
                f"  {outcome.at:%Y-%m-%d %H:%M} UTC  {outcome.status}  lesson "
                f"{outcome.number:>2} to {outcome.email:<20} {local:%a %d %b %H:%M} {zone}"
            )
            if outcome.email == LEAVER.email and outcome.status == "sent":
                sent_to_leaver += 1
        if sent_to_leaver == LEAVES_AFTER_LESSONS:
            with database.transaction() as session:
                subscriptions.unsubscribe(session, LEAVER.email, clock.now(), COURSE)
            echo(f"  {clock.now():%Y-%m-%d %H:%M} UTC  {LEAVER.email} unsubscribes from {COURSE}")
            sent_to_leaver += 1


def _report(
    received: list[ReceivedMessage], folder: Path, media_url: str, echo: Callable[[str], None]
) -> None:
    echo(f"\nThe SMTP server received {len(received)} messages:")
    for person in PEOPLE:
        mine = [m for m in received if person.email in m.rcpt_tos]
        echo(f"  {person.email:<22} {len(mine):>2} lessons, each at 08:00 {person.timezone}")
    for number, item in enumerate(received, start=1):
        who = item.rcpt_tos[0].split("@")[0]
        write_private(folder / "mail" / f"{number:03d}-{who}.eml", item.data)
    echo(f"\nEvery message is in {folder / 'mail'}/ as .eml (open one in your mail program).")
    first = next((m for m in received if PEOPLE[0].email in m.rcpt_tos), None)
    html = first.message.get_body(("html",)) if first else None
    if html is not None:
        page = folder / "lesson-01.html"
        # Only this local copy points at the exported images; the .eml files stay as sent.
        local = html.get_content().replace(f'src="{media_url}', 'src="media/')
        write_private(page, local.encode("utf-8"))
        echo(f"Open {page} in a browser to see lesson 1 as {PEOPLE[0].name} got it.")
