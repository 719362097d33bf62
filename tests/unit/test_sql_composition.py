"""Statements are psycopg.sql compositions: `make lint` runs deploy/check-sql.py, which fails on an
``sql.SQL`` applied to anything but a string literal (computed text escapes psycopg's quoting)."""

from __future__ import annotations

import importlib.util
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import cast

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_sql", ROOT / "deploy" / "check-sql.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHECKER = _checker()
offences = cast(Callable[[str, str], list[str]], CHECKER.offences)
check = cast(Callable[[list[str]], list[str]], CHECKER.check)
main = cast(Callable[[list[str]], int], CHECKER.main)


def _offences(body: str, imports: str = "from psycopg import sql\n") -> list[str]:
    return offences(imports + textwrap.dedent(body), "example.py")


def test_the_package_code_builds_every_sql_statement_from_string_literals() -> None:
    assert check([str(ROOT / d) for d in ("workers", "producers", "schemas")]) == []


def test_an_f_string_put_back_into_check_failed_fails_naming_its_file_line_and_column() -> None:
    path = ROOT / "workers" / "connectors" / "checks.py"
    source = path.read_text(encoding="utf-8")
    composed = 'sql.SQL("coalesce(({}), false)").format(check.failed)'
    assert source.count(composed) == 1
    line = source[: source.index(composed)].count("\n") + 1
    column = source.splitlines()[line - 1].index(composed) + 1
    found = offences(source.replace(composed, 'sql.SQL(f"coalesce(({check.failed}), false)")'), str(path))
    assert found == [
        f"{path}:{line}:{column}: sql.SQL is applied to an f-string; write the statement as a string literal and "
        "pass its varying parts through .format() (sql.Identifier, sql.Literal, another Composable, or a parameter)."
    ]


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ('q = sql.SQL(f"SELECT {column} FROM t")', "an f-string"),
        ("where = 'a = 1'\nq = sql.SQL(where)", "the variable 'where'"),
        ('q = sql.SQL("SELECT " + column)', "text joined with an operator"),
        ('q = sql.SQL("SELECT %s" % column)', "text joined with an operator"),
        ('q = sql.SQL(", ".join(columns))', "the result of a call"),
        ('q = sql.SQL("a" if flag else "b")', "a conditional expression"),
        ("q = sql.SQL(obj=where)", "the variable 'where'"),
        ("q = sql.SQL()", "no argument"),
        ("q = sql.SQL(*parts)", "a computed value"),
        ("q = list(map(sql.SQL, names))", "passed on without being called"),
    ],
)
def test_computed_text_in_sql_SQL_fails(body: str, what: str) -> None:
    [found] = _offences(body)
    assert found.startswith("example.py:") and what in found


@pytest.mark.parametrize(
    ("imports", "call"),
    [
        ("from psycopg import sql as s\n", "s.SQL(text)"),
        ("from psycopg.sql import SQL\n", "SQL(text)"),
        ("from psycopg.sql import SQL as Q\n", "Q(text)"),
        ("import psycopg.sql as pq\n", "pq.SQL(text)"),
        ("import psycopg\n", "psycopg.sql.SQL(text)"),
    ],
)
def test_every_spelling_of_psycopg_sql_SQL_is_checked(imports: str, call: str) -> None:
    assert len(_offences(f"q = {call}", imports)) == 1


def test_string_literals_annotations_and_other_sql_attributes_pass() -> None:
    body = '''
        def build(x: sql.SQL, other: object) -> sql.SQL:
            a = sql.SQL("SELECT {} FROM t").format(sql.Identifier("c"))
            b = sql.SQL("SELECT 1 " "FROM t")  # implicitly concatenated: one constant
            c = sql.SQL("""
                SELECT 2""")
            assert isinstance(a, sql.SQL) or isinstance(x, (sql.SQL, sql.Composed))
            return other.SQL(f"not psycopg {b} {c}")
    '''
    assert _offences(body) == []


def test_the_lint_command_exits_1_listing_each_offence_and_0_when_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = tmp_path / "good.py", tmp_path / "pkg" / "bad.py"
    bad.parent.mkdir()
    good.write_text('from psycopg import sql\nq = sql.SQL("SELECT 1")\n')
    bad.write_text('from psycopg import sql\nq = sql.SQL(f"SELECT {1}")\n')
    assert main([str(good)]) == 0
    assert main([str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines()[0].startswith(f"{bad}:2:5: sql.SQL is applied to an f-string;")
