"""A course author's story: check a course folder, see each mistake as `file:line: message`, and sync
the course into a real SQLite database without losing any subscriber's history
(coursefiles.py, courses.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dripcourse.clock import FixedClock
from dripcourse.courses.catalog import SyncReport, check_course, sync_course
from dripcourse.courses.files import read_course
from dripcourse.errors import BadInput
from dripcourse.store.db import Database
from dripcourse.store.models import Course, Lesson

SHIPPED = Path(__file__).resolve().parents[2] / "emails" / "runners"
LESSON_KEYS = [
    "feet",
    "ankles",
    "calves-achilles",
    "knees",
    "hips",
    "lower-back",
    "upper-back-shoulders",
    "strength-basics",
    "building-mileage",
    "recovery",
]


@pytest.fixture
def runners(courses_dir: Path) -> Path:
    """The private copy of the example course, free to break."""
    return courses_dir / "runners"


def replace_line(file: Path, number: int, was: str, *new: str) -> None:
    """Replace line `number` (1-based), which must contain `was`, by the lines `new`."""
    lines = file.read_text(encoding="utf-8").split("\n")
    assert was in lines[number - 1], f"{file.name}:{number} is {lines[number - 1]!r}"
    lines[number - 1 : number] = list(new)
    file.write_text("\n".join(lines), encoding="utf-8")


def problems(course: Path) -> list[str]:
    return [str(problem) for problem in check_course(read_course(course))]


def first_problem(course: Path) -> str:
    found = problems(course)
    assert len(found) >= 1, "the broken course passed the check"
    return found[0]


# -- checking --------------------------------------------------------------------------------------


def test_the_shipped_course_has_no_problems() -> None:
    assert problems(SHIPPED) == []


def test_invalid_toml_in_course_toml_is_reported_at_its_line(runners: Path) -> None:
    toml = runners / "course.toml"
    replace_line(toml, 3, "brand = ", "brand = Northside Physio")

    problem = first_problem(runners)

    assert problem.startswith(f"{toml}:3: invalid TOML")


def test_an_unknown_key_in_course_toml_is_reported_at_its_line(runners: Path) -> None:
    toml = runners / "course.toml"
    replace_line(toml, 4, "language = ", 'language = "en"', 'colour = "blue"')

    problem = first_problem(runners)

    assert problem.startswith(f"{toml}:5:")
    assert "unknown setting 'colour'" in problem


def test_an_unknown_key_in_course_toml_is_reported_once(runners: Path) -> None:
    toml = runners / "course.toml"
    replace_line(toml, 4, "language = ", 'language = "en"', 'colour = "blue"')

    assert problems(runners) == [f"{toml}:5: unknown setting 'colour'"]


def test_a_course_toml_section_name_in_a_lesson_is_an_unknown_setting(runners: Path) -> None:
    # `theme` is a table of course.toml, not a key of a lesson's front matter.
    lesson = runners / "01-feet.md"
    replace_line(lesson, 4, "title = ", 'title = "Feet first"', 'theme = "dark"')

    assert problems(runners) == [f"{lesson}:5: unknown setting 'theme'"]


def test_an_unknown_key_in_a_section_is_reported_at_its_line(runners: Path) -> None:
    toml = runners / "course.toml"
    replace_line(toml, 13, "send_time = ", 'send_time = "08:00"', 'sendtime = "07:00"')

    problem = first_problem(runners)

    assert problem.startswith(f"{toml}:14:")
    assert "sendtime" in problem


def test_a_missing_footer_is_reported(runners: Path) -> None:
    toml = runners / "course.toml"
    replace_line(toml, 21, "[footer]")
    replace_line(toml, 21, "postal_address = ")

    assert problems(runners) == [f"{toml}:1: missing section [footer]"]


def test_a_bad_send_time_is_reported_at_its_line(runners: Path) -> None:
    toml = runners / "course.toml"
    replace_line(toml, 13, "send_time = ", 'send_time = "8 o\'clock"')

    problem = first_problem(runners)

    assert problem.startswith(f"{toml}:13:")
    assert "send_time" in problem and "HH:MM" in problem


def test_an_unknown_timezone_is_reported_at_its_line(runners: Path) -> None:
    toml = runners / "course.toml"
    replace_line(toml, 15, "timezone = ", 'timezone = "Mars/Olympus_Mons"')

    problem = first_problem(runners)

    assert problem.startswith(f"{toml}:15:")
    assert "unknown time zone 'Mars/Olympus_Mons'" in problem


def test_a_lesson_without_front_matter_is_reported_at_line_1(runners: Path) -> None:
    lesson = runners / "01-feet.md"
    lesson.write_text("Hi {{ subscriber.first_name }},\n\nNo front matter here.\n")

    assert problems(runners) == [
        f"{lesson}:1: a lesson starts with front matter between '+++' lines"
    ]


def test_unclosed_front_matter_is_reported(runners: Path) -> None:
    lesson = runners / "01-feet.md"
    replace_line(lesson, 37, "+++", "")

    assert problems(runners) == [f"{lesson}:1: front matter is not closed by a '+++' line"]


def test_invalid_toml_in_front_matter_is_reported_at_its_line_in_the_file(runners: Path) -> None:
    lesson = runners / "01-feet.md"
    replace_line(lesson, 4, "title = ", "title = Feet first")

    problem = first_problem(runners)

    assert problem.startswith(f"{lesson}:4: invalid TOML")


def test_invalid_toml_in_front_matter_names_one_line_the_files(runners: Path) -> None:
    lesson = runners / "01-feet.md"
    replace_line(lesson, 4, "title = ", "title = Feet first")

    # tomllib counts from the front matter's first line (3); the author's editor counts from the file's.
    assert problems(runners) == [f"{lesson}:4: invalid TOML: Invalid value (column 9)"]


def test_toml_broken_at_the_end_of_the_front_matter_points_at_its_last_line(runners: Path) -> None:
    lesson = runners / "01-feet.md"
    replace_line(lesson, 36, "", 'teaser = """never closed')

    assert problems(runners) == [
        f"{lesson}:36: invalid TOML: Unterminated string (at end of document)"
    ]


