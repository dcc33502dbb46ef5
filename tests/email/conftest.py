"""Every shipped lesson, sent to a sample subscriber, for the tests that check the email itself.

A test that takes the `lesson_mail` argument runs once per lesson (see shipped.py), with ids like
`runners-01-feet`.

The real tools these tests drive (SpamAssassin, Chromium) are optional on a workstation: a missing
one skips its tests with the reason. On CI (the `CI` variable set) it is installed by `.ci/run`,
so its absence fails instead of hiding a gap.
"""

from __future__ import annotations

import shutil

import pytest
from debian_tools import missing_tool
from shipped import ROOT, shipped_lessons

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lesson_mail" in metafunc.fixturenames:
        lessons = shipped_lessons()
        metafunc.parametrize("lesson_mail", lessons, ids=[mail.name for mail in lessons])


@pytest.fixture(scope="session")
def spamassassin() -> None:
    """Nothing to hand over; the point is the skip (or, on CI, the failure) when it is missing."""
    if shutil.which("spamassassin") is None:
        missing_tool("spamassassin is not installed (apt-get install spamassassin)")
