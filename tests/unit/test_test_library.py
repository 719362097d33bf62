"""The tests' own library: the one wait helper, pure tests that need no PostgreSQL server, no test
module importing another, and no module in tests/ or benchmarks/ over 400 lines."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waiting import poll_until

ROOT = Path(__file__).resolve().parents[2]
#: Reader, config and statement tests: none of them may need the database fixture.
PURE = [
    "tests/unit/test_feedreader.py",
    "tests/unit/test_xlsx.py",
    "tests/unit/test_config_and_messages.py",
    "tests/unit/test_export_config.py",
    "tests/unit/test_kind_keys.py",
    "tests/unit/test_xapi_rules.py",
]


def test_poll_until_returns_the_first_truthy_value_the_condition_gives() -> None:
    answers: Iterator[object] = iter([None, 0, [], "ready", "later"])
    assert poll_until(lambda: next(answers), timeout=30, interval=0) == "ready"
    assert next(answers) == "later", "the condition is not asked again once it held"


def test_poll_until_fails_at_the_deadline_saying_what_it_waited_for() -> None:
    asked: list[int] = []

    def why() -> str:
        asked.append(1)
        return "the file never came"

    with pytest.raises(AssertionError, match=r"the file never came \(waited 0s\)"):
        poll_until(lambda: False, timeout=0, message=why)
    assert asked == [1], "the message is worked out once, when the wait fails"


def test_poll_until_lets_an_assertion_inside_the_condition_through_at_once() -> None:
    def exited() -> bool:
        raise AssertionError("the process exited 1")

    with pytest.raises(AssertionError, match="the process exited 1"):
        poll_until(exited, timeout=30)


@pytest.mark.slow
def test_the_reader_and_config_tests_run_with_no_postgresql_server() -> None:
    closed = {**os.environ, "FEEDSYNC_TEST_PG": "postgresql://postgres@127.0.0.1:1"}  # nothing listens on port 1
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PURE],
        cwd=ROOT,
        env=closed,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "error" not in proc.stdout.splitlines()[-1]


def _modules(*folders: str) -> list[Path]:
    """The Python modules of these folders, without local venvs or generated data (dot folders)."""
    return sorted(
        p
        for folder in folders
        for p in (ROOT / folder).rglob("*.py")
        if not any(part.startswith(".") for part in p.relative_to(ROOT).parts)
    )


def test_no_test_module_imports_another() -> None:
    """Shared builders and fixtures live in helper modules (tests/data.py and its neighbours), so a
    test module can be moved, split or deleted without breaking another."""
    found = []
    for path in _modules("tests"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
                for name in names
                if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")
            ]
    assert found == [], "move what is shared into a helper module under tests/: " + "; ".join(found)


def test_no_module_in_tests_or_benchmarks_is_over_400_lines() -> None:
    lines = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in _modules("tests", "benchmarks")}
    long = {path: n for path, n in lines.items() if n > 400}
    assert long == {}, f"split these by concern: {long}"
