"""The layer contract, checked over the import graph of src/dripcourse (issue 13): data flows one
way, from the shells down to the domain. A module may import from its own package and from the
layers below it; never from a layer above, nor from a neighbour on its own level. Every import
counts, those inside functions and under TYPE_CHECKING too: a lazy import is still a dependency.

    errors, clock < domain < config < telemetry < store < mail | backends < courses < app | sending
        < devtools < web < cli < __main__
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "dripcourse"
LAYERS: list[set[str]] = [
    {"__init__", "errors", "clock"},
    {"domain"},
    {"config"},
    {"telemetry"},
    {"store"},
    {"mail", "backends"},
    {"courses"},
    {"app", "sending"},
    {"devtools"},
    {"web"},
    {"cli"},
    {"__main__"},
]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def part_of(module: str) -> str:
    """`dripcourse.mail.builder` -> `mail`; `dripcourse.config` -> `config`."""
    return module.split(".")[1] if "." in module else "__init__"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("dripcourse")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "dripcourse":
                for alias in node.names:
                    module = (PACKAGE / alias.name).is_dir() or (
                        PACKAGE / f"{alias.name}.py"
                    ).exists()
                    found.add(f"dripcourse.{alias.name}" if module else "dripcourse")
            elif node.module.startswith("dripcourse."):
                found.add(node.module)
    return found


def upward_imports() -> list[str]:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = ".".join(("dripcourse", *path.relative_to(PACKAGE).with_suffix("").parts))
        mine = part_of(here)
        for target in sorted(imports_of(path)):
            theirs = part_of(target)
            if theirs == mine:
                continue
            if RANK[theirs] > RANK[mine] or (RANK[theirs] == RANK[mine]):
                wrong.append(f"{here} imports {target} ({mine} may not use {theirs})")
    return wrong


def test_every_module_has_a_layer() -> None:
    parts = {
        part_of(".".join(("dripcourse", *p.relative_to(PACKAGE).with_suffix("").parts)))
        for p in PACKAGE.rglob("*.py")
    }
    assert parts <= set(RANK), parts - set(RANK)


def test_no_module_imports_a_layer_above_or_beside_its_own() -> None:
    assert upward_imports() == []


def test_the_check_sees_an_upward_import() -> None:
    """The check can fail: an import of the CLI from the domain is one it reports."""
    probe = PACKAGE / "domain" / "_layer_probe.py"
    probe.write_text("from dripcourse.cli.main import main\n", encoding="utf-8")
    try:
        assert "dripcourse.domain._layer_probe imports dripcourse.cli.main" in " ".join(
            upward_imports()
        )
    finally:
        probe.unlink()