def test_a_lesson_without_a_subject_is_reported(runners: Path) -> None:
    lesson = runners / "01-feet.md"
    replace_line(lesson, 2, "subject = ")

    assert problems(runners) == [f"{lesson}:1: missing subject"]


@pytest.mark.parametrize(
    ("instructions_line", "exercise_line", "number"),
    [(16, 13, 1), (21, 18, 2), (26, 23, 3)],
    ids=["first", "second", "third"],
)
def test_an_exercise_without_instructions_is_reported_at_that_exercise(
    runners: Path, instructions_line: int, exercise_line: int, number: int
) -> None:
    lesson = runners / "01-feet.md"
    replace_line(lesson, instructions_line, "instructions = ")

    problem = first_problem(runners)

    assert problem == f"{lesson}:{exercise_line}: exercises #{number}: missing instructions"


@pytest.mark.parametrize("line", [38, 44, 60])
def test_an_undefined_name_in_the_body_is_reported_at_its_line_in_the_file(
    runners: Path, line: int
) -> None:
    lesson = runners / "01-feet.md"
    original = lesson.read_text().split("\n")[line - 1]
    replace_line(lesson, line, "", "Good to see you, {{ subscriber.nme }}.")

    problem = first_problem(runners)

    assert original.strip(), "the line replaced should be prose"
    assert problem.startswith(f"{lesson}:{line}: body:")
    assert "nme" in problem


def test_an_undefined_name_in_the_subject_is_reported_at_the_subject_line(runners: Path) -> None:
    lesson = runners / "01-feet.md"
    replace_line(lesson, 2, "subject = ", 'subject = "Lesson 1, {{ subscriber.nme }}"')

    problem = first_problem(runners)

    assert problem.startswith(f"{lesson}:2: subject:")
    assert "nme" in problem


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "{{ subscriber.surname }}",
            "unknown field subscriber.surname; known: email, fields, first_name, name, timezone",
        ),
        ("{{ links.home }}", "unknown field links.home; known: early, unsubscribe, view_online"),
        ("{{ course.links.home }}", "unknown field course.links.home; known: equipment, website"),
        (
            "{{ lesson.nmber }}",
            "unknown field lesson.nmber; known: equipment, exercises, is_completion, key, number, "
            "preheader, related, subject, teaser, title, topics, total",
        ),
        (
            "{% for ex in lesson.exercises %}{{ ex.nme }}{% endfor %}",
            "unknown field ex.nme; known: dose, instructions, name",
        ),
        ("{{ lesson.exercises[7].name }}", "no item 7 in lesson.exercises; it has 3"),
        ("{{ foo }}", "unknown variable foo; known: course, lesson, links, subscriber"),
        ("{{ foo.bar }}", "unknown variable foo; known: course, lesson, links, subscriber"),
    ],
    ids=["subscriber", "links", "course.links", "lesson", "loop", "item", "variable", "variable."],
)
def test_an_unknown_name_is_said_as_written_with_the_names_that_exist(
    runners: Path, expression: str, message: str
) -> None:
    lesson = runners / "01-feet.md"
    replace_line(lesson, 44, "The good news", expression)

    assert problems(runners) == [f"{lesson}:44: body: {message}"]


