"""A course's settings (`course.toml`) as one typed, frozen value: what every layer reads of a course.

`courses/files.py` parses and checks `course.toml` once and builds a `CourseSettings`; the store keeps
it in the JSON column `courses.settings` (`store/models.CourseSettingsColumn`) in the shape
`to_json` writes. That shape is the one older versions stored as a plain dict, so existing
databases need no migration, and it is also what course templates see as `course`
(docs/course-format.md, "Templates"): `course.sender.get("bounce_email")` keeps working there.

`from_json` reads rows of every version: what older ones lack gets the default that reading
`course.toml` gives today (`double_opt_in` and `[tracking]` came later, `sender.bounce_email` is
optional). Nothing here does I/O; the one rule checked is the schedule's, by `Rhythm` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dripcourse.domain.fields import FieldSpec
from dripcourse.domain.schedule import Rhythm, parse_send_time

DEFAULT_LANGUAGE = "en"
DEFAULT_ZONE = "UTC"
DEFAULT_ACCENT = "#0f766e"


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
            },
            "contact": {"email": self.contact.email, "phone": self.contact.phone},
            "footer": {"postal_address": self.postal_address},
            "call_to_action": None
            if self.call_to_action is None
            else self.call_to_action.to_json(),
            "links": dict(self.links),
            "theme": {"accent": self.accent},
            "tracking": {"clicks": self.tracks_clicks},
            "related": [
                {"title": item.title, "url": item.url, "summary": item.summary}
                for item in self.related
            ],
        }
        if self.fields:  # a key only when declared: the shape of a course without stays as it was
            shape["fields"] = [spec.to_json() for spec in self.fields]
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
                Related(item["title"], item["url"], item.get("summary"))
                for item in data.get("related") or []
            ),
            accent=(data.get("theme") or {}).get("accent", DEFAULT_ACCENT),
            # Courses synced before click tracking existed have no [tracking]: not tracked.
            tracks_clicks=bool((data.get("tracking") or {}).get("clicks", False)),
            # Courses synced before custom fields existed declare none.
            fields=tuple(FieldSpec.from_json(spec) for spec in data.get("fields") or []),
        )
