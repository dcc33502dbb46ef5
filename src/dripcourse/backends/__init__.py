"""Delivery backends, chosen by URL scheme through the entry-point group `dripcourse.backends`.

`smtp://user:pass@host:587?tls=starttls`, `console:`, `file:///var/mail/out`, `memory:`. A third party
registers its own class under that group with its scheme as the name.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from urllib.parse import urlsplit

from dripcourse.backends.base import BackendError, DeliveryBackend
from dripcourse.errors import BadInput

ENTRY_POINT_GROUP = "dripcourse.backends"


def load_backend(url: str) -> DeliveryBackend:
    """The backend for `url`, its class looked up by the URL's scheme.

    A backend only delivers: what it is given is final (DKIM-signed by the message builder).
    """
    scheme = urlsplit(url).scheme.lower()
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if scheme not in found:
        known = ", ".join(f"{name}:" for name in sorted(found)) or "none installed"
        raise BadInput(f"unknown email backend {url!r}; known schemes: {known}")
    backend_class = found[scheme].load()
    if not (isinstance(backend_class, type) and issubclass(backend_class, DeliveryBackend)):
        raise BadInput(f"entry point {scheme!r} does not name a DeliveryBackend class")
    try:
        return backend_class.from_url(url)
    except BackendError as exc:
        raise BadInput(f"email backend {url!r}: {exc}") from exc
