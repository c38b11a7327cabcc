"""README.md names files (`campaigns/sending/claiming.py`) and Python names
(`campaigns.matching.processing`, `triggermail.gunicorn_worker.BufferingWorker`) for a reader to open.
Each must exist: a moved module or a renamed function otherwise leaves the README pointing at nothing."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

from harness.processes import BASE_DIR

README = BASE_DIR / "README.md"
TOP_DIRS = sorted(p.name for p in BASE_DIR.iterdir() if p.is_dir() and not p.name.startswith("."))
PACKAGES = sorted(name for name in TOP_DIRS if (BASE_DIR / name / "__init__.py").exists())
# A path starts at one of the repository's top-level directories (so `GET /v1/openapi.json` is a URL,
# not a file); a Python name at one of its packages, with lower-case modules and functions and an
# optional class (so `https://triggermail.example.com` and the check id `triggermail.E001` are not).
# A file has an extension and a directory ends with a slash, so prose such as "events/s" is neither.
PATH = re.compile(rf"(?<![\w./:-])((?:{'|'.join(TOP_DIRS)})/(?:[\w./-]*\.[A-Za-z0-9]+\b|[\w./-]*/))")
# What runs write (var/, tests/artifacts/ …) is in .gitignore, not in the repository.
OUTPUT = tuple(
    line.strip() for line in (BASE_DIR / ".gitignore").read_text().splitlines() if line.strip().endswith("/")
)
DOTTED = re.compile(rf"(?<![\w./:-])((?:{'|'.join(PACKAGES)})(?:\.[a-z_]\w*)+(?:\.[A-Z]\w*)?)\b(?![/-])")


@cache
def _names_in(module: Path) -> frozenset[str]:
    """The names a module defines or imports at its top level, and its classes' attributes as Class.name."""
    names: set[str] = set()
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            names.update(f"{node.name}.{n}" for n in _names_in_body(node.body))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        else:
            names.update(_names_in_body([node]))
    return frozenset(names)


def _names_in_body(body: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def dotted_exists(name: str) -> bool:
    """A package or module, or a name defined in the longest module the dotted name starts with."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        base = BASE_DIR.joinpath(*parts[:i])
        module = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if module.exists():
            rest = ".".join(parts[i:])
            return not rest or rest in _names_in(module)
    return False


def references() -> tuple[list[str], list[str]]:
    text = README.read_text()
    paths = {p for p in PATH.findall(text) if not p.startswith(OUTPUT)}
    return sorted(paths), sorted(set(DOTTED.findall(text)))


def test_every_file_the_readme_names_exists() -> None:
    paths, _ = references()
    assert len(paths) > 10, f"the pattern finds too few paths to be looking at the right text: {paths}"
    assert [p for p in paths if not (BASE_DIR / p).exists()] == []


def test_every_module_and_function_the_readme_names_exists() -> None:
    _, names = references()
    assert len(names) > 3, f"the pattern finds too few names to be looking at the right text: {names}"
    assert [n for n in names if not dotted_exists(n)] == []


def test_a_name_that_was_moved_away_is_reported() -> None:
    # The checks above must be able to fail: names this change moved out of the apps are not found.
    assert not dotted_exists("campaigns.matching.processing.events_process_pending")
    assert not dotted_exists("campaigns.claiming")
    assert dotted_exists("campaigns.matching.processing.events_process_batch")
    assert dotted_exists("triggermail.gunicorn_worker.BufferingWorker")
    assert PATH.findall("see tests/processes.py and GET /v1/openapi.json") == ["tests/processes.py"]
    assert not (BASE_DIR / "tests/processes.py").exists()
