"""The JSON bodies of the operator API: what comes in, what goes out, and how a model becomes one.

Pydantic models, so that /openapi.json describes exactly what the server accepts and answers. Input
models check only shape and size (every string has a maximum length, unknown fields are refused);
what an address, a name or a zone must be is decided by `dripcourse.domain.validation`, inside the
operations, and answered with 400.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AliasPath,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
)

from dripcourse.app.overview import CourseSummary, Status
from dripcourse.domain.validation import MAX_EMAIL, MAX_NAME
from dripcourse.store.models import (
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    EnrollmentStatus,
    Lesson,
    Subscriber,
)

MAX_SLUG = 64
MAX_LESSON = 100
"""A lesson key is at most 100 characters; a lesson number is shorter."""
MAX_ZONE = 64
MAX_ID = 2**63 - 1
"""The largest id the database can hold: larger ones are refused (422), not looked up."""
MAX_OFFSET = 1_000_000_000
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


MAX_FIELD_NAME = 64
MAX_FIELD_VALUE = 1000
"""Shape only: what a value may be (at most 200 characters of text, one of the choices) is
`domain/fields.check_values`'s, answered with 400."""
FieldValuesIn = Annotated[
    dict[
        Annotated[str, StringConstraints(max_length=MAX_FIELD_NAME)],
        Annotated[str, StringConstraints(max_length=MAX_FIELD_VALUE)] | None,
    ],
    Field(max_length=50),
]


class Input(BaseModel):
    # Booleans are `StrictBool` and instants must be text: pydantic would otherwise take 0, "yes"
    # or a number of seconds, which the documented schema (boolean, date-time) does not allow.
    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    # The docstring under a field becomes its description in /openapi.json. A model whose fields
    # are the attributes of what an operation returns is made with `model_validate(obj)`; the
    # others have an `of()` that works out what differs.
    model_config = ConfigDict(use_attribute_docstrings=True, from_attributes=True)


# -- what comes in ------------------------------------------------------------------------------


class NewSubscriber(Input):
    email: str = Field(max_length=MAX_EMAIL, examples=["ada@example.com"])
    course: str = Field(max_length=MAX_SLUG, examples=["runners"])
    name: str | None = Field(default=None, max_length=MAX_NAME, examples=["Ada Lovelace"])
    timezone: str | None = Field(
        default=None,
        max_length=MAX_ZONE,
        description="IANA time zone; default: the course's zone.",
        examples=["America/Toronto"],
    )
    confirmed: StrictBool = Field(
        default=False,
        description="They have already agreed to receive the course: no confirmation email.",
    )
    fields: FieldValuesIn | None = Field(
        default=None,
        description="Values of the course's custom fields (course.toml [fields]), by name; an "
        "unknown field or a value outside a field's choices is refused (400).",
        examples=[{"level": "returning"}],
    )


class FieldChanges(Input):
    fields: FieldValuesIn = Field(
        description="The values to set, by field name; an empty string or null removes a value, "
        "so that the field's default applies again. Fields not named keep their values.",
        examples=[{"level": "returning", "club": "Riverside Runners"}],
    )


class SubscriberChanges(Input):
    name: str | None = Field(
        default=None, max_length=MAX_NAME, description="Absent or null: unchanged; empty: cleared."
    )
    timezone: str | None = Field(
        default=None, max_length=MAX_ZONE, description="IANA time zone; absent or null: unchanged."
    )


