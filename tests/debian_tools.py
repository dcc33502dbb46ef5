"""The Debian tools the suite drives for real (Chromium, SpamAssassin), and what a test does when
one is absent: skip with the reason on a workstation, fail on CI, whose `.ci/run` installs them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_tool(reason: str) -> NoReturn:
    """Skip the test because a Debian tool is absent; on CI, which installs it, fail instead."""
    if on_ci():
        pytest.fail(f"{reason}; CI installs it (.ci/run), so its absence is an error here")
    pytest.skip(reason)
