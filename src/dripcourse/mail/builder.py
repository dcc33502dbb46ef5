"""Turns one delivery (a `Job`) into the finished message: links signed, lesson rendered, MIME built,
and DKIM-signed last when the settings configure a key.

Shared by the dispatcher and by the operator's test sends (`for_sending`), so a test email is
exactly what a subscriber gets. The bytes it returns are final: backends send, write or show them
as they are, so the signature covers what goes on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from dripcourse.config import Settings
from dripcourse.domain.completion import COMPLETION_KEY
from dripcourse.domain.course_settings import CourseSettings
from dripcourse.domain.delivery import Job, OutgoingMessage
from dripcourse.domain.validation import domain_of
from dripcourse.mail.dkim import DkimSigner, signer_for
from dripcourse.mail.links import track_links, tracks_clicks
from dripcourse.mail.mime import Envelope, ascii_address, compose
from dripcourse.mail.rendering import (
    CourseRenderer,
    LessonContent,
    Links,
    Recipient,
    RenderedLesson,
    render_confirmation,
)
from dripcourse.mail.tokens import Purpose, Signer
from dripcourse.mail.verp import BounceAddresses, bounce_base
from dripcourse.store.models import Course, DeliveryKind


@dataclass(frozen=True)
class CourseView:
    """What message building needs of a course, read once per pass."""

    slug: str
    settings: CourseSettings
    renderer: CourseRenderer

    @classmethod
    def of(cls, course: Course, media_root: str = "") -> CourseView:
        """`media_root`: where images are served (`MessageBuilder.media_root`); empty: nowhere,
        and images are left as written."""
        return cls(course.slug, course.settings, renderer_for_course(course, media_root))


def media_url_of(media_root: str, slug: str) -> str:
    """Where one course's images are served: `<media root>/<slug>`; empty for an empty root."""
    return f"{media_root.rstrip('/')}/{slug}" if media_root else ""


def renderer_for_course(course: Course, media_root: str = "") -> CourseRenderer:
    """The renderer of a synced course. Retired lessons stay renderable for what is still owed."""
    active = course.current_lessons
    retired = [lesson for lesson in course.lessons if not lesson.is_current]
    contents = [LessonContent.of(lesson, number) for number, lesson in enumerate(active, 1)]
    contents += [LessonContent.of(lesson, lesson.position) for lesson in retired]
    if course.settings.completion is not None:
        # Not a lesson: numbered as the last one, and rendered only for a completion delivery.
        contents.append(LessonContent.of(course.settings.completion, len(active)))
    return CourseRenderer(
        settings=course.settings,
        lessons=contents,
        total=len(active),
        layout_html=course.layout_html,
        layout_text=course.layout_text,
        media_url=media_url_of(media_root, course.slug),
    )


