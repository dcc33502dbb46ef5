"""The error hierarchy: every failure a user can cause or meet has one home here.

The CLI turns `DripcourseError` into exit status 2 and one line on stderr; the web layer turns it
into a 4xx. Each leaf is also the standard type a caller would catch (`BadInput` is a `ValueError`,
`NotFound` a `LookupError`). Delivery errors are not exceptions but results (see `backends.base`),
except a backend that cannot be configured at all (`BackendError`).
"""


class DripcourseError(Exception):
    """Base of all errors that carry a message meant for the person at the keyboard."""


class BadInput(DripcourseError, ValueError):
    """The input was malformed or invalid: a bad address, an unknown time zone, a broken course file.

    `field` names the value that was refused (`email`, `name`, `timezone`, `password`) where one
    value was, so that a form can show the reason beside it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(DripcourseError, LookupError):
    """The thing named does not exist: an unknown course, subscriber or lesson."""


class Conflict(DripcourseError):
    """The request clashes with the current state, e.g. resuming an enrolment that is not paused."""


class Unsendable(DripcourseError, ValueError):
    """A message cannot be built or handed over as it stands: a header value that no header may
    carry, an address no server we reach can take. The recipient is not at fault, so it fails that
    one delivery and never suppresses the address."""


class NotSent(DripcourseError):
    """A message the operator asked for now (an invitation) was not taken by the backend; what
    was to be recorded is recorded, and the message can be asked for again."""


class BackendError(DripcourseError):
    """A delivery backend cannot work at all as configured (bad URL, unwritable folder)."""


class SpamCheckError(DripcourseError, RuntimeError):
    """SpamAssassin ran but gave no report that could be read."""


class UnreadableReport(BadInput):
    """A message in the bounce mailbox that cannot be read safely: too large, nested too deep, too
    many parts, or anything the mail parser fails on. It is set aside, never applied."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unauthentic(DripcourseError, PermissionError):
    """A provider's event that does not prove it comes from the provider: a bad or missing
    signature or credentials, a signing certificate from elsewhere, a topic not ours, or a
    timestamp outside the replay window. It is refused whole and changes nothing."""


class VerificationUnavailable(Unauthentic):
    """A provider's event whose proof cannot be checked now: the signing certificate it names
    could not be fetched (a timeout, an error answer, a redirect, too large, not a certificate).
    Nothing is written, as for any `Unauthentic` event; but the fault is not the event's, so the
    hook answers 503 and the provider sends it again later."""
