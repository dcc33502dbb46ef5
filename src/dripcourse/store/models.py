"""The typed SQLAlchemy models: courses, lessons, subscribers, enrolments, deliveries, suppressions,
and the operators of the dashboard with their sessions and the audit log.

The schema is created and changed only by the Alembic migrations in `alembic/`; a test checks that the
migrations and these models agree. All instants are stored as UTC and come back timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates
from sqlalchemy.sql.elements import ColumnElement

from dripcourse.domain.course_settings import CourseSettings
from dripcourse.domain.states import DeliveryKind as DeliveryKind
from dripcourse.domain.states import DeliveryStatus as DeliveryStatus
from dripcourse.domain.states import EnrollmentStatus as EnrollmentStatus
from dripcourse.domain.states import SuppressionReason as SuppressionReason
from dripcourse.domain.validation import address_hash, mailbox_key, search_key

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (SQLite has no zones), handed back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class CourseSettingsColumn(TypeDecorator[CourseSettings]):
    """`CourseSettings` stored as JSON, in the shape older versions wrote as a plain dict: no
    migration, and rows of any version read back (`CourseSettings.from_json`)."""

    impl = JSON
    cache_ok = True

    def process_bind_param(
        self, value: CourseSettings | None, dialect: Dialect
    ) -> dict[str, Any] | None:
        return None if value is None else value.to_json()

    def process_result_value(self, value: Any, dialect: Dialect) -> CourseSettings | None:
        return None if value is None else CourseSettings.from_json(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        CourseSettings: CourseSettingsColumn,
    }


class AppMeta(Base):
    """Small key-value facts about this installation (the generated secret key)."""

    __tablename__ = "app_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Course(Base):
    __tablename__ = "courses"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    settings: Mapped[CourseSettings]
    """course.toml as read and checked by `courses/files.py`."""
    layout_html: Mapped[str | None] = mapped_column(Text)
    layout_text: Mapped[str | None] = mapped_column(Text)
    synced_at: Mapped[datetime]

    lessons: Mapped[list[Lesson]] = relationship(
        back_populates="course", order_by="Lesson.position"
    )
    media: Mapped[list[MediaFile]] = relationship(
        back_populates="course", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def current_lessons(self) -> list[Lesson]:
        """The lessons of the course as its files stand, in order (retired ones keep their rows
        for the history, but nobody is owed them)."""
        return [lesson for lesson in self.lessons if lesson.is_current]


class Lesson(Base):
    __tablename__ = "lessons"
    __table_args__ = (UniqueConstraint("course_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    """The lesson's identity, stable across renames and reordering."""
    position: Mapped[int]
    """1-based place in the course; retired lessons keep their last one."""
    source_file: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]]
    """Front matter: preheader, topics, exercises, equipment, teaser, related."""
    body: Mapped[str] = mapped_column(Text)
    """The Markdown body with its Jinja personalisation, as written."""
    body_line: Mapped[int] = mapped_column(Integer, default=1)
    """Line of the source file where the body starts, for error messages."""
    content_hash: Mapped[str] = mapped_column(String(64))
    retired_at: Mapped[datetime | None]

    course: Mapped[Course] = relationship(back_populates="lessons")

    @hybrid_property
    def is_current(self) -> bool:
        """Still in the course's files: in Python for a loaded lesson, in SQL in a query."""
        return self.retired_at is None

    @is_current.inplace.expression
    @classmethod
    def _is_current_expression(cls) -> ColumnElement[bool]:
        return cls.retired_at.is_(None)


def _key_of_email(context: DefaultExecutionContext) -> str:
    parameters: dict[str, Any] = context.get_current_parameters()  # type: ignore[no-untyped-call]
    return mailbox_key(parameters["email"])


NAME_KEY_LENGTH = 200
"""Lower case may be longer than the name (İ is i and a dot): the key is cut to the column."""


def _search_key_of_name(context: DefaultExecutionContext) -> str:
    parameters: dict[str, Any] = context.get_current_parameters()  # type: ignore[no-untyped-call]
    return search_key(parameters.get("name") or "")[:NAME_KEY_LENGTH]


