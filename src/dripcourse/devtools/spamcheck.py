"""Asks SpamAssassin what it thinks of a message, and reads its answer into rules and points.

The message is scored exactly as given (every header), with Debian's `spamassassin` in local mode
(`-L`: no DNS blocklists, no URI lookups, nothing leaves the machine) and test mode (`-t`: the
report is appended to the output). Bayes is turned off so that a score never depends on what the
machine running the check happened to learn before; an untrained Bayes database scores nothing
anyway, so this changes no score, only makes it reproducible.

The report's "Content analysis details" table is parsed, not the `X-Spam-Status` header, because
only the table gives each rule's points and description.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from dripcourse.errors import SpamCheckError as SpamCheckError  # its home is errors.py

SPAMASSASSIN = "spamassassin"
COMMAND = (SPAMASSASSIN, "-L", "-t", "--cf=use_bayes 0", "--cf=bayes_auto_learn 0")
DEFAULT_THRESHOLD = 5.0

_SUMMARY = re.compile(
    r"^Content analysis details:\s+\((?P<score>-?\d+(?:\.\d+)?) points?,"
    r"\s+(?P<threshold>-?\d+(?:\.\d+)?) required\)",
    re.MULTILINE,
)
# A rule's row: points, name, description. A name longer than its column pushes the description
# one space to the right instead of aligning it, so the columns cannot be cut at fixed offsets.
_ROW = re.compile(r"^\s*(?P<points>-?\d+(?:\.\d+)?)\s+(?P<name>[A-Z0-9_]+)(?:\s+(?P<text>.*))?$")
# A description too long for one line goes on under the description column, with no points.
_CONTINUATION = re.compile(r"^\s{5,}(?P<text>\S.*)$")


@dataclass(frozen=True)
class SpamRule:
    """One SpamAssassin test that matched, as its report lists it."""

    name: str
    points: float
    description: str

    def __str__(self) -> str:
        return f"{self.points:+.1f} {self.name}: {self.description}"


@dataclass(frozen=True)
class SpamReport:
    """SpamAssassin's verdict: the total score and the rules that made it."""

    score: float
    rules: tuple[SpamRule, ...]
    threshold: float = DEFAULT_THRESHOLD

    @property
    def is_spam(self) -> bool:
        return self.score >= self.threshold

    def scoring(self) -> tuple[SpamRule, ...]:
        """The rules that moved the score (informational rules score 0.0 or -0.0)."""
        return tuple(rule for rule in self.rules if rule.points != 0.0)

    def describe(self) -> str:
        """One line per rule that fired, highest points first: what a failing check prints."""
        lines = [f"score {self.score:.1f} (threshold {self.threshold:.1f})"]
        for rule in sorted(self.rules, key=lambda rule: -rule.points):
            lines.append(f"  {rule}")
        return "\n".join(lines)


def spamassassin_available() -> bool:
    return shutil.which(SPAMASSASSIN) is not None


def spam_report(message: bytes, timeout: float = 60) -> SpamReport | None:
    """SpamAssassin's report on `message` (the bytes as sent), or None when it is not installed."""
    if not spamassassin_available():
        return None
    completed = subprocess.run(
        COMMAND, input=message, capture_output=True, timeout=timeout, check=False
    )
    output = completed.stdout.decode("utf-8", errors="replace")
    try:
        return parse_report(output)
    except SpamCheckError as exc:
        stderr = completed.stderr.decode("utf-8", errors="replace").strip()
        raise SpamCheckError(f"{exc} (exit status {completed.returncode}: {stderr})") from None


def parse_report(output: str) -> SpamReport:
    """The report in SpamAssassin's `-t` output: the last "Content analysis details" table.

    The last one, because the message itself (a quoted report, or a spam wrapper, which carries a
    copy) may contain the same words before it.
    """
    summaries = list(_SUMMARY.finditer(output))
    if not summaries:
        raise SpamCheckError("no 'Content analysis details' in SpamAssassin's output")
    summary = summaries[-1]
    lines = output[summary.end() :].splitlines()
    rules: list[list[str]] = []  # [points, name, description] while descriptions are joined
    in_table = False
    for line in lines:
        if not in_table:
            in_table = line.startswith("----")
            continue
        if not line.strip():
            break
        # Indentation tells them apart: points sit in the first four columns, a wrapped
        # description under the description column (which may itself start with a number).
        continuation = _CONTINUATION.match(line)
        row = _ROW.match(line)
        if continuation and rules:
            rules[-1][2] = f"{rules[-1][2]} {continuation['text']}".strip()
        elif row:
            rules.append([row["points"], row["name"], row["text"] or ""])
        else:
            break
    return SpamReport(
        score=float(summary["score"]),
        rules=tuple(SpamRule(name, float(points), text) for points, name, text in rules),
        threshold=float(summary["threshold"]),
    )
