"""The delivery contract of `dripcourse/backends/base.py`, checked against every built-in one."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from dripcourse.backends import load_backend, memory
from dripcourse.backends.base import Outcome, OutgoingMessage
from dripcourse.backends.console import SEPARATOR, ConsoleBackend
from dripcourse.devtools.smtpserver import CapturingSMTPServer
from dripcourse.errors import BadInput


def make_message(key: str, subject: str, recipient: str = "ann@example.org") -> OutgoingMessage:
    email = EmailMessage(policy=policy.SMTP)
    email["From"] = "Runner's Course <course@example.com>"
    email["To"] = recipient
    email["Subject"] = subject
    # Non-ASCII text goes out 8bit, and the dot line checks SMTP's dot-stuffing round trip.
    email.set_content(f"Hallo Läufer,\n\n{subject}\n.a line that starts with a dot\n")
    return OutgoingMessage(key, "course@example.com", recipient, email.as_bytes())


def normalise(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").rstrip(b"\n")


@dataclass
class Harness:
    url: str
    delivered: Callable[[], list[bytes]]
    """The bytes of every message that arrived, in order."""


@pytest.fixture(params=["smtp", "smtp-one-by-one", "console", "file", "memory"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param.startswith("smtp"):
        # The test server offers PIPELINING (RFC 2920); the URL option turns it off.
        smtpd: CapturingSMTPServer = request.getfixturevalue("smtpd")
        url = smtpd.url + ("&pipelining=0" if request.param == "smtp-one-by-one" else "")
        yield Harness(url, lambda: [m.data for m in smtpd.messages])
    elif request.param == "console":
        # The URL form writes to sys.stdout, looked up when sending; capsys stands in for it.
        capsys: pytest.CaptureFixture[str] = request.getfixturevalue("capsys")
        printed: list[str] = []

        def read_stdout() -> list[bytes]:
            printed.append(capsys.readouterr().out)
            *messages, rest = "".join(printed).split(SEPARATOR + "\n")
            assert rest == ""
            return [message.encode() for message in messages]

        yield Harness("console:", read_stdout)
    elif request.param == "file":
        folder = tmp_path / "outbox"  # missing on purpose: the backend creates it
        yield Harness(
            folder.as_uri(), lambda: [p.read_bytes() for p in sorted(folder.glob("*.eml"))]
        )
    else:
        memory.outbox.clear()
        yield Harness("memory:", lambda: [m.data for m in memory.MemoryBackend.outbox])
        memory.outbox.clear()


def test_sends_each_message_intact_and_reports_in_order(harness: Harness) -> None:
    messages = [make_message(f"delivery-{n}", f"Lesson {n}: Intervalle ✓") for n in (1, 2, 3)]
    backend = load_backend(harness.url)
    try:
        results = backend.send(messages)
    finally:
        backend.close()

    assert [(r.key, r.outcome) for r in results] == [(m.key, Outcome.SENT) for m in messages]
    delivered = harness.delivered()
    assert [normalise(data) for data in delivered] == [normalise(m.data) for m in messages]
    parser = BytesParser(policy=policy.default)
    subjects = [parser.parsebytes(data)["Subject"] for data in delivered]
    assert subjects == [f"Lesson {n}: Intervalle ✓" for n in (1, 2, 3)]


def test_an_empty_batch_sends_nothing(harness: Harness) -> None:
    with load_backend(harness.url) as backend:
        assert backend.send([]) == []
    assert harness.delivered() == []


def test_close_is_safe_before_open_and_twice(harness: Harness) -> None:
    backend = load_backend(harness.url)
    backend.close()
    assert backend.send([make_message("k1", "One")])[0].outcome is Outcome.SENT
    backend.close()
    backend.close()
    assert backend.send([make_message("k2", "Two")])[0].outcome is Outcome.SENT
    backend.close()
    assert len(harness.delivered()) == 2


def test_works_as_a_context_manager(harness: Harness) -> None:
    with load_backend(harness.url) as backend:
        results = backend.send([make_message("k1", "One"), make_message("k2", "Two")])
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert len(harness.delivered()) == 2


def test_an_unknown_scheme_is_bad_input_naming_the_known_ones() -> None:
    with pytest.raises(BadInput) as raised:
        load_backend("nope://x")
    for scheme in ("console:", "file:", "memory:", "smtp:"):
        assert scheme in str(raised.value)


# -- URL forms of the local backends (the SMTP ones are in test_smtp.py) -----------------------


@pytest.mark.parametrize(
    "url",
    [
        "console:stderr",
        "console:?stream=x",
        "memory:x",
        "file://mailhost/out",
        "file:",
        "file:x?y=1",
    ],
)
def test_options_a_backend_does_not_take_are_bad_input(url: str) -> None:
    with pytest.raises(BadInput, match="email backend"):
        load_backend(url)


def test_file_backend_takes_a_relative_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with load_backend("file:mail/out") as backend:
        [result] = backend.send([make_message("lesson 1/ann@example.org", "One")])
    [written] = (tmp_path / "mail" / "out").glob("*.eml")
    assert result.detail == written.name
    assert written.name.endswith("-lesson_1_ann_example.org.eml")


def test_file_backend_refuses_a_folder_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(BadInput, match="not a folder"):
        load_backend((tmp_path / "taken").as_uri())


def test_file_backend_never_overwrites_a_message_with_the_same_key(tmp_path: Path) -> None:
    with load_backend(tmp_path.as_uri()) as backend:
        results = backend.send([make_message("same", "One"), make_message("same", "Two")])
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert len(list(tmp_path.glob("*.eml"))) == 2
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_console_backend_writes_to_the_stream_it_is_given() -> None:
    stream = io.StringIO()
    ConsoleBackend(stream=stream).send([make_message("k1", "One")])
    assert "Subject: One\n" in stream.getvalue()
    assert stream.getvalue().endswith(SEPARATOR + "\n")