class Subscriber(Base):
    __tablename__ = "subscribers"
    __table_args__ = (
        # The dashboard's search by the start of a name walks this index (on PostgreSQL with the
        # operator class that lets LIKE 'prefix%' use it whatever the database's collation).
        # With the address beside it, the matches are put in address order from the index alone.
        Index(
            "ix_subscribers_name_key_email_key",
            "name_key",
            "email_key",
            postgresql_ops={"name_key": "varchar_pattern_ops"},
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    """Normalised by email-validator, in the spelling the person typed: what mail is sent to."""
    email_key: Mapped[str] = mapped_column(String(320), unique=True, default=_key_of_email)
    """`validation.mailbox_key` of `email`: who this is. Every look-up by address goes through it,
    so that `Bob@` and `bob@` are one person (filled in from `email` when not given)."""
    name: Mapped[str] = mapped_column(String(200), default="")
    name_key: Mapped[str] = mapped_column(
        String(NAME_KEY_LENGTH), default=_search_key_of_name, server_default=""
    )
    """`validation.search_key` of `name` (every letter in lower case): what a search by name
    compares, with an index. Kept by `name`'s setter, filled in on a bulk insert."""
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    soft_bounces: Mapped[int] = mapped_column(default=0, server_default="0")
    """Soft bounces (4.x.x) reported so far; at `soft_bounce_limit` the address is suppressed."""

    enrollments: Mapped[list[Enrollment]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", passive_deletes=True
    )

    @validates("name")
    def _keep_name_key(self, _key: str, name: str) -> str:
        self.name_key = search_key(name or "")[:NAME_KEY_LENGTH]
        return name

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else ""


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "course_id"),
        # The dispatcher's "who is owed a lesson now" query walks only this index.
        Index("ix_enrollments_status_next_due_at", "status", "next_due_at"),
        # The course report's "who left after which lesson" reads only this index.
        Index(
            "ix_enrollments_course_id_status_left_after_lesson_id",
            "course_id",
            "status",
            "left_after_lesson_id",
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16), default="cli")
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    """When it completed or was unsubscribed."""
    left_after_lesson_id: Mapped[int | None]
    """Of an unsubscribed enrolment: the lesson of the last delivery sent before it ended, kept by
    triggers (`store/tallies.py`) for the course report. A copy of what the deliveries say, so no
    foreign key (SQLite copies a whole table to add one)."""
    next_due_at: Mapped[datetime | None]
    """When the next lesson is owed; None while one is in the ledger or nothing is owed."""
    # Consent evidence (double opt-in): who asked, from where, and who confirmed.
    signup_ip: Mapped[str | None] = mapped_column(String(45))
    signup_user_agent: Mapped[str | None] = mapped_column(String(300))
    confirm_ip: Mapped[str | None] = mapped_column(String(45))
    confirm_user_agent: Mapped[str | None] = mapped_column(String(300))
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    """The values of the course's custom fields (`[fields]` in course.toml) for this person,
    checked against the course's declaration before they are stored."""

    subscriber: Mapped[Subscriber] = relationship(back_populates="enrollments")
    course: Mapped[Course] = relationship()
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="enrollment", cascade="all, delete-orphan", passive_deletes=True
    )


