"""The schema comes from the Alembic migrations, they agree with the models, and they ship in the
wheel so that `dripcourse db upgrade` works from an installed package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from dripcourse.store import migrations
from dripcourse.store.db import Database
from dripcourse.store.models import Base

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.both_databases
def test_upgrade_on_an_empty_database_equals_the_models(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_twice_is_harmless_and_the_revision_is_head(database: Database) -> None:
    migrations.upgrade(database)
    assert migrations.current_revision(database) == migrations.head_revision(database)
    tables = set(inspect(database.engine).get_table_names())
    assert {
        "courses",
        "lessons",
        "subscribers",
        "enrollments",
        "deliveries",
        "suppressions",
    } <= tables


def test_an_upgrade_with_nothing_to_do_leaves_foreign_keys_on(tmp_path: Path) -> None:
    """The pool hands the upgrade's connection to whoever comes next (a restore, the demo)."""
    database = Database(f"sqlite:///{tmp_path / 'twice.db'}")
    migrations.upgrade(database)
    migrations.upgrade(database)  # at head already: nothing to do
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    database.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(database: Database) -> None:
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [built] = out.glob("dripcourse-*.whl")
    return built


def test_the_wheel_ships_migrations_templates_and_the_example_course(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "dripcourse/alembic/env.py" in names
    assert "dripcourse/alembic/versions/0001_initial_schema.py" in names
    assert "dripcourse/templates/layout.html" in names
    assert "dripcourse/example_courses/runners/course.toml" in names


def test_db_upgrade_works_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(target),
        "DRIPCOURSE_DATABASE_URL": f"sqlite:///{workdir / 'x.db'}",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import dripcourse, sys; print(dripcourse.__file__, file=sys.stderr); "
            "from dripcourse.cli.main import main; main(['db', 'upgrade'])",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert str(target) in done.stderr  # the installed copy ran, not the source tree
    assert "migrated from empty to " in done.stdout
