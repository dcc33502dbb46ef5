"""`dripcourse deliveries failed` and `dripcourse deliveries retry` as an operator uses them: the
real CLI, a real SQLite file, a real SMTP server that refuses for a while, and time moved with
`--now`. Bad input is one line on stderr and exit status 2."""

from __future__ import annotations

import re

from dripcourse.devtools.smtpserver import CapturingSMTPServer

ADA = "ada@example.com"
LESSON_ONE = "2026-03-03T07:00:00Z"  # 08:00 in Berlin


def lesson_one_refused(cli, smtpd: CapturingSMTPServer) -> int:
    """Ada's lesson 1, answered 451 by her server: waiting to be tried again. Its id."""
    assert cli("db", "upgrade").code == 0
    assert cli("courses", "sync").code == 0
    done = cli(
        "subscribe", ADA, "--course", "runners", "--name", "Ada Lovelace",
        "--timezone", "Europe/Berlin", "--confirmed", "--now", "2026-03-02T15:00:00Z",
    )  # fmt: skip
    assert done.code == 0, done.err
    smtpd.fail_recipient(ADA, 451, "4.2.2 <ada@example.com>: mailbox busy, try later")
    assert cli("tick", "--now", LESSON_ONE).code == 0
    listed = cli("deliveries", "failed")
    assert listed.code == 0, listed.err
    [line] = listed.out.splitlines()
    found = re.match(r"\s*(\d+)\s", line)
    assert found is not None, line
    return int(found.group(1))


def test_a_refused_lesson_is_listed_retried_and_arrives_once(cli, smtpd):
    delivery = lesson_one_refused(cli, smtpd)
    line = " ".join(cli("deliveries", "failed").out.split())
    assert line == (
        f"{delivery} pending 1 attempt(s) {ADA} runners 1 feet "
        "next 2026-03-03 07:05 UTC (2026-03-03 08:05 Europe/Berlin) "
        "recipient refused: 451 4.2.2 <ada@example.com>: mailbox busy, try later"
    )
    smtpd.reset()  # her server takes mail again

    retried = cli("deliveries", "retry", str(delivery), "--now", "2026-03-03T07:01:00Z")
    assert retried.code == 0, retried.err
    assert retried.out == (
        f"delivery {delivery} (lesson 1 (feet) of runners to {ADA}) is due now, after 1 attempt(s)\n"
    )
    assert cli("tick", "--now", "2026-03-03T07:01:00Z").code == 0
    assert cli("tick", "--now", "2026-03-03T07:30:00Z").code == 0
    assert [str(m.message["Subject"]).split(":")[0] for m in smtpd.messages] == ["Lesson 1"]
    assert cli("deliveries", "failed").out == "no failed or retrying deliveries\n"

    again = cli("deliveries", "retry", str(delivery), "--now", "2026-03-03T07:31:00Z")
    assert again.code == 2 and again.out == ""
    assert again.err == (
        f"dripcourse: error: lesson 1 (feet) of runners to {ADA} was already sent; "
        "it is never sent twice\n"
    )


def test_bad_ids_are_one_line_and_exit_2(cli_process, smtpd):
    assert cli_process("db", "upgrade").code == 0
    for argument, says in [
        ("999", "no delivery with id 999"),
        ("abc", "'abc' is not a valid integer"),
        ("0", "0 is not in the range"),
    ]:
        done = cli_process("deliveries", "retry", argument)
        assert done.code == 2, (argument, done)
        assert done.err.count("\n") == 1 and says in done.err, done.err
        assert "Traceback" not in done.err
