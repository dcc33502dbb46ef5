"""A third-party backend, registered under the entry-point group `dripcourse.backends`, is chosen by
its URL scheme and sends what the message builder made. One written when the contract still had
`sign_with(signer)` keeps working: nothing calls it any more, and what it is handed is already
DKIM-signed.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import dkim
import pytest
from test_dkim import DOMAIN, SELECTOR, environ_for, make_key

from dripcourse import backends
from dripcourse.errors import BadInput

ACME = '''
from dripcourse.backends.base import DeliveryBackend, DeliveryResult, Outcome


class AcmeBackend(DeliveryBackend):
    """Hands mail to the Acme relay; written against the contract of old."""

    sent = []
    signers = []

    def sign_with(self, signer):
        AcmeBackend.signers.append(signer)

    def send(self, messages):
        AcmeBackend.sent.extend(messages)
        return [DeliveryResult(m.key, Outcome.SENT, 250) for m in messages]
'''


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The `acme:` backend installed as a separate distribution would install it."""
    (tmp_path / "acme_backend.py").write_text(textwrap.dedent(ACME), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    installed = backends.entry_points
    entry = EntryPoint("acme", "acme_backend:AcmeBackend", backends.ENTRY_POINT_GROUP)
    monkeypatch.setattr(backends, "entry_points", lambda group: [*installed(group=group), entry])
    backend_class = type(backends.load_backend("acme:"))
    backend_class.sent.clear()
    backend_class.signers.clear()
    return backend_class


@pytest.fixture
def dkim_environ(tmp_path: Path) -> tuple[dict[str, str], bytes]:
    """DKIM settings as variables, and the TXT record published for them."""
    key = make_key(tmp_path)
    return environ_for(key), key.txt_record


def test_a_third_party_backend_with_the_old_sign_with_sends_signed_lessons(
    acme: Any,
    dkim_environ: tuple[dict[str, str], bytes],
    cli: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environ, txt_record = dkim_environ
    for name, value in {**environ, "DRIPCOURSE_EMAIL_BACKEND": "acme:"}.items():
        monkeypatch.setenv(name, value)
    assert cli("db", "upgrade").code == 0
    assert cli("courses", "sync").code == 0
    for email in ("ada@example.com", "bruno@example.com"):
        done = cli("subscribe", email, "--course", "runners", "--confirmed", "--now", "2026-03-02")
        assert done.code == 0, done.err

    ticked = cli("tick", "--now", "2026-03-03T15:00:00Z")

    assert "2 sent" in ticked.out, ticked.err
    assert sorted(m.recipient for m in acme.sent) == ["ada@example.com", "bruno@example.com"]
    published = {f"{SELECTOR}._domainkey.{DOMAIN}.".encode(): txt_record}
    for message in acme.sent:
        assert dkim.verify(message.data, dnsfunc=lambda name, timeout=5: published.get(name))
    assert acme.signers == [], "nothing calls sign_with: the builder has signed already"


def test_an_unknown_scheme_names_the_third_party_one_too(acme: Any) -> None:
    with pytest.raises(BadInput, match=r"known schemes: acme:, console:, file:"):
        backends.load_backend("nope:")
