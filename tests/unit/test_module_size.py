"""Package modules stay small enough to read in one sitting: one that grows past 400 lines is split
by concern (a stage into a package, as dlt does in dlt/load/)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def test_no_package_module_is_longer_than_400_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for package in ("workers", "producers", "schemas")
        for path in (ROOT / package).rglob("*.py")
    }
    assert len(sizes) > 50  # the walk found the package code
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
