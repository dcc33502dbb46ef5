"""Every secret the settings hold stays out of log lines, in both formats, whatever its value and
whichever part of a log call carries it (the message's arguments, an exception, `extra`): the
webhook secret and the providers' credentials as much as the API tokens and URL passwords."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from dripcourse.config import Settings
from dripcourse.domain.webhooks import new_secret
from dripcourse.telemetry import logs

SECRET_FIELDS = ("webhook_secret", "postmark_password", "mailgun_signing_key")

values = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=logs._SHORTEST_SECRET
).filter(lambda value: value.strip() == value and value.isprintable())


@pytest.fixture
def registered() -> Iterator[None]:
    """`keep_secret` registers for the process; each example starts from the same set."""
    before = set(logs._SECRETS)
    yield
    logs._SECRETS.clear()
    logs._SECRETS.update(before)


def written(form: str, value: str) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter() if form == "json" else logs.TextFormatter())
    log = logging.getLogger("dripcourse.test.settings_secrets")
    log.addHandler(handler)
    log.propagate, log.level = False, logging.DEBUG
    try:
        log.warning("the receiver refused %s", value, extra={"detail": f"[{value}]"})
        try:
            raise RuntimeError(f"signing with {value} failed")
        except RuntimeError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    return stream.getvalue()


@pytest.mark.parametrize("form", logs.FORMATS)
@pytest.mark.parametrize("name", SECRET_FIELDS)
def test_a_settings_secret_is_never_written(form: str, name: str, registered: None) -> None:
    value = new_secret() if name == "webhook_secret" else "pm-pass-Q7distinctive"
    logs.keep_secret(logs.secret_values(Settings(**{name: value})))
    assert value not in written(form, value)


@pytest.mark.parametrize("name", SECRET_FIELDS)
@hypothesis_settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=values)
def test_any_value_of_a_secret_setting_is_kept_out_of_json_lines(
    name: str, value: str, registered: None
) -> None:
    assume(value not in logs.REDACTED)
    logs.keep_secret(logs.secret_values(Settings(**{name: value})))
    for line in map(json.loads, written("json", value).splitlines()):
        for carried in ("event", "detail", "exception"):
            assert value not in str(line.get(carried, ""))


@pytest.mark.parametrize("name", SECRET_FIELDS)
def test_the_settings_repr_shows_no_secret(name: str) -> None:
    value = "pm-pass-Q7distinctive"
    assert value not in repr(Settings(**{name: value}))
