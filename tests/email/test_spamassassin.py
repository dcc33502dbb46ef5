"""Spam filters: every shipped lesson, exactly as sent, scores well below SpamAssassin's threshold.

The bar is 1.0, not the default 5.0: a lesson should carry nothing that any rule holds against it,
so that a provider's own rules, stricter or weighted differently, have nothing to add up either.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from shipped import LessonMail

from dripcourse.devtools.spamcheck import SpamRule, parse_report, spam_report

DATA = Path(__file__).parent / "data"
BAR = 1.0


@pytest.mark.usefixtures("spamassassin")
def test_every_lesson_scores_below_the_bar(lesson_mail: LessonMail) -> None:
    report = spam_report(lesson_mail.data)

    assert report is not None
    assert report.score < BAR, (
        f"{lesson_mail.name} scores {report.score} in SpamAssassin (bar {BAR}); "
        f"rules that fired:\n{report.describe()}"
    )


@pytest.mark.usefixtures("spamassassin")
def test_an_obvious_spam_is_caught_with_the_rules_that_fired() -> None:
    """The check itself works: a message written to trip the filters is scored as spam."""
    report = spam_report((DATA / "spammy.eml").read_bytes())

    assert report is not None
    assert report.is_spam
    names = {rule.name for rule in report.rules}
    assert {"DEAR_FRIEND", "MISSING_DATE", "HTML_FONT_LOW_CONTRAST"} <= names
    assert report.score == pytest.approx(sum(rule.points for rule in report.rules), abs=0.1)


def test_the_report_of_a_spam_is_read_rule_by_rule() -> None:
    """SpamAssassin 4.0.1's `-t` output for a spam: wrapped in a report, with a second copy at the
    end; descriptions wrapped over lines; a rule name longer than its column."""
    report = parse_report((DATA / "spamassassin-spam.txt").read_text())

    assert report.score == 17.4
    assert report.threshold == 5.0
    assert report.is_spam
    assert len(report.rules) == 23
    assert report.rules[0] == SpamRule("MISSING_DATE", 2.7, "Missing Date: header")
    by_name = {rule.name: rule for rule in report.rules}
    assert by_name["TVD_PH_SEC"].description == (
        "BODY: Message includes a phrase commonly used in phishing mails"
    )
    assert by_name["T_PDS_SHORT_SPOOFED_URL"] == SpamRule(
        "T_PDS_SHORT_SPOOFED_URL", 0.0, "HTML message short and T_SPOOFED_URL (S_U_FP)"
    )
    assert by_name["ADVANCE_FEE_3_NEW_MONEY"].points == 1.0
    assert by_name["NO_RECEIVED"].points == 0.0
    assert "+2.7 MISSING_DATE: Missing Date: header" in report.describe()


def test_the_report_of_a_lesson_is_read_with_its_informational_rules() -> None:
    """The output for lesson 1 before its preheader was fixed: the report follows the message."""
    report = parse_report((DATA / "spamassassin-ham.txt").read_text())

    assert report.score == 0.7
    assert not report.is_spam
    assert {rule.name for rule in report.rules} == {
        "NO_RECEIVED",
        "NO_RELAYS",
        "HTML_MESSAGE",
        "HTML_FONT_LOW_CONTRAST",
    }
    assert report.scoring() == (
        SpamRule(
            "HTML_FONT_LOW_CONTRAST",
            0.7,
            "BODY: HTML font color similar or identical to background",
        ),
    )
