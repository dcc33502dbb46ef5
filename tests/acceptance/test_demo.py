"""The quick start's demo: the runners course dripped to three people through a real SMTP server."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path
from zoneinfo import ZoneInfo


def test_the_demo_sends_each_lesson_at_eight_local_and_nothing_after_an_unsubscribe(
    cli, tmp_path: Path
) -> None:
    folder = tmp_path / "demo"
    result = cli("demo", "--dir", str(folder), "--weeks", "5")

    assert result.code == 0, result.err
    assert "bruno@demo.example unsubscribes" in result.out
    mails = sorted((folder / "mail").glob("*.eml"))
    zones = {"ada": "America/Toronto", "bruno": "Europe/Berlin", "chiara": "Australia/Sydney"}
    received: dict[str, int] = {}
    for path in mails:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        who = path.stem.split("-", 1)[1]
        local = message["Date"].datetime.astimezone(ZoneInfo(zones[who]))
        assert (local.hour, local.minute) == (8, 0), (path.name, local)
        received[who] = received.get(who, 0) + 1
    # Five weeks: five lessons each, but Bruno left after his third.
    assert received == {"ada": 5, "bruno": 3, "chiara": 5}
    assert "Hi Ada," in (folder / "lesson-01.html").read_text(encoding="utf-8")
    # The page opened from a file shows the course's images, exported beside it.
    page = (folder / "lesson-01.html").read_text(encoding="utf-8")
    sources = re.findall(r'<img[^>]*\bsrc="([^"]*)"', page)
    assert sources and all(src.startswith("media/runners/") for src in sources), sources
    assert all((folder / src).is_file() for src in sources)
