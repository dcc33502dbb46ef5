"""Custom fields and audiences as pure rules (domain/fields.py, domain/audiences.py): what a course may
declare, what a stranger's values may be, who a lesson is for, and which lesson is owed next."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dripcourse.domain.audiences import (
    check_audience,
    describe,
    lesson_is_for,
    next_lesson_for,
    remaining_for,
)
from dripcourse.domain.course_settings import CourseSettings
from dripcourse.domain.fields import (
    MAX_TEXT,
    FieldSpec,
    check_values,
    complete,
    parse_assignments,
    parse_declaration,
)
from dripcourse.domain.schedule import next_lesson
from dripcourse.domain.validation import has_control_characters
from dripcourse.errors import BadInput

PROPERTY = settings(max_examples=300, deadline=None)

DECLARED, _ = parse_declaration(
    {
        "level": {"choices": ["beginner", "returning"], "default": "beginner"},
        "club": {"text": True, "label": "Running club"},
        "goal": {"choices": ["5k", "10k", "marathon"]},
    }
)
LEVEL, CLUB, GOAL = DECLARED


def test_a_declaration_is_read_with_labels_and_defaults() -> None:
    assert FieldSpec("level", "Level", ("beginner", "returning"), "beginner") == LEVEL
    assert FieldSpec("club", "Running club") == CLUB
    assert CLUB.is_text and not LEVEL.is_text
    assert GOAL.default == ""


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ({"Level": {"text": True}}, "lower-case"),
        ({"email": {"text": True}}, "subscriber's own column"),
        ({"timezone": {"text": True}}, "subscriber's own column"),
        ({"course": {"text": True}}, "subscriber's own column"),
        ({"level": "beginner"}, "must be a table"),
        ({"level": {}}, "give `choices"),
        ({"level": {"choices": []}}, "at least one"),
        ({"level": {"choices": ["a", "a"]}}, "listed twice"),
        ({"level": {"choices": ["a"], "default": "b"}}, "not one of the choices"),
        ({"level": {"choices": ["a"], "text": True}}, "not both"),
        ({"level": {"choices": ["a\nb"]}}, "one line"),
        ({"level": {"choices": ["a"], "colour": "red"}}, "unknown key 'colour'"),
        ({"club": {"text": True, "label": "two\nlines"}}, "label"),
        ({"club": {"text": True, "required": "yes"}}, "true or false"),
    ],
)
def test_a_bad_declaration_is_a_problem_naming_the_field(table: dict, says: str) -> None:
    specs, problems = parse_declaration(table)
    assert specs == ()
    [problem] = problems
    assert problem.startswith(f"fields.{next(iter(table))}: ")
    assert says in problem


def test_the_settings_keep_their_fields_and_older_rows_have_none() -> None:
    row = {
        "title": "T",
        "brand": "B",
        "sender": {"name": "N", "email": "n@example.com"},
        "footer": {"postal_address": "P"},
    }
    assert CourseSettings.from_json(row).fields == ()
    assert "fields" not in CourseSettings.from_json(row).to_json()
    declared = CourseSettings.from_json({**row, "fields": [s.to_json() for s in DECLARED]})
    assert declared.fields == DECLARED
    assert CourseSettings.from_json(declared.to_json()) == declared


# -- values from strangers --------------------------------------------------------------------------


def test_values_are_stored_as_given_and_defaults_are_applied_when_read() -> None:
    stored = check_values({"club": "  Riverside   Runners ", "goal": ""}, DECLARED)
    assert stored == {"club": "Riverside Runners"}  # empty = not given; not stored
    assert complete(stored, DECLARED) == {
        "level": "beginner",
        "club": "Riverside Runners",
        "goal": "",
    }
    # The author changes the default: everyone who gave none follows it.
    changed = (FieldSpec("level", "Level", ("beginner", "returning"), "returning"), CLUB, GOAL)
    assert complete(stored, changed)["level"] == "returning"


@pytest.mark.parametrize(
    ("given", "field", "says"),
    [
        ({"colour": "red"}, "colour", "unknown field 'colour'"),
        ({"level": "expert"}, "level", "one of beginner, returning"),
        ({"level": "Beginner"}, "level", "one of beginner, returning"),
        ({"club": "a\nb"}, "club", "line breaks"),
        ({"club": "a\x00b"}, "club", "control characters"),
        ({"club": "x" * (MAX_TEXT + 1)}, "club", "at most 200"),
        ({"club": 7}, "club", "must be text"),
    ],
)
def test_a_bad_value_is_refused_naming_the_field(given: dict, field: str, says: str) -> None:
    with pytest.raises(BadInput) as refused:
        check_values(given, DECLARED)
    assert refused.value.field == field
    assert says in str(refused.value)


def test_a_required_field_is_needed_at_sign_up_but_not_for_a_change() -> None:
    declared, _ = parse_declaration({"club": {"text": True, "required": True}})
    with pytest.raises(BadInput, match="Club is required"):
        check_values({}, declared)
    assert check_values({}, declared, require=False) == {}


def test_a_value_the_course_no_longer_offers_counts_as_not_given() -> None:
    assert complete({"level": "expert", "other": "x"}, DECLARED) == {
        "level": "beginner",
        "club": "",
        "goal": "",
    }


def test_command_line_assignments() -> None:
    assert parse_assignments(["level=returning", "club=A=B"]) == {
        "level": "returning",
        "club": "A=B",
    }
    for bad in (["level"], ["=x"], ["level=a", "level=b"]):
        with pytest.raises(BadInput):
            parse_assignments(bad)


@PROPERTY
@given(st.dictionaries(st.sampled_from(["level", "club", "goal"]), st.text(max_size=250)))
def test_any_text_is_either_refused_or_stored_clean(given: dict[str, str]) -> None:
    try:
        stored = check_values(given, DECLARED)
    except BadInput as refused:
        assert refused.field in given
        return
    for name, value in stored.items():
        assert value  # nothing empty is stored
        assert not has_control_characters(value)
        assert len(value) <= MAX_TEXT
        assert value == " ".join(unicodedata.normalize("NFC", value).split())
        if name != "club":
            assert value in {"beginner", "returning", "5k", "10k", "marathon"}
    # Checking what was stored again changes nothing.
    assert check_values(stored, DECLARED) == stored


@PROPERTY
@given(st.dictionaries(st.text(max_size=20), st.text(max_size=20), min_size=1))
def test_a_name_that_is_not_declared_is_always_refused(given: dict[str, str]) -> None:
    unknown = [name for name in given if name not in ("level", "club", "goal")]
    if not unknown:
        return
    with pytest.raises(BadInput, match="unknown field"):
        check_values(given, DECLARED)


# -- audiences --------------------------------------------------------------------------------------


def test_an_audience_must_name_a_choice_field_and_its_choices() -> None:
    assert check_audience({"level": ["returning"]}, DECLARED) == []
    assert "unknown field 'size'" in check_audience({"size": ["s"]}, DECLARED)[0]
    assert "text field" in check_audience({"club": ["A"]}, DECLARED)[0]
    assert "'expert' is not one of" in check_audience({"level": ["expert"]}, DECLARED)[0]
    assert "at least one" in check_audience({"level": []}, DECLARED)[0]
    assert "must be a table" in check_audience(["level"], DECLARED)[0]


def test_who_a_lesson_is_for() -> None:
    returning = {"level": ["returning"]}
    assert lesson_is_for(None, {}, DECLARED)
    assert not lesson_is_for(returning, {}, DECLARED)  # the default is beginner
    assert lesson_is_for(returning, {"level": "returning"}, DECLARED)
    both = {"level": ["returning"], "goal": ["marathon", "10k"]}
    assert not lesson_is_for(both, {"level": "returning"}, DECLARED)
    assert lesson_is_for(both, {"level": "returning", "goal": "10k"}, DECLARED)
    assert describe(both) == "for level returning and goal marathon or 10k"


KEYS = ["a", "b", "c", "d", "e"]


def test_a_skipped_lesson_gives_its_turn_to_the_next_one_for_them() -> None:
    not_c = lambda key: key != "c"  # noqa: E731
    assert next_lesson_for(KEYS, ["a", "b"], not_c) == ("d", ["c"])
    assert remaining_for(KEYS, ["a"], not_c) == ([(2, "b"), (4, "d"), (5, "e")], [(3, "c")])
    # Nothing left for them: the course is over.
    assert next_lesson_for(KEYS, ["a", "b", "c", "d"], lambda key: key != "e") == (None, ["e"])


def test_a_change_of_fields_never_sends_a_lesson_they_have_passed() -> None:
    # They skipped b (outside it then) and had c; now inside b's audience, but past its place.
    assert next_lesson_for(KEYS, ["a", "c"], lambda key: True) == ("d", [])
    # They had c while inside its audience, and are outside it now: d follows, not b again.
    assert next_lesson_for(KEYS, ["a", "c"], lambda key: key != "c") == ("d", [])


@PROPERTY
@given(
    st.lists(st.sampled_from(KEYS), unique=True, max_size=5),
    st.sets(st.sampled_from(KEYS)),
)
def test_with_every_lesson_for_them_it_is_the_plain_next_lesson(
    history: list[str], outside: set[str]
) -> None:
    assert next_lesson_for(KEYS, history, lambda key: True) == (next_lesson(KEYS, history), [])
    key, skipped = next_lesson_for(KEYS, history, lambda k: k not in outside)
    assert key is None or key not in outside
    assert all(k in outside for k in skipped)
    # Whatever they skip, what they get is in course order after their place, never had before.
    if key is not None:
        assert key not in history
    remaining, passed = remaining_for(KEYS, history, lambda k: k not in outside)
    numbers = [number for number, _ in remaining]
    assert numbers == sorted(numbers)
    assert not {k for _, k in remaining} & outside
    assert {k for _, k in passed} <= outside