@dataclass(frozen=True)
class MessageBuilder:
    signer: Signer
    base_url: str
    bounces: BounceAddresses | None = None
    """Makes the VERP envelope sender; None: the plain course sender (test sends)."""
    bounce_address: str = ""
    """`Settings.bounce_address`."""
    feedback_id: str = ""
    """`Settings.feedback_id`: the Feedback-ID template; empty: no such header."""
    dkim: DkimSigner | None = None
    """Signs each finished message; None: messages are left unsigned (previews)."""
    media_url: str = ""
    """`Settings.media_url`: where a CDN serves the images; empty: `base_url`/media."""

    @property
    def media_root(self) -> str:
        """Where course images are served: `<media root>/<course>/<name>`."""
        return self.media_url.rstrip("/") or f"{self.base_url.rstrip('/')}/media"

    @classmethod
    def for_sending(cls, settings: Settings, key: str, *, verp: bool = True) -> MessageBuilder:
        """The builder of what goes out: links signed with the secret `key`, every header the
        settings ask for, DKIM-signed when configured. Without `verp` the envelope sender is the
        course's own address (a test send has no delivery for a bounce to point at)."""
        return cls(
            Signer(key),
            settings.base_url,
            BounceAddresses(key) if verp else None,
            settings.bounce_address,
            feedback_id=settings.feedback_id,
            dkim=signer_for(settings),
            media_url=settings.media_url,
        )

    def links(self, job: Job) -> Links:
        base = self.base_url.rstrip("/")
        unsubscribe = self.signer.make(Purpose.UNSUBSCRIBE, {"e": job.enrollment_id})
        view = self.signer.make(Purpose.VIEW, {"d": job.delivery_id})
        early = ""
        if job.kind in (DeliveryKind.LESSON, DeliveryKind.EXTRA):
            # Made for every lesson: the layout shows it only when the course allows it and a
            # lesson follows (app/early.py checks both again when it is used).
            token = self.signer.make(
                Purpose.EARLY, {"e": job.enrollment_id, "l": job.lesson_id or 0}
            )
            early = f"{base}/early/{token}"
        return Links(
            unsubscribe=f"{base}/unsubscribe/{unsubscribe}",
            view_online=f"{base}/view/{view}",
            early=early,
        )

    def render(self, job: Job, course: CourseView) -> tuple[RenderedLesson, str | None]:
        """The rendered email, and its unsubscribe URL (None for a confirmation)."""
        recipient = Recipient(
            email=job.email, name=job.name, timezone=job.timezone, fields=job.fields or {}
        )
        if job.kind == DeliveryKind.CONFIRMATION:
            token = self.signer.make(Purpose.CONFIRM, {"e": job.enrollment_id})
            confirm_url = f"{self.base_url.rstrip('/')}/confirm/{token}"
            return render_confirmation(course.settings, recipient, confirm_url), None
        key = COMPLETION_KEY if job.kind == DeliveryKind.COMPLETION else job.lesson_key
        assert key is not None
        links = self.links(job)
        rendered = course.renderer.render(key, recipient, links)
        if tracks_clicks(course.settings):
            # Only the HTML part: the text part shows each address as written (see clicks.py).
            tracked = track_links(self.signer, self.base_url, rendered.html, job.delivery_id)
            rendered = replace(rendered, html=tracked)
        return rendered, links.unsubscribe

    def build(
        self, job: Job, course: CourseView, now: datetime, subject_prefix: str = ""
    ) -> OutgoingMessage:
        settings, sender = course.settings, course.settings.sender
        rendered, unsubscribe_url = self.render(job, course)
        envelope = Envelope(
            sender_name=sender.name,
            sender_email=sender.email,
            recipient_name=job.name,
            recipient_email=job.email,
            message_id=job.message_id,
            date=now,
            reply_to=sender.reply_to,
            list_id=f"{course.slug}.{domain_of(sender.email)}",
            list_name=settings.title,
            unsubscribe_url=unsubscribe_url,
            unsubscribe_mailto=(
                f"mailto:{sender.unsubscribe_email}?subject=unsubscribe"
                if unsubscribe_url
                else None
            ),
            feedback_id=(
                # Checked when the settings were read: only {course} and {lesson} in it.
                self.feedback_id.format(course=course.slug, lesson=job.lesson_key or job.kind)
                if self.feedback_id
                else None
            ),
        )
        envelope_sender = sender.email
        if self.bounces is not None:
            base = bounce_base(sender, self.bounce_address)
            envelope_sender = self.bounces.make(base, job.delivery_id)
        data = compose(envelope, subject_prefix + rendered.subject, rendered.text, rendered.html)
        return OutgoingMessage(
            key=str(job.delivery_id),
            sender=envelope_sender,
            recipient=ascii_address(job.email),
            # Signed last: nothing may change the message after this (RFC 6376 bh= and b=).
            data=data if self.dkim is None else self.dkim.sign(data),
        )


def sample_message(
    builder: MessageBuilder,
    course: CourseView,
    lesson_key: str,
    recipient: Recipient,
    now: datetime,
) -> OutgoingMessage:
    """Lesson `lesson_key` for `recipient`, every header as a subscriber gets it, without a database.

    The delivery is imaginary (`sample_job`), so its links are signed but lead nowhere in particular.
    """
    return builder.build(sample_job(course, lesson_key, recipient, now), course, now)


def sample_job(course: CourseView, lesson_key: str, recipient: Recipient, now: datetime) -> Job:
    """A delivery that exists only in memory, with id 0: what `sample_message` renders."""
    domain = domain_of(course.settings.sender.email)
    return Job(
        delivery_id=0,
        kind=DeliveryKind.LESSON,
        enrollment_id=0,
        course_id=0,
        lesson_key=lesson_key,
        message_id=f"<sample.{lesson_key}.{course.slug}@{domain}>",
        email=recipient.email,
        name=recipient.name,
        timezone=recipient.timezone,
        due_at=now,
        attempts=1,
        first_attempt_at=now,
        fields=recipient.fields if isinstance(recipient.fields, dict) else {},
    )
