"""deploy/: the systemd units pass `systemd-analyze verify` (with ExecStart pointed at this
checkout's `dripcourse`, since /opt/dripcourse is where they would be installed), and the
verification can fail; the units share one metrics folder; the proxy example keeps /metrics closed,
and nginx itself (Debian's) accepts it (`nginx -t`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from debian_tools import missing_tool

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
INSTALLED = "/opt/dripcourse/.venv/bin/dripcourse"
UNITS = ("dripcourse-web.service", "dripcourse-worker@.service")


def verify(folder: Path, *names: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        missing_tool("systemd-analyze is not installed (apt-get install systemd)")
    return subprocess.run(
        [tool, "verify", *(str(folder / name) for name in names)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )


def local_copies(tmp_path: Path) -> Path:
    executable = shutil.which("dripcourse", path=os.path.dirname(sys.executable))
    assert executable, "the dripcourse console script of this environment"
    for name in UNITS:
        text = (DEPLOY / name).read_text(encoding="utf-8")
        assert INSTALLED in text
        (tmp_path / name).write_text(text.replace(INSTALLED, executable), encoding="utf-8")
    # A template is verified through an instance of it.
    shutil.copy(tmp_path / "dripcourse-worker@.service", tmp_path / "dripcourse-worker@1.service")
    return tmp_path


def test_the_units_verify(tmp_path: Path) -> None:
    folder = local_copies(tmp_path)
    done = verify(folder, "dripcourse-web.service", "dripcourse-worker@1.service")
    assert done.returncode == 0, done.stderr
    assert str(folder) not in done.stderr, done.stderr  # no warning about our files either


def test_the_verification_can_fail(tmp_path: Path) -> None:
    folder = local_copies(tmp_path)
    web = folder / "dripcourse-web.service"
    web.write_text(web.read_text().replace("ExecStart=", "ExecStrat="), encoding="utf-8")
    done = verify(folder, "dripcourse-web.service")
    assert done.returncode != 0
    assert "ExecStrat" in done.stderr


def test_web_and_workers_count_into_one_folder_and_log_json() -> None:
    settings = []
    for name in UNITS:
        text = (DEPLOY / name).read_text(encoding="utf-8")
        folder = re.search(r"^Environment=DRIPCOURSE_METRICS_DIR=(\S+)$", text, re.M)
        assert folder, name
        settings.append(folder.group(1))
        assert "Environment=DRIPCOURSE_LOG_FORMAT=json" in text
    assert len(set(settings)) == 1
    assert "--no-scheduler" in (DEPLOY / "dripcourse-web.service").read_text()
    assert (
        "ExecStart=/opt/dripcourse/.venv/bin/dripcourse run"
        in (DEPLOY / "dripcourse-worker@.service").read_text()
    )


def test_the_proxy_example_keeps_metrics_closed_to_the_public() -> None:
    text = (DEPLOY / "nginx-dripcourse.conf").read_text(encoding="utf-8")
    block = re.search(r"location = /metrics \{(.*?)\}", text, re.S)
    assert block and "deny all;" in block.group(1)
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert "X-Forwarded-Proto" in text


def nginx_test(tmp_path: Path, site: str) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on the example as a site of a minimal configuration, its certificate paths
    pointed at a throwaway self-signed pair (nginx reads them when it checks)."""
    tool = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if tool is None:
        missing_tool("nginx is not installed (apt-get install nginx-light)")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=courses.example.org", "-keyout", str(tmp_path / "key.pem"),
         "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    site = site.replace(
        "/etc/letsencrypt/live/courses.example.org/fullchain.pem", str(tmp_path / "cert.pem")
    ).replace("/etc/letsencrypt/live/courses.example.org/privkey.pem", str(tmp_path / "key.pem"))
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log stderr;\nevents {{}}\n"
        f"http {{ access_log off; include {tmp_path / 'site.conf'}; }}\n",
        encoding="utf-8",
    )
    return subprocess.run(
        [tool, "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_nginx_accepts_the_proxy_example(tmp_path: Path) -> None:
    done = nginx_test(tmp_path, (DEPLOY / "nginx-dripcourse.conf").read_text(encoding="utf-8"))
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr


def test_the_nginx_check_can_fail(tmp_path: Path) -> None:
    site = (DEPLOY / "nginx-dripcourse.conf").read_text(encoding="utf-8")
    done = nginx_test(tmp_path, site.replace("deny all;", "deny everyone;", 1))
    assert done.returncode != 0
    assert "everyone" in done.stderr
