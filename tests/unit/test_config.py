"""Settings as an operator gives them: a TOML file, overridden by DRIPCOURSE_* variables (config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from dripcourse.config import RANGES, Settings, load_settings
from dripcourse.errors import BadInput
from dripcourse.mail.dkim import signer_for


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dripcourse.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_without_file_or_variables_the_defaults_apply() -> None:
    settings = load_settings(None, {})

    assert settings == Settings()
    assert settings.email_backend == "console:"
    assert settings.secret_key is None


def test_the_toml_file_is_read(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        'database_url = "sqlite:///prod.db"\n'
        'base_url = "https://courses.example.org"\n'
        'courses_dir = "/srv/courses"\n'
        "batch_size = 50\n",
    )

    settings = load_settings(path, {})

    assert settings.database_url == "sqlite:///prod.db"
    assert settings.base_url == "https://courses.example.org"
    assert settings.courses_dir == Path("/srv/courses")
    assert settings.batch_size == 50
    assert settings.dispatch_interval == 60


def test_environment_variables_win_over_the_file(tmp_path: Path) -> None:
    path = config_file(
        tmp_path, 'base_url = "https://from-file.example"\nbatch_size = 50\nlease_seconds = 120\n'
    )
    environ = {
        "DRIPCOURSE_BASE_URL": "https://from-env.example",
        "DRIPCOURSE_BATCH_SIZE": "25",
        "DRIPCOURSE_COURSES_DIR": "/srv/env-courses",
        "UNRELATED": "ignored",
    }

    settings = load_settings(path, environ)

    assert settings.base_url == "https://from-env.example"
    assert settings.batch_size == 25
    assert settings.courses_dir == Path("/srv/env-courses")
    assert settings.lease_seconds == 120


def test_an_empty_environment_variable_does_not_override(tmp_path: Path) -> None:
    path = config_file(tmp_path, 'secret_key = "from-file"\n')

    settings = load_settings(path, {"DRIPCOURSE_SECRET_KEY": ""})

    assert settings.secret_key == "from-file"


def test_the_real_environment_is_read_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIPCOURSE_DISPATCH_INTERVAL", "15")

    assert load_settings().dispatch_interval == 15


def test_an_unknown_key_in_the_file_is_refused_by_name(tmp_path: Path) -> None:
    path = config_file(tmp_path, 'base_url = "https://x.example"\nbatch_sise = 10\n')

    with pytest.raises(BadInput, match=r"unknown setting.*batch_sise"):
        load_settings(path, {})


@pytest.mark.parametrize("value", ['"many"', "2.5", "true", "[1]"])
def test_a_whole_number_setting_in_the_file_must_be_a_whole_number(
    tmp_path: Path, value: str
) -> None:
    path = config_file(tmp_path, f"batch_size = {value}\n")

    with pytest.raises(BadInput, match="batch_size"):
        load_settings(path, {})


@pytest.mark.parametrize("value", ["ten", "2.5", " ", "1e3"])
def test_a_whole_number_setting_in_the_environment_must_be_a_whole_number(value: str) -> None:
    with pytest.raises(BadInput, match="dispatch_interval"):
        load_settings(None, {"DRIPCOURSE_DISPATCH_INTERVAL": value})


def test_a_text_setting_given_a_number_is_refused(tmp_path: Path) -> None:
    path = config_file(tmp_path, "base_url = 8000\n")

    with pytest.raises(BadInput, match="base_url"):
        load_settings(path, {})


def test_a_missing_config_file_is_refused_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "dripcourse.toml"

    with pytest.raises(BadInput, match=r"config file not found: .*nowhere"):
        load_settings(missing, {})


def test_a_config_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    path = config_file(tmp_path, "base_url = https://no-quotes.example\n")

    with pytest.raises(BadInput, match="cannot read config file"):
        load_settings(path, {})


# -- DKIM: all three settings or none ------------------------------------------------------------


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dkim") / "dkim.pem"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def test_without_dkim_settings_nothing_is_signed() -> None:
    assert Settings().dkim_key_file is None
    assert signer_for(Settings()) is None


def test_the_dkim_settings_are_read_from_the_file(tmp_path: Path, dkim_key: Path) -> None:
    path = config_file(
        tmp_path,
        f'dkim_key_file = "{dkim_key}"\n'
        'dkim_selector = "lessons2026"\n'
        'dkim_domain = "Northside-Physio.example"\n',
    )

    settings = load_settings(path, {})
    signer = signer_for(settings)

    assert settings.dkim_key_file == dkim_key
    assert signer is not None
    assert (signer.selector, signer.domain) == ("lessons2026", "northside-physio.example")


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"DRIPCOURSE_DKIM_SELECTOR": "s1"}, "dkim_key_file, dkim_domain"),
        ({"DRIPCOURSE_DKIM_DOMAIN": "example.com"}, "dkim_key_file, dkim_selector"),
        ({"DRIPCOURSE_DKIM_KEY_FILE": "KEY", "DRIPCOURSE_DKIM_SELECTOR": "s1"}, "dkim_domain"),
    ],
)
def test_dkim_takes_all_three_settings_or_none(
    dkim_key: Path, given: dict[str, str], missing: str
) -> None:
    environ = {name: value.replace("KEY", str(dkim_key)) for name, value in given.items()}

    with pytest.raises(
        BadInput, match=f"needs dkim_key_file, dkim_selector and dkim_domain; missing: {missing}$"
    ):
        load_settings(None, environ)


@pytest.mark.parametrize(
    ("selector", "domain", "complaint"),
    [
        ("two words", "example.com", "DKIM selector 'two words' is not a DNS name"),
        ("s1._domainkey", "example.com", "DKIM selector"),
        ("s1", "localhost", "DKIM domain 'localhost' is not a domain name"),
        ("s1", "https://example.com", "DKIM domain"),
    ],
)
def test_a_selector_or_domain_that_is_no_dns_name_is_refused(
    dkim_key: Path, selector: str, domain: str, complaint: str
) -> None:
    environ = {
        "DRIPCOURSE_DKIM_KEY_FILE": str(dkim_key),
        "DRIPCOURSE_DKIM_SELECTOR": selector,
        "DRIPCOURSE_DKIM_DOMAIN": domain,
    }

    with pytest.raises(BadInput, match=complaint):
        signer_for(load_settings(None, environ))  # as the command line does at start-up


# -- Feedback-ID template ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template", ["", "{course}:{lesson}:dripcourse", "{lesson}:{course}:northside:np-2026"]
)
def test_a_feedback_id_template_of_course_and_lesson_is_taken(template: str) -> None:
    assert load_settings(None, {"DRIPCOURSE_FEEDBACK_ID": template}).feedback_id == template


@pytest.mark.parametrize(
    ("template", "complaint"),
    [
        ("{campaign}:dripcourse", r"unknown field \{campaign\}; use \{course\}, \{lesson\}"),
        ("{course!r}:dripcourse", r"unknown field \{course\}"),
        ("{course:>20}:dripcourse", r"unknown field \{course\}"),
        ("{course.__class__}:x", r"unknown field"),
        ("{course:dripcourse", "feedback_id"),
        ("{course} dripcourse", "only visible ASCII"),
        ("{course}:läufer", "only visible ASCII"),
    ],
)
def test_a_feedback_id_template_with_anything_else_is_refused(
    template: str, complaint: str
) -> None:
    with pytest.raises(BadInput, match=complaint):
        load_settings(None, {"DRIPCOURSE_FEEDBACK_ID": template})


# -- ranges (issue 12): every number is checked at start-up, one line naming it and its range --


@given(name=st.sampled_from(sorted(RANGES)), value=st.integers() | st.floats())
def test_every_number_is_in_its_range_or_one_clear_error(name, value):
    low, high = RANGES[name]
    environ = {f"DRIPCOURSE_{name.upper()}": str(value)}
    try:
        settings = load_settings(environ=environ)
    except BadInput as exc:
        assert name in str(exc) and "\n" not in str(exc)
        return
    assert low <= getattr(settings, name) <= high


def test_the_findings_values_are_refused_by_name_and_range():
    for name, value in (("DISPATCH_INTERVAL", "-5"), ("DISPATCH_INTERVAL", "0")):
        with pytest.raises(BadInput, match=r"dispatch_interval .* out of range; use 1 to 86400"):
            load_settings(environ={f"DRIPCOURSE_{name}": value})
    with pytest.raises(BadInput, match=r"batch_size .* out of range"):
        load_settings(environ={"DRIPCOURSE_BATCH_SIZE": "99999999999999999999"})


def test_the_ses_hook_needs_only_its_topics(tmp_path: Path) -> None:
    """The signing certificates are fetched from AWS when no folder is given (docs/deliverability.md)."""
    topic = "arn:aws:sns:us-east-1:123456789012:ses-bounces"
    settings = load_settings(None, {"DRIPCOURSE_SNS_TOPIC_ARNS": topic})
    assert settings.sns_topics == {topic} and settings.sns_cert_dir is None
    folder = {"DRIPCOURSE_SNS_CERT_DIR": str(tmp_path)}
    assert (
        load_settings(None, folder | {"DRIPCOURSE_SNS_TOPIC_ARNS": topic}).sns_cert_dir == tmp_path
    )
    # A folder with no topic to take events of is half a configuration: refused, not ignored.
    with pytest.raises(BadInput, match="sns_cert_dir needs sns_topic_arns"):
        load_settings(None, folder)
    with pytest.raises(BadInput, match="is not a folder"):
        load_settings(
            None, {"DRIPCOURSE_SNS_TOPIC_ARNS": topic, "DRIPCOURSE_SNS_CERT_DIR": "/nope"}
        )
