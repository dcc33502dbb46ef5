"""Times every dashboard page on a big list: 1,000,000 subscribers and 10,000,000 deliveries.

    .venv/bin/python bench/dashboard.py                       # SQLite, built once into /tmp
    .venv/bin/python bench/dashboard.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/bench
    .venv/bin/python bench/dashboard.py --subscribers 2000 --deliveries 20000 --requests 3

The database is built with bulk inserts (not the operations: the point is the state, not how it was
reached): five courses of 10 to 52 lessons, one enrolment per person and a second one for about a
third, deliveries over about a year (mostly sent, some pending, retrying, failed, hard- and
soft-bounced), names with accents, several time zones, suppressions and audit entries. It is cached
(`--cache`, a SQLite file under /tmp, or the PostgreSQL database itself) and reused while its size
matches; `--rebuild` builds it again. A cached database is upgraded to the newest schema first, so
a new migration's backfill runs on it.

Then the real FastAPI app is served in-process (httpx over ASGI, signed in as an admin, the clock
fixed at the instant the data was built for) and each page is asked for `--requests` times after
one warm-up request; the table gives the median and the 95th percentile of the time from request
to complete response. The operations behind the heavier pages (the course report, failed and
retrying deliveries, recent bounces) are timed directly as well. A page that answers anything but
200 is skipped and said so.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from dripcourse.app import audit, operators, report
from dripcourse.clock import FixedClock
from dripcourse.config import Settings
from dripcourse.courses.catalog import load_sources, sync_course
from dripcourse.domain.roles import Role
from dripcourse.store import migrations, tallies
from dripcourse.store.db import Database
from dripcourse.store.models import AppMeta, Course, Delivery, Lesson, Subscriber
from dripcourse.web.app import create_app

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
"""The instant the data is built for, and the app's clock while it is timed."""
DAY = 86_400
META_KEY = "bench_dashboard"
PASSWORD = "bench password 12345"
ADMIN = "bench-admin@clinic.example"
CHUNK = 50_000

# (slug, title, lessons, days between lessons): runners is the real course, the others copy its
# lessons under new keys so that a course may have many.
COURSES = [
    ("runners", None, 10, 7),
    ("strength", "Strength at home", 24, 14),
    ("yoga-basics", "Yoga basics", 36, 3),
    ("marathon", "Marathon in a year", 52, 21),
    ("mobility", "Mobility for desk workers", 16, 7),
]
FIRST = [
    "Émile",
    "Zoë",
    "José",
    "Søren",
    "Łukasz",
    "Ana",
    "Björn",
    "François",
    "Chloé",
    "Mårten",
    "Ngozi",
    "Wei",
    "Ólafur",
    "Aïcha",
    "Maria",
    "Jürgen",
    "Anaïs",
    "Renée",
    "Ömer",
    "Çelik",
    "Hélène",
    "Ingrid",
    "Ada",
    "Kofi",
    "Priya",
    "Mateus",
    "Noël",
    "Siobhán",
    "Dvořák",
    "Marek",
]
LAST = [
    "Lovelace",
    "Müller",
    "Ñúñez",
    "Østergaard",
    "Nakamura",
    "Dubois",
    "Kowalski",
    "García",
    "Smith",
    "O'Brien",
    "Öztürk",
    "Rossi",
    "Novák",
    "Jensen",
    "Silva",
    "Martín",
    "Lefèvre",
    "Kim",
    "Schröder",
    "Ramírez",
    "Ngata",
    "Eriksson",
    "Petrović",
    "Brontë",
]
DOMAINS = ["example.com", "mail.example.org", "clinic.example", "posteo.example", "uni.example"]
ZONES = [
    "Europe/Berlin",
    "America/Toronto",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Pacific/Auckland",
    "UTC",
    "Europe/London",
]
ERRORS = [
    "550 5.1.1 <{}>: Recipient address rejected: User unknown",
    "552 5.2.2 mailbox full",
    "451 4.7.1 greylisted, try again later",
    "421 4.3.2 service not available, closing channel",
]


def ascii_of(text_: str) -> str:
    folded = unicodedata.normalize("NFKD", text_)
    return "".join(c for c in folded if c.isascii() and (c.isalnum() or c in ".-")).lower()


# --- building -----------------------------------------------------------------------------------


