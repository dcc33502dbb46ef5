"""The early-lesson link and the completion email as rendered: the link is per recipient like the
unsubscribe link, so a lesson stays on the stencil fast path; it is in every lesson but the last,
in both parts; the completion email is rendered like a lesson but is not one."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from strength_courses import PHASE_1, write_strength_courses

from dripcourse.courses.catalog import check_course, renderer_for_source
from dripcourse.courses.checks import course_warnings
from dripcourse.courses.files import read_course
from dripcourse.domain.completion import COMPLETION_KEY
from dripcourse.mail.rendering import CourseRenderer, Links, Recipient

HOSTILE = Recipient(email="o'neil@example.com", name='Ann <b>O\'Neil</b> & "Co"', timezone="UTC")
LINKS = Links(
    unsubscribe="https://x.example/unsubscribe/a.b",
    view_online="https://x.example/v/d",
    early="https://x.example/early/e1-l2.sig?x=<1>&y=2",
)


def renderer(tmp_path: Path, phase_1: str = PHASE_1) -> CourseRenderer:
    write_strength_courses(tmp_path, phase_1=phase_1)
    return renderer_for_source(read_course(tmp_path / "strength-phase-1"))


@pytest.mark.parametrize("recipient", [HOSTILE, Recipient(email="plain@example.com")])
def test_the_early_link_keeps_every_lesson_on_the_stencil(tmp_path, recipient) -> None:
    course = renderer(tmp_path)
    for lesson in course.lessons:
        fast = course.render(lesson.key, recipient, LINKS)
        full = course.render_in_full(lesson.key, recipient, LINKS)
        assert course._stencils[lesson.key] is not None, f"{lesson.key} is not on the fast path"
        assert (fast.subject, fast.text) == (full.subject, full.text)
        assert html.unescape(fast.html) == html.unescape(full.html)


def test_every_lesson_but_the_last_offers_the_next_one_early(tmp_path) -> None:
    course = renderer(tmp_path)
    keys = ["bridge", "squat", "row", "plank"]
    for key in keys:
        rendered = course.render(key, HOSTILE, LINKS)
        offered = key != keys[-1]
        assert ("Get the next lesson now" in rendered.text) is offered
        assert (LINKS.early in rendered.text) is offered
        # Escaped in the HTML like every personal value in an attribute: the ampersand and the
        # quote (a `<` cannot end a quoted attribute, and the serialiser leaves it).
        assert ('href="https://x.example/early/e1-l2.sig?x=<1>&amp;y=2"' in rendered.html) is (
            offered
        )
    closing = course.render(COMPLETION_KEY, HOSTILE, LINKS)
    assert "Get the next lesson now" not in closing.text


def test_without_allow_early_no_lesson_offers_it(tmp_path) -> None:
    course = renderer(tmp_path, PHASE_1.replace("allow_early = true", "allow_early = false"))
    for lesson in course.lessons:
        assert "next lesson now" not in course.render(lesson.key, HOSTILE, LINKS).text


def test_the_completion_email_is_rendered_like_a_lesson_but_is_not_one(tmp_path) -> None:
    course = renderer(tmp_path)
    closing = course.render(COMPLETION_KEY, HOSTILE, LINKS)
    assert closing.subject == "You finished Strength, phase 1, Ann"
    assert "COURSE COMPLETE" in closing.text and "LESSON 5" not in closing.text
    assert "You have had all 4 lessons." in closing.text
    assert "Course complete" in closing.html and "Lesson 4 of 4" not in closing.html
    source = read_course(tmp_path / "strength-phase-1")
    assert [lesson.key for lesson in source.lessons] == ["bridge", "squat", "row", "plank"]
    assert course.render("plank", HOSTILE, LINKS).text.count("LESSON 4 OF 4") == 1


def test_a_broken_completion_email_is_a_problem_at_its_own_line(tmp_path) -> None:
    write_strength_courses(tmp_path)
    (tmp_path / "strength-phase-1" / "completion.md").write_text(
        '+++\nsubject = "Done"\ntitle = "Done"\n+++\nHi {{ subscriber.nme }},\n'
    )
    problems = [str(p) for p in check_course(read_course(tmp_path / "strength-phase-1"))]
    assert problems == [
        f"{tmp_path}/strength-phase-1/completion.md:5: body: unknown field subscriber.nme; "
        "known: email, fields, first_name, name, timezone"
    ]


def test_a_completion_email_without_a_subject_is_refused(tmp_path) -> None:
    write_strength_courses(tmp_path)
    (tmp_path / "strength-phase-1" / "completion.md").write_text('+++\ntitle = "Done"\n+++\nBye\n')
    problems = [str(p) for p in check_course(read_course(tmp_path / "strength-phase-1"))]
    assert problems == [f"{tmp_path}/strength-phase-1/completion.md:1: missing subject"]


def test_check_warns_about_an_unknown_next_course(tmp_path) -> None:
    write_strength_courses(tmp_path, phase_1=PHASE_1.replace("strength-phase-2", "phase-3"))
    warnings = [str(w) for w in course_warnings(read_course(tmp_path / "strength-phase-1"))]
    assert any(
        "course.toml:1: warning: next.course 'phase-3' is not a course" in warning
        for warning in warnings
    ), warnings
    assert not any("completion.md" in warning for warning in warnings)


def test_a_next_course_that_cannot_be_a_slug_is_a_problem(tmp_path) -> None:
    write_strength_courses(tmp_path, phase_1=PHASE_1.replace("strength-phase-2", "../etc"))
    problems = [str(p) for p in read_course(tmp_path / "strength-phase-1").problems]
    assert len(problems) == 1 and "next.course '../etc' is not a course slug" in problems[0]


def test_allow_early_must_be_true_or_false(tmp_path) -> None:
    write_strength_courses(
        tmp_path, phase_1=PHASE_1.replace("allow_early = true", 'allow_early = "yes"')
    )
    problems = [str(p) for p in read_course(tmp_path / "strength-phase-1").problems]
    assert len(problems) == 1 and "schedule.allow_early must be true or false" in problems[0]


def test_the_new_settings_survive_the_json_column_and_old_rows_read_as_before(tmp_path) -> None:
    from dripcourse.domain.course_settings import CourseSettings

    write_strength_courses(tmp_path)
    settings = read_course(tmp_path / "strength-phase-1").checked_settings
    assert settings.allow_early and settings.next_course == "strength-phase-2"
    assert settings.completion is not None and settings.completion.body_line == 6
    assert CourseSettings.from_json(settings.to_json()) == settings
    plain = read_course(tmp_path / "strength-phase-2").checked_settings
    assert not {"allow_early", "next", "completion"} & set(plain.to_json())
    assert (plain.allow_early, plain.next_course, plain.completion) == (False, None, None)