class QueueRequest(Input):
    to: str | None = Field(
        default=None,
        max_length=MAX_EMAIL,
        description="One enrolled person's address.",
        examples=["ada@example.com"],
    )
    all_active: StrictBool = Field(default=False, description="Everyone active in the course.")
    at: AwareDatetime | None = Field(
        default=None,
        description="When it is due (default: now): an RFC 3339 date and time with its offset.",
        examples=["2026-03-09T08:00:00-04:00"],
    )

    @field_validator("at", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        if value is not None and not isinstance(value, str):
            raise ValueError("an instant is written as text, e.g. 2026-03-09T08:00:00-04:00")
        return value

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        try:
            return None if value is None else value.astimezone(UTC)
        except OverflowError:
            raise ValueError("the instant is out of range") from None


# -- what goes out ------------------------------------------------------------------------------


class Problem(Output):
    error: str


class ValidationIssue(Output):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(Output):
    detail: list[ValidationIssue]


class EnrollmentOut(Output):
    course: str = Field(validation_alias=AliasPath("course", "slug"))  # the course's slug
    status: EnrollmentStatus
    created_at: datetime
    confirmed_at: datetime | None
    paused_at: datetime | None
    ended_at: datetime | None
    next_due_at: datetime | None
    """When the next lesson in the rhythm is owed; null while one is in the ledger or none is."""
    fields: dict[str, str] = {}
    """The custom field values this person gave (a field's default applies to one not given)."""


class SubscriberOut(Output):
    id: int
    email: str
    name: str
    timezone: str
    created_at: datetime
    enrollments: list[EnrollmentOut]


class SubscriberPage(Output):
    items: list[SubscriberOut]
    limit: int
    offset: int


class DeliveryOut(Output):
    id: int
    course: str
    lesson_key: str | None
    lesson_number: int | None
    """The lesson's place in the course (for a retired lesson, its last one)."""
    kind: DeliveryKind
    status: DeliveryStatus
    due_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    attempts: int
    smtp_code: int | None
    last_error: str | None
    message_id: str

    @classmethod
    def fields_of(cls, delivery: Delivery) -> dict[str, Any]:
        lesson = delivery.lesson
        return {
            "id": delivery.id,
            "course": delivery.enrollment.course.slug,
            "lesson_key": lesson.key if lesson else None,
            "lesson_number": lesson.position if lesson else None,
            "kind": DeliveryKind(delivery.kind),
            "status": DeliveryStatus(delivery.status),
            "due_at": delivery.due_at,
            "next_attempt_at": delivery.next_attempt_at,
            "sent_at": delivery.sent_at,
            "attempts": delivery.attempts,
            "smtp_code": delivery.smtp_code,
            "last_error": delivery.last_error,
            "message_id": delivery.message_id,
        }

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        return cls(**cls.fields_of(delivery))


class SubscriberDetail(SubscriberOut):
    deliveries: list[DeliveryOut]
    """Every message owed to or sent to this person, oldest first."""

    @classmethod
    def of_history(cls, subscriber: Subscriber, deliveries: list[Delivery]) -> SubscriberDetail:
        return cls(
            # The fields as models, not dumped: a dump would not read back by its aliases.
            **dict(SubscriberOut.model_validate(subscriber)),
            deliveries=[DeliveryOut.of(d) for d in deliveries],
        )


class LedgerEntry(DeliveryOut):
    subscriber_id: int
    email: str

    @classmethod
    def of(cls, delivery: Delivery) -> LedgerEntry:
        subscriber = delivery.enrollment.subscriber
        return cls(**cls.fields_of(delivery), subscriber_id=subscriber.id, email=subscriber.email)


class DeliveryPage(Output):
    items: list[LedgerEntry]
    limit: int
    offset: int


class LessonOut(Output):
    key: str
    number: int | None
    """Its place in the course today; null for a retired lesson."""
    subject: str
    title: str
    source_file: str
    retired_at: datetime | None

    @classmethod
    def of(cls, lesson: Lesson, number: int | None) -> LessonOut:
        return cls(
            key=lesson.key,
            number=number,
            subject=lesson.subject,
            title=lesson.title,
            source_file=lesson.source_file,
            retired_at=lesson.retired_at,
        )


class LessonDetail(LessonOut):
    front_matter: dict[str, Any]
    """Preheader, topics, exercises, equipment, teaser, related articles."""
    body: str
    """The Markdown body with its Jinja personalisation, as written."""

    @classmethod
    def of_lesson(cls, lesson: Lesson, number: int | None) -> LessonDetail:
        return cls(
            **LessonOut.of(lesson, number).model_dump(), front_matter=lesson.data, body=lesson.body
        )


def lessons_of(summary: CourseSummary) -> list[LessonOut]:
    """Current lessons in sending order, then the retired ones."""
    return [LessonOut.of(lesson, n) for n, lesson in enumerate(summary.lessons, 1)] + [
        LessonOut.of(lesson, None) for lesson in summary.retired
    ]


class CourseOut(Output):
    slug: str
    title: str
    description: str | None
    lesson_count: int
    """How many lessons the course has today."""
    enrollments: dict[str, int]
    """Enrolments by status."""
    synced_at: datetime

    @classmethod
    def fields_of(cls, summary: CourseSummary) -> dict[str, Any]:
        course = summary.course
        return {
            "slug": course.slug,
            "title": course.title,
            "description": course.settings.description,
            "lesson_count": len(summary.lessons),
            "enrollments": {s.value: summary.enrollments.get(s, 0) for s in EnrollmentStatus},
            "synced_at": course.synced_at,
        }

    @classmethod
    def of(cls, summary: CourseSummary) -> CourseOut:
        return cls(**cls.fields_of(summary))


class SenderOut(Output):
    name: str
    email: str
    reply_to: str | None


class ScheduleOut(Output):
    cadence_days: int
    send_time: str
    """Local wall-clock time, HH:MM, in each subscriber's own zone."""
    send_days: list[str]
    timezone: str
    """The zone of subscribers who did not give one."""


class CourseDetail(CourseOut):
    brand: str
    language: str
    double_opt_in: bool
    sender: SenderOut
    schedule: ScheduleOut
    lessons: list[LessonOut]
    """Current lessons in sending order, then the retired ones."""

    @classmethod
    def of_summary(cls, summary: CourseSummary) -> CourseDetail:
        settings = summary.course.settings
        rhythm = settings.rhythm
        return cls(
            **cls.fields_of(summary),
            brand=settings.brand,
            language=settings.language,
            double_opt_in=settings.double_opt_in,
            sender=SenderOut(
                name=settings.sender.name,
                email=settings.sender.email,
                reply_to=settings.sender.reply_to,
            ),
            schedule=ScheduleOut(
                cadence_days=rhythm.cadence_days,
                send_time=f"{rhythm.send_time:%H:%M}",
                send_days=[DAY_NAMES[day] for day in sorted(rhythm.send_days)],
                timezone=settings.timezone,
            ),
            lessons=lessons_of(summary),
        )


class Preview(Output):
    key: str
    number: int | None
    subject: str
    html: str
    text: str


class Queued(Output):
    queued: int
    """How many people now owe this lesson."""


class Failure(Output):
    email: str
    lesson: str
    error: str


class StatusOut(Output):
    subscribers: int
    enrollments: dict[str, int]
    """By status, every status present (zero included)."""
    deliveries: dict[str, int]
    suppressions: dict[str, int]
    """By reason."""
    failed_last_day: int
    recent_failures: list[Failure]
    next_due: datetime | None

    @classmethod
    def of(cls, status: Status) -> StatusOut:
        return cls(
            subscribers=status.subscribers,
            enrollments={s.value: status.enrollments.get(s, 0) for s in EnrollmentStatus},
            deliveries={s.value: status.deliveries.get(s, 0) for s in DeliveryStatus},
            suppressions=dict(status.suppressions),
            failed_last_day=status.failed_last_day,
            recent_failures=[
                Failure(email=email, lesson=lesson, error=error)
                for email, lesson, error in status.recent_failures
            ],
            next_due=status.next_due,
        )