class Loader:
    """Bulk rows into one table: executemany on SQLite (instants as the text SQLAlchemy writes),
    COPY on PostgreSQL."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.postgres = database.dialect == "postgresql"
        self.connection = database.engine.raw_connection()
        if not self.postgres:
            cursor = self.connection.cursor()
            cursor.execute("PRAGMA cache_size=-2000000")
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.close()

    def instant(self, seconds: float | None) -> Any:
        if seconds is None:
            return None
        value = NOW + timedelta(seconds=seconds)
        if self.postgres:
            return value.replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")

    def rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        cursor = self.connection.cursor()
        if self.postgres:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.execute("BEGIN")
            places = ", ".join("?" for _ in columns)
            statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({places})"
            batch: list[Sequence[Any]] = []
            for row in rows:
                batch.append(row)
                if len(batch) == CHUNK:
                    cursor.executemany(statement, batch)
                    batch.clear()
            cursor.executemany(statement, batch)
            cursor.execute("COMMIT")
        if self.postgres:
            self.connection.commit()
        cursor.close()

    def execute(self, *statements: str) -> None:
        cursor = self.connection.cursor()
        for statement in statements:
            cursor.execute(statement)
        if self.postgres:
            self.connection.commit()
        cursor.close()

    def close(self) -> None:
        self.connection.close()


TABLES = ("subscribers", "enrollments", "deliveries", "suppressions", "audit_log")


def secondary_indexes(loader: Loader) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the plain indexes of the bulk tables: dropped while loading
    and made again after, which is several times faster than keeping them up to date."""
    cursor = loader.connection.cursor()
    names = ", ".join(f"'{table}'" for table in TABLES)
    if loader.postgres:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            f"AND tablename IN ({names}) AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint)"
        )
    else:
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({names})"
        )
    found = [(name, sql) for name, sql in cursor.fetchall()]
    cursor.close()
    return found


@dataclass
class Plan:
    subscribers: int
    deliveries: int


def build(database: Database, plan: Plan, courses_folder: Path) -> dict[str, int]:
    began = time.perf_counter()
    migrations.upgrade(database)
    random.seed(14)
    with database.transaction() as session:
        course_rows = _courses(session, courses_folder)
        operators.add_operator(session, ADMIN, Role.ADMIN, PASSWORD, NOW, "bench")
    loader = Loader(database)
    indexes = secondary_indexes(loader)
    loader.execute(*(f"DROP INDEX {name}" for name, _ in indexes))
    triggers = _triggers_off(loader)
    counts = _load(loader, plan, course_rows)
    print(f"  rows loaded in {time.perf_counter() - began:.0f} s; making the indexes", flush=True)
    loader.execute(*(sql for _, sql in indexes))
    _triggers_on(loader, triggers)
    if loader.postgres:
        for table in TABLES:
            loader.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        loader.execute(*(f"ANALYZE {table}" for table in TABLES))
    else:
        loader.execute("ANALYZE")
    loader.close()
    with database.transaction() as session:
        _after_load(session)
        session.merge(AppMeta(key=META_KEY, value=_signature(plan)))
    print(f"  built in {time.perf_counter() - began:.0f} s", flush=True)
    return counts


def _triggers_off(loader: Loader) -> list[tuple[str, str]]:
    """Counters kept by triggers are filled in once after the load instead (`_after_load`)."""
    cursor = loader.connection.cursor()
    if loader.postgres:
        loader.execute(*(f"ALTER TABLE {table} DISABLE TRIGGER USER" for table in TABLES))
        return []
    cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
    found = [(name, sql) for name, sql in cursor.fetchall()]
    cursor.close()
    loader.execute(*(f"DROP TRIGGER {name}" for name, _ in found))
    return found


def _triggers_on(loader: Loader, triggers: list[tuple[str, str]]) -> None:
    if loader.postgres:
        loader.execute(*(f"ALTER TABLE {table} ENABLE TRIGGER USER" for table in TABLES))
    else:
        loader.execute(*(sql for _, sql in triggers))


def _after_load(session: Session) -> None:
    """The counts the triggers keep, computed once from the rows loaded with the triggers off."""
    tallies.recount(session)


@dataclass
class CourseRow:
    id: int
    lessons: list[int]
    every: int


