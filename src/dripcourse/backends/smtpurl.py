"""The `smtp://` URL of the SMTP backend, read into its parts.

`smtp://[user:pass@]host[:port][?tls=starttls|ssl|none&timeout=SECONDS&pipelining=0]`: user and
password percent-decoded, both or neither; an unknown or repeated option, a path, a port out of
range or a bad value is a `BackendError` that names it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from dripcourse.backends.base import BackendError

TLSMode = Literal["none", "starttls", "ssl"]
DEFAULT_PORTS: dict[TLSMode, int] = {"none": 25, "starttls": 587, "ssl": 465}
DEFAULT_TIMEOUT = 30.0
_OPTIONS = ("pipelining", "timeout", "tls")
_SWITCHES = {
    **dict.fromkeys(("1", "on", "yes", "true"), True),
    **dict.fromkeys(("0", "off", "no", "false"), False),
}


@dataclass(frozen=True)
class SMTPURL:
    host: str
    port: int | None
    """None: the default port of the TLS mode."""
    tls: TLSMode | None
    """None: chosen by the backend from the host (plain only on this machine)."""
    username: str | None
    password: str | None
    timeout: float
    pipelining: bool


def parse_smtp_url(url: str) -> SMTPURL:
    parts = urlsplit(url)
    if parts.scheme.lower() != "smtp":
        raise BackendError("not an smtp:// URL")
    if not parts.hostname:
        raise BackendError("no host; expected smtp://[user:pass@]host[:port]")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise BackendError("the port must be a number from 1 to 65535")
    if parts.path not in ("", "/") or parts.fragment:
        raise BackendError("unexpected path; expected smtp://[user:pass@]host[:port][?options]")
    if parts.password is not None and not parts.username:
        raise BackendError("a password without a user name")
    if parts.username and parts.password is None:
        raise BackendError("a user name without a password; write user:password@host")
    options = _parse_options(parts.query)
    return SMTPURL(
        host=parts.hostname,
        port=port,
        tls=_parse_tls(options["tls"]) if "tls" in options else None,
        username=None if parts.username is None else unquote(parts.username),
        password=None if parts.password is None else unquote(parts.password),
        timeout=_parse_timeout(options["timeout"]) if "timeout" in options else DEFAULT_TIMEOUT,
        pipelining=_parse_switch("pipelining", options.get("pipelining", "1")),
    )


def _parse_options(query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _OPTIONS:
            known = ", ".join(_OPTIONS)
            raise BackendError(f"unknown option {key!r}; known options: {known}")
        if key in options:
            raise BackendError(f"option {key!r} given twice")
        options[key] = value
    return options


def _parse_switch(name: str, value: str) -> bool:
    try:
        return _SWITCHES[value.lower()]
    except KeyError:
        raise BackendError(f"{name} must be 1 or 0 (on or off), not {value!r}") from None


def _parse_tls(value: str) -> TLSMode:
    for mode in DEFAULT_PORTS:
        if value.lower() == mode:
            return mode
    raise BackendError(f"tls must be one of starttls, ssl, none; not {value!r}")


def _parse_timeout(value: str) -> float:
    try:
        timeout = float(value)
    except ValueError:
        timeout = math.nan
    if not (math.isfinite(timeout) and timeout > 0):
        raise BackendError(f"timeout must be a positive number of seconds, not {value!r}")
    return timeout