class Delivery(Base):
    """The ledger: one row per message owed, with its fate."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # An enrolment's deliveries (the foreign key's index), and the last one sent before a
        # time without sorting them (the course report's "who left after which lesson").
        Index("ix_deliveries_enrollment_id_status_sent_at", "enrollment_id", "status", "sent_at"),
        # Failures of the last day and the latest ones (the overview, the Deliveries page).
        Index("ix_deliveries_status_last_attempt_at", "status", "last_attempt_at"),
        # A lesson in the rhythm is owed once per enrolment: two workers materialising at once
        # collide here and one of them ignores the conflict.
        Index(
            "uq_deliveries_lesson_once",
            "enrollment_id",
            "lesson_id",
            unique=True,
            sqlite_where=text("kind = 'lesson'"),
            postgresql_where=text("kind = 'lesson'"),
        ),
        # A course's completion email goes once per enrolment, whoever notices the end first.
        Index(
            "uq_deliveries_completion_once",
            "enrollment_id",
            unique=True,
            sqlite_where=text("kind = 'completion'"),
            postgresql_where=text("kind = 'completion'"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"))
    lesson_id: Mapped[int | None] = mapped_column(ForeignKey("lessons.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    first_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    smtp_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    """Assigned when the row is made and reused on every attempt."""
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    bounce: Mapped[str | None] = mapped_column(String(16))
    """`bouncereports.Kind` of the worst bounce reported for this message (hard outranks soft); the
    status stays `sent`, since the server did accept it."""
    bounced_at: Mapped[datetime | None] = mapped_column(index=True)
    """When that bounce report was read (indexed: the Deliveries page lists the latest)."""
    provider_id: Mapped[str | None] = mapped_column(String(255), index=True)
    """The id the provider's relay gave the message when it accepted it (`250 Ok <id>`,
    `domain/provider_ids`): its bounce and complaint events name the message by it."""

    enrollment: Mapped[Enrollment] = relationship(back_populates="deliveries")
    lesson: Mapped[Lesson | None] = relationship()


class MediaFile(Base):
    """An image of a course folder as processed at sync (resized, metadata stripped), served at
    `/media/<course>/<name>`. Rows are never replaced: an email already sent keeps pointing at the
    version it was sent with, and a changed image gets a new name (its content hash)."""

    __tablename__ = "media_files"
    __table_args__ = (UniqueConstraint("course_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    """As served: `<content hash>-<file name>`."""
    source: Mapped[str] = mapped_column(String(255))
    """The path the course folder gives it (`images/dead-bug.png`)."""
    content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int]
    height: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]

    course: Mapped[Course] = relationship(back_populates="media")


def _hash_of_email(context: DefaultExecutionContext) -> str:
    parameters: dict[str, Any] = context.get_current_parameters()  # type: ignore[no-untyped-call]
    return address_hash(parameters["email"])


class Suppression(Base):
    """Addresses never to be mailed, whatever their enrolments say. Every check matches by
    `email_hash`, so a suppression whose person was forgotten (email None) still holds."""

    __tablename__ = "suppressions"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    """None once the person was forgotten."""
    email_hash: Mapped[str] = mapped_column(String(64), unique=True, default=_hash_of_email)
    """`validation.address_hash` of the address (filled in from `email` when not given)."""
    reason: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class Click(Base):
    """A person's first click on one link of one lesson (`clicks.py`); later clicks add nothing."""

    __tablename__ = "clicks"
    __table_args__ = (
        # Once per person and link: a second click, or two at once, collide here and are ignored.
        UniqueConstraint("lesson_id", "enrollment_id", "url_hash"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"))
    enrollment_id: Mapped[int] = mapped_column(
        ForeignKey("enrollments.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    url_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of `url`: a URL may be longer than an index entry may be."""
    clicked_at: Mapped[datetime]


class ProcessedBounce(Base):
    """Bounce and complaint messages already read (by their own Message-ID, or the SHA-256 of their
    bytes when they have none), so a mailbox read twice counts nothing twice."""

    __tablename__ = "processed_bounces"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_key: Mapped[str] = mapped_column(String(255), unique=True)
    outcome: Mapped[str] = mapped_column(String(16))
    processed_at: Mapped[datetime]


class Operator(Base):
    """A person who runs the courses from the dashboard (`app/operators.py`)."""

    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    """`mailbox_key(email)`: one account per mailbox, whatever the spelling."""
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    """argon2id, as a PHC string; None while an invited operator has not chosen a password."""
    invitation_nonce: Mapped[int | None] = mapped_column(BigInteger)
    """The number the newest emailed link must carry (`app/invitations.py`); None: no link is out."""
    created_at: Mapped[datetime]
    sessions: Mapped[list[OperatorSession]] = relationship(
        back_populates="operator", cascade="all, delete-orphan", passive_deletes=True
    )


class OperatorSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is kept here, so a
    copy of the database opens no session."""

    __tablename__ = "operator_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    operator: Mapped[Operator] = relationship(back_populates="sessions")


class AuditEntry(Base):
    """One change, with who made it and to whom (`app/audit.py`)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(400))
    """Who: `operator ada@example.com`, `command line (user)`, `API`."""
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(400), index=True)
    """To whom: an address (of an operator or a subscriber), or a course."""
    detail: Mapped[str] = mapped_column(Text)


class LessonTally(Base):
    """Deltas of a lesson's delivery outcomes, kept by triggers (`store/tallies.py`): their sums
    are the course report's sent, failed and hard-bounced."""

    __tablename__ = "lesson_tallies"
    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lessons.id", ondelete="CASCADE"), index=True)
    sent: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    bounced: Mapped[int] = mapped_column(default=0)


class DayTally(Base):
    """Deltas of the messages sent on a UTC day, kept by triggers (`store/tallies.py`)."""

    __tablename__ = "day_tallies"
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(index=True)
    sent: Mapped[int] = mapped_column(default=0)


class DueTally(Base):
    """Deltas of the active enrolments whose next lesson is owed on a UTC day, kept by triggers
    (`store/tallies.py`)."""

    __tablename__ = "due_tallies"
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(index=True)
    owed: Mapped[int] = mapped_column(default=0)


class EnrollmentTally(Base):
    """Deltas of the enrolments of a course in a status, kept by triggers (`store/tallies.py`)."""

    __tablename__ = "enrollment_tallies"
    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(default=0)


# Models kept in modules of their own, on the same Base: imported here so that every user of the
# metadata (migrations, transfer, forgetting) sees their tables.
from dripcourse.store import provider_events as provider_events  # noqa: E402
from dripcourse.store import webhook_models as webhook_models  # noqa: E402