def _courses(session: Session, folder: Path) -> list[CourseRow]:
    sync_course(session, load_sources(folder)[0], NOW - timedelta(days=400))
    runners = session.scalars(select(Course).where(Course.slug == "runners")).one()
    made = [CourseRow(runners.id, [lesson.id for lesson in runners.lessons], COURSES[0][3])]
    for slug, title, count, every in COURSES[1:]:
        course = Course(
            slug=slug,
            title=title,
            settings=runners.settings,
            layout_html=runners.layout_html,
            layout_text=runners.layout_text,
            synced_at=runners.synced_at,
        )
        session.add(course)
        for position in range(1, count + 1):
            model = runners.lessons[(position - 1) % len(runners.lessons)]
            course.lessons.append(
                Lesson(
                    key=f"{position:02d}-{model.key}",
                    position=position,
                    source_file=f"{position:02d}-{model.source_file}",
                    subject=model.subject,
                    title=model.title,
                    data=model.data,
                    body=model.body,
                    body_line=model.body_line,
                    content_hash=model.content_hash,
                    retired_at=None,
                )
            )
        session.flush()
        made.append(CourseRow(course.id, [lesson.id for lesson in course.lessons], every))
    return made


def _load(loader: Loader, plan: Plan, courses: list[CourseRow]) -> dict[str, int]:
    t = loader.instant
    emails: list[str] = []

    def people() -> Iterator[Sequence[Any]]:
        for n in range(1, plan.subscribers + 1):
            first, last = random.choice(FIRST), random.choice(LAST)
            email = f"{ascii_of(first)}.{ascii_of(last)}{n}@{DOMAINS[n % len(DOMAINS)]}"
            emails.append(email)
            joined = -random.uniform(1, 400) * DAY
            soft = 1 if n % 97 == 0 else 0
            yield (n, email, email, f"{first} {last}", ZONES[n % len(ZONES)], t(joined), soft)

    loader.rows(
        "subscribers",
        ("id", "email", "email_key", "name", "timezone", "created_at", "soft_bounces"),
        people(),
    )
    counts = {"subscribers": plan.subscribers, "enrollments": 0, "deliveries": 0}
    enrollment_rows: list[Sequence[Any]] = []
    delivery_rows: list[Sequence[Any]] = []
    suppressed: list[tuple[str, str, float]] = []
    audit_rows: list[Sequence[Any]] = []
    columns_e = [
        "id",
        "subscriber_id",
        "course_id",
        "status",
        "source",
        "created_at",
        "confirmed_at",
        "paused_at",
        "ended_at",
        "next_due_at",
        "signup_ip",
        "signup_user_agent",
    ]
    columns_d = [
        "id",
        "enrollment_id",
        "lesson_id",
        "kind",
        "status",
        "due_at",
        "next_attempt_at",
        "attempts",
        "first_attempt_at",
        "last_attempt_at",
        "sent_at",
        "smtp_code",
        "last_error",
        "message_id",
        "created_at",
        "bounce",
        "bounced_at",
    ]

    def flush() -> None:
        loader.rows("enrollments", columns_e, enrollment_rows)
        loader.rows("deliveries", columns_d, delivery_rows)
        enrollment_rows.clear()
        delivery_rows.clear()

    enrollment_id = delivery_id = 0
    for n in range(1, plan.subscribers + 1):
        # Deliveries per enrolment so that the total comes out near the plan (short courses cap
        # what an enrolment can have, so the rest is spread over the people still to come).
        to_come = 1.3 * (plan.subscribers - n + 1)
        per = max(1.0, (plan.deliveries - counts["deliveries"]) / to_come)
        first_course = random.randrange(len(courses))
        chosen = [first_course]
        if random.random() < 0.3:
            chosen.append((first_course + 1 + random.randrange(len(courses) - 1)) % len(courses))
        for index in chosen:
            course = courses[index]
            enrollment_id += 1
            remaining = plan.deliveries - counts["deliveries"]
            lessons = len(course.lessons)
            had = min(lessons, max(0, int(random.uniform(0.5, 2 * per - 0.5))), remaining)
            every = course.every * DAY
            start = -(had + random.random()) * every - random.uniform(0, DAY)
            status = "active"
            if had == lessons:
                status = "completed" if random.random() < 0.85 else "unsubscribed"
            else:
                roll = random.random()
                status = (
                    "unsubscribed"
                    if roll < 0.12
                    else "paused"
                    if roll < 0.17
                    else "pending"
                    if roll < 0.18 and had == 0
                    else "active"
                )
            ended = paused = next_due = None
            last_sent = start
            pending_last = status == "active" and had > 0 and random.random() < 0.04
            for j in range(had):
                delivery_id += 1
                due = start + j * every
                sent_at: float | None = due + random.uniform(1, 120)
                state, attempts, error, code = "sent", 1, None, 250
                bounce = bounced_at = None
                roll = random.random()
                last = j == had - 1
                if last and pending_last:
                    due = random.uniform(-3600, 14 * DAY)
                    if random.random() < 0.3:  # retrying after a temporary failure
                        state, attempts, code = "pending", random.randint(1, 5), 451
                        error = ERRORS[2 + delivery_id % 2]
                    else:
                        state, attempts, code = "pending", 0, None
                    sent_at = None
                elif roll < 0.003:
                    state, attempts, code = "failed", random.choice([1, 8]), 550
                    error = ERRORS[delivery_id % 2].format(emails[n - 1])
                    sent_at = None
                elif roll < 0.008:
                    bounce, bounced_at = "hard", (sent_at or 0) + random.uniform(60, 3 * DAY)
                elif roll < 0.013:
                    bounce, bounced_at = "soft", (sent_at or 0) + random.uniform(60, 3 * DAY)
                attempted = due + 1 if attempts else None
                if sent_at is not None:
                    last_sent = sent_at
                delivery_rows.append(
                    (
                        delivery_id,
                        enrollment_id,
                        course.lessons[j],
                        "extra" if j > 0 and delivery_id % 211 == 0 else "lesson",
                        state,
                        t(due),
                        t(due if state != "pending" else due + attempts * 600),
                        attempts,
                        t(attempted),
                        t(attempted),
                        t(sent_at),
                        code,
                        error,
                        f"<b{delivery_id:010d}@bench.example>",
                        t(due - 60),
                        bounce,
                        t(bounced_at),
                    )
                )
                counts["deliveries"] += 1
            created = start - 3600
            if status == "unsubscribed":
                ended = last_sent + random.uniform(60, every)
                suppressed.append((emails[n - 1], "unsubscribed", ended))
            elif status == "completed":
                ended = last_sent + 1
            elif status == "paused":
                paused = last_sent + random.uniform(60, every)
            elif status == "active" and not pending_last:
                next_due = max(last_sent + every, random.uniform(-1800, 0))
            enrollment_rows.append(
                (
                    enrollment_id,
                    n,
                    course.id,
                    status,
                    "form" if n % 3 else "import",
                    t(created),
                    None if status == "pending" else t(created + 600),
                    t(paused),
                    t(ended),
                    t(next_due),
                    f"203.0.113.{n % 250}",
                    "Mozilla/5.0 (bench)",
                )
            )
            counts["enrollments"] += 1
            if n % 5 == 0 and status in ("paused", "unsubscribed"):
                at = (ended or paused or 0) - 1
                actor = audit.operator_actor(f"desk{n % 4}@clinic.example")
                audit_rows.append((at, actor, status, emails[n - 1], "from the dashboard"))
        if len(delivery_rows) >= CHUNK * 4:
            flush()
    flush()
    loader.rows(
        "suppressions",
        ("email", "email_hash", "reason", "detail", "created_at"),
        (
            (email, _hash(email), reason, "", t(at))
            for email, reason, at in {email: (email, r, a) for email, r, a in suppressed}.values()
        ),
    )
    audit_rows.sort(key=lambda row: row[0])
    loader.rows(
        "audit_log",
        ("at", "actor", "action", "target", "detail"),
        (
            (t(at), actor, action, target, detail)
            for at, actor, action, target, detail in audit_rows
        ),
    )
    counts["suppressions"] = len(suppressed)
    counts["audit entries"] = len(audit_rows)
    return counts


