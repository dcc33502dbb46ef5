"""A course's settings (`course.toml`) as one typed, frozen value: what every layer reads of a course.

`courses/files.py` parses and checks `course.toml` once and builds a `CourseSettings`; the store keeps
it in the JSON column `courses.settings` (`store/models.CourseSettingsColumn`) in the shape
`to_json` writes. That shape is the one older versions stored as a plain dict, so existing
databases need no migration, and it is also what course templates see as `course`
(docs/course-format.md, "Templates"): `course.sender.get("bounce_email")` keeps working there.

`from_json` reads rows of every version: what older ones lack gets the default that reading
`course.toml` gives today (`double_opt_in` and `[tracking]` came later, `sender.bounce_email` is
optional). Nothing here does I/O; the rules checked are the schedule's, by `Rhythm` and `Cohort`
themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from dripcourse.domain.cohort import Cohort, parse_late_joiners
from dripcourse.domain.completion import CompletionEmail
from dripcourse.domain.fields import FieldSpec
from dripcourse.domain.media import Picture
from dripcourse.domain.schedule import Rhythm, parse_send_time

DEFAULT_LANGUAGE = "en"
DEFAULT_ZONE = "UTC"
DEFAULT_ACCENT = "#0f766e"
DEFAULT_IMAGE_KB = 200


@dataclass(frozen=True, slots=True)
class Sender:
    """Who the lessons come from (`[sender]`)."""

    name: str
    email: str
    reply_to: str | None = None
    unsubscribe_email: str | None = None
    """Where `List-Unsubscribe`'s mailto goes; when not written, `email` (see `from_json`)."""
    bounce_email: str | None = None
    """Only when written: otherwise the operator's bounce address, else bounces@ `email`'s domain."""

    def to_json(self) -> dict[str, Any]:
        shape: dict[str, Any] = {
            "name": self.name,
            "email": self.email,
            "reply_to": self.reply_to,
            "unsubscribe_email": self.unsubscribe_email,
        }
        if self.bounce_email is not None:  # a key only if written: templates test for it
            shape["bounce_email"] = self.bounce_email
        return shape

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Sender:
        return cls(
            name=data["name"],
            email=data["email"],
            reply_to=data.get("reply_to"),
            unsubscribe_email=data.get("unsubscribe_email", data["email"]),
            bounce_email=data.get("bounce_email"),
        )


@dataclass(frozen=True, slots=True)
class Contact:
    """How subscribers reach a person (`[contact]`), shown in the footer when given."""

    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class CallToAction:
    """The box at the end of every lesson (`[call_to_action]`)."""

    heading: str
    label: str
    url: str
    text: str | None = None
    """Only when written."""

    def to_json(self) -> dict[str, Any]:
        shape = {"heading": self.heading, "label": self.label, "url": self.url}
        return shape if self.text is None else shape | {"text": self.text}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallToAction:
        return cls(data["heading"], data["label"], data["url"], data.get("text"))


@dataclass(frozen=True, slots=True)
class Related:
    """One `[[related]]` article, offered under a lesson that names none of its own."""

    title: str
    url: str
    summary: str | None = None
    thumbnail: str | None = None
    """An image of the course folder shown beside the article (`domain/media.py`), or None."""

    def to_json(self) -> dict[str, Any]:
        shape = {"title": self.title, "url": self.url, "summary": self.summary}
        return shape if self.thumbnail is None else shape | {"thumbnail": self.thumbnail}