def test_an_unknown_name_in_the_subject_lists_the_names_that_exist(runners: Path) -> None:
    lesson = runners / "01-feet.md"
    replace_line(lesson, 2, "subject = ", 'subject = "Lesson 1, {{ subscriber.nme }}"')

    assert problems(runners) == [
        f"{lesson}:2: subject: unknown field subscriber.nme; known: email, fields, first_name, "
        "name, timezone"
    ]


def test_an_unknown_name_in_a_course_layout_is_said_as_written(runners: Path) -> None:
    layout = runners / "layout.txt"
    layout.write_text("{% block body %}{% endblock %}\n{{ subscriber.surname }}\n")

    assert problems(runners)[0] == (
        f"{layout}:2: layout: unknown field subscriber.surname; "
        "known: email, fields, first_name, name, timezone"
    )


def test_an_if_never_closed_is_reported_at_the_line_it_opened(runners: Path) -> None:
    lesson = runners / "01-feet.md"
    replace_line(lesson, 44, "The good news", "{% if subscriber.name %}", "Good news.")
    # Jinja reports the line of the last tag it read: here the file's last line.
    with lesson.open("a", encoding="utf-8") as file:
        file.write(
            "\n{% for topic in lesson.topics %}{{ topic }}{% endfor %}\nBye {{ subscriber.name }}\n"
        )

    (problem,) = problems(runners)

    assert problem.startswith(f"{lesson}:44: template syntax: Unexpected end of template.")
    assert "'endif'" in problem


def test_a_block_never_closed_in_a_course_layout_is_reported_at_the_line_it_opened(
    runners: Path,
) -> None:
    layout = runners / "layout.txt"
    layout.write_text(
        "{% block body %}{% endblock %}\n{% for x in lesson.topics %}\n{{ x }}\n\n{{ course.title }}\n"
    )

    (problem,) = problems(runners)[:1]

    assert problem.startswith(f"{layout}:2: layout: Unexpected end of template.")
    assert "'endfor'" in problem


def test_a_template_syntax_error_is_reported_at_its_line_in_the_file(runners: Path) -> None:
    lesson = runners / "01-feet.md"
    replace_line(lesson, 44, "The good news", "{% if %}", "Good news.", "{% endif %}")

    problem = first_problem(runners)

    assert problem.startswith(f"{lesson}:44: template syntax:")


def test_a_readme_in_a_course_folder_is_not_a_lesson(runners: Path) -> None:
    (runners / "README.md").write_text("# Runners\n\nNotes for whoever edits this course.\n")

    source = read_course(runners)

    assert check_course(source) == []
    assert [lesson.key for lesson in source.lessons] == LESSON_KEYS


def test_two_files_with_the_same_key_are_reported(runners: Path) -> None:
    (runners / "11-feet.md").write_text((runners / "01-feet.md").read_text())

    assert problems(runners) == [
        f"{runners / '11-feet.md'}:1: lesson key 'feet' is also used by 01-feet.md"
    ]


# -- syncing -------------------------------------------------------------------------------------


def sync(database: Database, course: Path, now: datetime) -> SyncReport:
    with database.transaction() as session:
        return sync_course(session, read_course(course), now)


def lesson_rows(database: Database) -> dict[str, dict[str, Any]]:
    with database.transaction() as session:
        return {
            lesson.key: {
                "id": lesson.id,
                "position": lesson.position,
                "source_file": lesson.source_file,
                "subject": lesson.subject,
                "body": lesson.body,
                "content_hash": lesson.content_hash,
                "retired_at": lesson.retired_at,
            }
            for lesson in session.scalars(select(Lesson).order_by(Lesson.id))
        }


def active_keys(database: Database) -> list[str]:
    rows = lesson_rows(database)
    return sorted(
        (k for k in rows if rows[k]["retired_at"] is None), key=lambda k: rows[k]["position"]
    )


def test_the_first_sync_adds_the_ten_lessons_in_order(
    database: Database, runners: Path, clock: FixedClock
) -> None:
    report = sync(database, runners, clock.now())

    assert report.added == LESSON_KEYS
    assert (report.updated, report.retired, report.reordered) == ([], [], False)
    rows = lesson_rows(database)
    assert active_keys(database) == LESSON_KEYS
    assert rows["feet"]["source_file"] == "01-feet.md"
    assert rows["feet"]["subject"] == "Lesson 1: Feet first"
    assert rows["recovery"]["position"] == 10
    with database.transaction() as session:
        course = session.scalars(select(Course)).one()
        assert (course.slug, course.title) == ("runners", "Runners E-Course")
        assert course.settings.timezone == "America/Toronto"