def _hash(email: str) -> str:
    from dripcourse.domain.validation import address_hash

    return address_hash(email)


def _signature(plan: Plan) -> str:
    return f"{plan.subscribers}/{plan.deliveries}/{NOW.isoformat()}"


def _cached(database: Database, plan: Plan) -> bool:
    try:
        with database.read() as session:
            return session.get(AppMeta, META_KEY) is not None and session.get(
                AppMeta, META_KEY
            ).value == _signature(plan)  # type: ignore[union-attr]
    except Exception:
        return False


def _wipe(database: Database) -> None:
    path = database.engine.url.database
    if database.dialect == "postgresql":
        with database.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    elif path:
        database.dispose()
        for suffix in ("", "-wal", "-shm", "-writers.lock"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


# --- timing -------------------------------------------------------------------------------------


@dataclass
class Timing:
    name: str
    times: list[float]
    note: str = ""

    def row(self) -> str:
        if not self.times:
            return f"| {self.name} | - | - | {self.note} |"
        ordered = sorted(self.times)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        median = statistics.median(ordered)
        return f"| {self.name} | {median * 1000:.1f} | {p95 * 1000:.1f} | {self.note} |"


def sample(database: Database) -> dict[str, str]:
    """Values the URLs are made of: a name and an address to search for, a person with a
    history, an address deep into the list."""
    with database.read() as session:
        total = session.scalar(select(func.count()).select_from(Subscriber)) or 1
        middle = session.scalars(
            select(Subscriber).order_by(Subscriber.id).offset(total // 2).limit(1)
        ).one()
        busy = session.scalar(select(Delivery.enrollment_id).order_by(Delivery.id.desc()).limit(1))
        from dripcourse.store.models import Enrollment

        person = session.scalar(select(Enrollment.subscriber_id).where(Enrollment.id == busy))
    return {
        "address": middle.email_key[:4],
        "name": "émi",
        "deep": middle.email_key,
        "person": str(person),
    }


async def time_pages(app: Any, values: dict[str, str], requests: int) -> list[Timing]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.local") as client:
        page = (await client.get("/admin/login")).text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token is not None, "no sign-in form"
        answer = await client.post(
            "/admin/login", data={"email": ADMIN, "password": PASSWORD, "csrf": token.group(1)}
        )
        assert answer.status_code == 303, f"sign-in answered {answer.status_code}"
        pages = [
            ("overview", "/admin/"),
            ("subscribers", "/admin/subscribers"),
            ("search by address (prefix)", f"/admin/subscribers?q={values['address']}"),
            ("search by name (prefix)", f"/admin/subscribers?q={values['name']}"),
            ("search by name, one letter", "/admin/subscribers?q=m"),
            ("filter by course", "/admin/subscribers?course=marathon"),
            ("filter by status", "/admin/subscribers?status=paused"),
            ("filter by course and status", "/admin/subscribers?course=mobility&status=paused"),
            ("deep page (after=)", f"/admin/subscribers?after={values['deep']}"),
            ("one subscriber", f"/admin/subscribers/{values['person']}"),
            ("audit log", "/admin/audit"),
            ("courses", "/admin/courses"),
            ("one course", "/admin/courses/runners"),
            ("one lesson's preview", "/admin/courses/runners/lessons/2"),
            ("deliveries", "/admin/deliveries"),
            ("operators", "/admin/operators"),
            ("add a subscriber (the form)", "/admin/subscribers/new"),
            ("import (the form)", "/admin/subscribers/import"),
        ]
        timings = []
        for name, url in pages:
            answer = await client.get(url)
            label = f"{name}: `{url}`"
            if answer.status_code == 404:
                timings.append(Timing(label, [], "404: no such page here, skipped"))
                continue
            if answer.status_code != 200:
                timings.append(Timing(label, [], f"answered {answer.status_code}, skipped"))
                continue
            times = []
            for _ in range(requests):
                began = time.perf_counter()
                answer = await client.get(url)
                times.append(time.perf_counter() - began)
                assert answer.status_code == 200
            timings.append(Timing(label, times))
            print(f"  {timings[-1].row()}", flush=True)
    return timings


def time_operations(database: Database, requests: int) -> list[Timing]:
    """What the Courses and Deliveries pages show, asked of the operations directly."""
    from dripcourse.app import overview  # noqa: F401 - the module the pages read

    def course_reports(session: Session) -> object:
        return [report.course_report(session, slug) for slug, *_ in COURSES]

    def retrying(session: Session) -> object:
        return session.scalars(
            select(Delivery)
            .where(Delivery.status == "pending", Delivery.attempts > 0)
            .order_by(Delivery.next_attempt_at)
            .limit(50)
        ).all()

    def failed_or_retrying(session: Session) -> object:
        return session.scalars(
            select(Delivery)
            .where(
                (Delivery.status == "failed")
                | ((Delivery.status == "pending") & (Delivery.attempts > 0))
            )
            .order_by(Delivery.next_attempt_at.desc())
            .limit(50)
        ).all()

    def recent_bounces(session: Session) -> object:
        return session.scalars(
            select(Delivery)
            .where(Delivery.bounced_at.is_not(None))
            .order_by(Delivery.bounced_at.desc())
            .limit(50)
        ).all()

    def recent_failed(session: Session) -> object:
        return session.scalars(
            select(Delivery)
            .where(Delivery.status == "failed")
            .order_by(Delivery.last_attempt_at.desc())
            .limit(50)
        ).all()

    operations: list[tuple[str, Callable[[Session], object]]] = [
        (
            "`report.course_report`, one course (runners)",
            lambda s: report.course_report(s, "runners"),
        ),
        ("`report.course_report`, all five courses", course_reports),
        ("failed deliveries by last attempt, newest 50", recent_failed),
        ("retrying deliveries (pending, attempted before), soonest 50", retrying),
        ("failed or retrying in one query (an OR: no index order), 50", failed_or_retrying),
        ("recent bounces and complaints (`bounced_at`), newest 50", recent_bounces),
    ]
    timings = []
    for name, operation in operations:
        times = []
        for attempt in range(requests + 1):
            began = time.perf_counter()
            with database.read() as session:
                operation(session)
            if attempt:  # the first one warms the cache
                times.append(time.perf_counter() - began)
        timings.append(Timing(name, times))
        print(f"  {timings[-1].row()}", flush=True)
    return timings


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--deliveries", type=int, default=10_000_000)
    parser.add_argument("--postgres", metavar="URL", help="an empty PostgreSQL database instead")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/dripcourse-bench"))
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--courses", type=Path, default=Path(__file__).parent.parent / "emails")
    parser.add_argument(
        "--pages-only", action="store_true", help="leave out the operations timed directly"
    )
    args = parser.parse_args(argv)
    plan = Plan(args.subscribers, args.deliveries)
    if args.postgres:
        url = args.postgres
    else:
        args.cache.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{args.cache / f'dashboard-{plan.subscribers}-{plan.deliveries}.db'}"
    database = Database(url)
    if args.postgres and not args.rebuild and not _cached(database, plan):
        # Building starts by dropping the schema: never that of a database we did not build.
        from sqlalchemy import inspect

        if inspect(database.engine).get_table_names():
            raise SystemExit(f"{url} holds tables of another size or use: --rebuild wipes it")
    if args.rebuild or not _cached(database, plan):
        print(f"building {url}: {plan.subscribers:,} subscribers, {plan.deliveries:,} deliveries")
        _wipe(database)
        database = Database(url)
        counts = build(database, plan, args.courses)
        print("  " + ", ".join(f"{value:,} {key}" for key, value in counts.items()))
    else:
        print(f"using the cached {url}")
        began = time.perf_counter()
        migrations.upgrade(database)
        print(
            f"  schema at {migrations.current_revision(database)} ({time.perf_counter() - began:.1f} s)"
        )
    with database.transaction() as session:
        # Sign-ins of earlier runs, so that the table stays as it was built.
        from dripcourse.store.models import OperatorSession

        session.execute(delete(OperatorSession))
    settings = Settings(database_url=url, base_url="http://bench.local")
    app = create_app(settings, database, FixedClock(NOW))
    values = sample(database)
    timings = asyncio.run(time_pages(app, values, args.requests))
    if not args.pages_only:
        timings += time_operations(database, args.requests)
    with database.read() as session:
        people = session.scalar(select(func.count()).select_from(Subscriber))
        sent = session.scalar(select(func.max(Delivery.id)))
    print()
    print(
        f"{database.dialect}, {people:,} subscribers, {sent:,} deliveries; {args.requests} "
        "requests per page after one warm-up; milliseconds"
    )
    print()
    print("| page or operation | median ms | p95 ms | note |")
    print("|---|---:|---:|---|")
    for timing in timings:
        print(timing.row())
    database.dispose()


if __name__ == "__main__":
    main()
