"""Modules stay small enough to read in one sitting, package code, tests and benchmarks alike: one
that grows past 400 lines is split by concern (a stage into a package, as dlt does in dlt/load/; a
test module's shared builders into a module of their own, such as tests/data.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400
FOLDERS = ("workers", "producers", "schemas", "tests", "benchmarks")


def test_no_module_is_longer_than_400_lines() -> None:
    sizes = {
        folder: {
            str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
            for path in (ROOT / folder).rglob("*.py")
            # Not ours: the bench's peers live in hidden venvs under benchmarks/ (.venv-dlt, ...).
            if not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
        }
        for folder in FOLDERS
    }
    assert all(len(found) > 5 for found in sizes.values()), {f: len(found) for f, found in sizes.items()}
    assert {name: n for found in sizes.values() for name, n in found.items() if n > MAX_LINES} == {}