def test_syncing_an_unchanged_course_again_reports_nothing(
    synced: Database, runners: Path, clock: FixedClock
) -> None:
    before = lesson_rows(synced)
    clock.advance(timedelta(days=1))

    report = sync(synced, runners, clock.now())

    assert (report.added, report.updated, report.retired) == ([], [], [])
    assert report.reordered is False
    assert lesson_rows(synced) == before


def test_editing_one_lesson_reports_it_updated(
    synced: Database, runners: Path, clock: FixedClock
) -> None:
    before = lesson_rows(synced)
    hips = runners / "05-hips.md"
    hips.write_text(hips.read_text() + "\nP.S. Stretch after every run.\n")

    report = sync(synced, runners, clock.now())

    assert report.updated == ["hips"]
    assert (report.added, report.retired, report.reordered) == ([], [], False)
    after = lesson_rows(synced)
    assert "P.S. Stretch after every run." in after["hips"]["body"]
    assert after["hips"]["id"] == before["hips"]["id"]
    assert {k: v for k, v in after.items() if k != "hips"} == {
        k: v for k, v in before.items() if k != "hips"
    }


def test_renaming_a_file_that_keeps_its_key_keeps_the_lesson(
    synced: Database, runners: Path, clock: FixedClock
) -> None:
    before = lesson_rows(synced)
    old = runners / "03-calves-achilles.md"
    new = runners / "03-calves.md"
    old.rename(new)
    replace_line(new, 1, "+++", "+++", 'key = "calves-achilles"')

    report = sync(synced, runners, clock.now())

    assert (report.added, report.retired, report.reordered) == ([], [], False)
    after = lesson_rows(synced)
    assert after["calves-achilles"]["id"] == before["calves-achilles"]["id"]
    assert after["calves-achilles"]["source_file"] == "03-calves.md"
    assert after["calves-achilles"]["retired_at"] is None
    assert "calves" not in after


def test_renaming_a_file_without_keeping_its_key_retires_the_old_lesson(
    synced: Database, runners: Path, clock: FixedClock
) -> None:
    (runners / "03-calves-achilles.md").rename(runners / "03-calves.md")

    report = sync(synced, runners, clock.now())

    assert report.added == ["calves"]
    assert report.retired == ["calves-achilles"]


def test_renumbering_files_to_swap_two_lessons_reorders_them_and_keeps_their_rows(
    synced: Database, runners: Path, clock: FixedClock
) -> None:
    before = lesson_rows(synced)
    (runners / "04-knees.md").rename(runners / "05-knees.md")
    (runners / "05-hips.md").rename(runners / "04-hips.md")

    report = sync(synced, runners, clock.now())

    assert report.reordered is True
    assert (report.added, report.updated, report.retired) == ([], [], [])
    after = lesson_rows(synced)
    assert {k: v["id"] for k, v in after.items()} == {k: v["id"] for k, v in before.items()}
    assert (after["hips"]["position"], after["knees"]["position"]) == (4, 5)
    assert active_keys(synced)[3:5] == ["hips", "knees"]


def test_deleting_a_file_retires_its_lesson_and_keeps_the_row(
    synced: Database, runners: Path, clock: FixedClock
) -> None:
    before = lesson_rows(synced)
    clock.advance(timedelta(days=3))
    (runners / "10-recovery.md").unlink()

    report = sync(synced, runners, clock.now())

    assert report.retired == ["recovery"]
    assert (report.added, report.updated) == ([], [])
    after = lesson_rows(synced)
    assert after["recovery"]["id"] == before["recovery"]["id"]
    assert after["recovery"]["retired_at"] == clock.now()
    assert active_keys(synced) == LESSON_KEYS[:-1]


def test_a_broken_course_is_refused_and_nothing_is_written(
    synced: Database, runners: Path, clock: FixedClock
) -> None:
    before = lesson_rows(synced)
    # Changes a sync would write ...
    feet = runners / "01-feet.md"
    feet.write_text(feet.read_text() + "\nA new closing line.\n")
    (runners / "10-recovery.md").unlink()
    (runners / "04-knees.md").rename(runners / "06-knees.md")
    # ... and one mistake.
    hips = runners / "05-hips.md"
    replace_line(hips, 38, "", "Hi {{ subscriber.nme }},")
    clock.advance(timedelta(days=1))

    with pytest.raises(BadInput, match=f"first: {hips}:38:"):
        sync(synced, runners, clock.now())

    assert lesson_rows(synced) == before
    with synced.transaction() as session:
        assert session.scalars(select(Course.synced_at)).one() < clock.now()