@dataclass(frozen=True, slots=True)
class CourseSettings:
    """Everything `course.toml` says, every default filled in."""

    title: str
    brand: str
    sender: Sender
    postal_address: str
    """`[footer] postal_address`: anti-spam laws want it in every email."""
    description: str | None = None
    language: str = DEFAULT_LANGUAGE
    double_opt_in: bool = True
    """Whether a sign-up over HTTP is confirmed by email first."""
    rhythm: Rhythm = field(default_factory=Rhythm)
    """`[schedule]` but its zone: when lessons go out, in each subscriber's own zone."""
    timezone: str = DEFAULT_ZONE
    """`schedule.timezone`: the zone of a subscriber who gives none."""
    contact: Contact = field(default_factory=Contact)
    call_to_action: CallToAction | None = None
    links: tuple[tuple[str, str], ...] = ()
    """`[links]`: (name, URL) in the order written; a tuple, so that the settings stay frozen."""
    related: tuple[Related, ...] = ()
    accent: str = DEFAULT_ACCENT
    """`theme.accent`, a #rrggbb colour."""
    tracks_clicks: bool = False
    """`tracking.clicks`: off unless asked for (see app/clicks.py)."""
    allow_early: bool = False
    """`schedule.allow_early`: each lesson but the last offers "get the next lesson now"."""
    next_course: str | None = None
    """`[next] course`: the slug a person who finishes is enrolled in, consent carried over."""
    completion: CompletionEmail | None = None
    """`completion.md`, when the course has one: the email sent once the course is finished."""
    cohort: Cohort | None = None
    """`schedule.starts_on` and `schedule.late_joiners`: a cohort course (domain/cohort.py);
    None for a course where each person starts when they sign up."""
    logo: str | None = None
    """`[brand] logo`: an image of the course folder for the header, or None."""
    max_image_kb: int = DEFAULT_IMAGE_KB
    """`[images] max_kb`: the largest an image may be once processed."""
    media: tuple[Picture, ...] = ()
    """The course's images as processed by its last `courses sync` (empty as read from files)."""
    fields: tuple[FieldSpec, ...] = ()
    """`[fields]`: the custom fields a person may give, in the order written (domain/fields.py)."""

    def to_json(self) -> dict[str, Any]:
        """The settings as stored and as templates see them (a new dict each time)."""
        shape = {
            "title": self.title,
            "description": self.description,
            "brand": self.brand,
            "language": self.language,
            "double_opt_in": self.double_opt_in,
            "sender": self.sender.to_json(),
            "schedule": {
                "cadence_days": self.rhythm.cadence_days,
                "send_time": self.rhythm.send_time.strftime("%H:%M"),
                "send_days": sorted(self.rhythm.send_days),
                "timezone": self.timezone,
                **_cohort_keys(self.cohort),
            },
            "contact": {"email": self.contact.email, "phone": self.contact.phone},
            "footer": {"postal_address": self.postal_address},
            "call_to_action": None
            if self.call_to_action is None
            else self.call_to_action.to_json(),
            "links": dict(self.links),
            "theme": {"accent": self.accent},
            "tracking": {"clicks": self.tracks_clicks},
            "related": [item.to_json() for item in self.related],
        }
        # Keys of images only when there are any, so a course without them is stored as before;
        # `brand` stays the name: layouts written before logos print `course.brand`.
        if self.logo is not None:
            shape["logo"] = self.logo
        if self.max_image_kb != DEFAULT_IMAGE_KB:
            shape["images"] = {"max_kb": self.max_image_kb}
        if self.media:
            shape["media"] = [picture.to_json() for picture in self.media]
        if self.fields:  # a key only when declared: the shape of a course without stays as it was
            shape["fields"] = [spec.to_json() for spec in self.fields]
        return shape | self._after_json()

    def _after_json(self) -> dict[str, Any]:
        """`allow_early`, `[next]` and the completion email: keys only when set, so a course
        without them stores (and older rows read back as) exactly what it did before."""
        shape: dict[str, Any] = {}
        if self.allow_early:
            shape["allow_early"] = True
        if self.next_course is not None:
            shape["next"] = {"course": self.next_course}
        if self.completion is not None:
            shape["completion"] = self.completion.to_json()
        return shape

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CourseSettings:
        """Settings as `to_json` writes them, or as any older version stored them.

        A key that is missing gets the default `course.toml` gives when it is not written; one that
        was always required (title, brand, sender name and email, postal address) raises KeyError.
        """
        schedule = data.get("schedule") or {}
        contact = data.get("contact") or {}
        cta = data.get("call_to_action")
        return cls(
            title=data["title"],
            brand=data["brand"],
            sender=Sender.from_json(data["sender"]),
            postal_address=data["footer"]["postal_address"],
            description=data.get("description"),
            language=data.get("language", DEFAULT_LANGUAGE),
            double_opt_in=bool(data.get("double_opt_in", True)),
            rhythm=Rhythm(
                cadence_days=schedule.get("cadence_days", 7),
                send_time=parse_send_time(schedule.get("send_time", "08:00")),
                send_days=frozenset(schedule.get("send_days", range(7))),
            ),
            timezone=schedule.get("timezone", DEFAULT_ZONE),
            contact=Contact(contact.get("email"), contact.get("phone")),
            call_to_action=None if cta is None else CallToAction.from_json(cta),
            links=tuple((data.get("links") or {}).items()),
            related=tuple(
                Related(item["title"], item["url"], item.get("summary"), item.get("thumbnail"))
                for item in data.get("related") or []
            ),
            accent=(data.get("theme") or {}).get("accent", DEFAULT_ACCENT),
            # Courses synced before click tracking existed have no [tracking]: not tracked.
            tracks_clicks=bool((data.get("tracking") or {}).get("clicks", False)),
            allow_early=bool(data.get("allow_early", False)),
            next_course=(data.get("next") or {}).get("course"),
            completion=(
                None
                if data.get("completion") is None
                else CompletionEmail.from_json(data["completion"])
            ),
            cohort=_cohort_of(schedule),
            # Courses synced before images existed have none of these.
            logo=data.get("logo"),
            max_image_kb=int((data.get("images") or {}).get("max_kb", DEFAULT_IMAGE_KB)),
            media=tuple(Picture.from_json(item) for item in data.get("media") or []),
            # Courses synced before custom fields existed declare none.
            fields=tuple(FieldSpec.from_json(spec) for spec in data.get("fields") or []),
        )


def _cohort_keys(cohort: Cohort | None) -> dict[str, Any]:
    # Keys only in a cohort course, so that every other course keeps the shape older versions wrote
    # (templates test for them with `course.schedule.get("starts_on")`).
    if cohort is None:
        return {}
    return {"starts_on": cohort.starts_on.isoformat(), "late_joiners": cohort.late_joiners.value}


def _cohort_of(schedule: Mapping[str, Any]) -> Cohort | None:
    if schedule.get("starts_on") is None:
        return None
    starts_on = schedule["starts_on"]
    return Cohort(
        starts_on if isinstance(starts_on, date) else date.fromisoformat(starts_on),
        parse_late_joiners(schedule.get("late_joiners", "catch_up")),
    )
