"""`make lint`: every ``psycopg.sql.SQL`` is built from a string literal, so no statement text is computed.

Run by the venv's own Python: `python deploy/check-sql.py workers producers schemas`. A computed text
(an f-string, a variable, a call, a ``+``) put into ``sql.SQL`` escapes both psycopg's quoting and
ruff's S608: the varying parts go through ``.format()`` as ``sql.Identifier``, ``sql.Literal`` or another
``Composable``, and values with a '%' (regexes) as parameters. Python joins implicitly concatenated
literals (``"a" "b"``) into one constant, so those pass. ``sql.SQL`` passed on uncalled (``map(sql.SQL,
…)``) would hide its argument: it fails too. Exits 1 with one line per offence (file, line, column).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

FIX = (
    "write the statement as a string literal and pass its varying parts through .format() "
    "(sql.Identifier, sql.Literal, another Composable, or a parameter)"
)


def _names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """The names this module gives the psycopg.sql module, and the class psycopg.sql.SQL."""
    modules, classes = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "psycopg":
            modules |= {a.asname or a.name for a in node.names if a.name == "sql"}
        elif isinstance(node, ast.ImportFrom) and node.module == "psycopg.sql":
            classes |= {a.asname or a.name for a in node.names if a.name == "SQL"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.name == "psycopg.sql" and a.asname}
    return modules, classes


def _is_sql_class(node: ast.expr, modules: set[str], classes: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in classes
    if not (isinstance(node, ast.Attribute) and node.attr == "SQL"):
        return False
    owner = node.value
    if isinstance(owner, ast.Name):
        return owner.id in modules
    # psycopg.sql.SQL, spelled out after `import psycopg`
    return (
        isinstance(owner, ast.Attribute)
        and owner.attr == "sql"
        and isinstance(owner.value, ast.Name)
        and owner.value.id == "psycopg"
    )


def _what(arg: ast.expr | None) -> str:
    if arg is None:
        return "no argument"
    if isinstance(arg, ast.JoinedStr):
        return "an f-string"
    if isinstance(arg, ast.Name):
        return f"the variable {arg.id!r}"
    if isinstance(arg, ast.BinOp):
        return "text joined with an operator"
    if isinstance(arg, ast.Call):
        return "the result of a call"
    if isinstance(arg, ast.IfExp):
        return "a conditional expression (make each branch its own sql.SQL literal)"
    return "a computed value"


def _type_uses(tree: ast.Module) -> set[int]:
    """The nodes that name a type rather than make a statement: annotations, isinstance's classes."""
    roots: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            roots.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            roots.append(node.returns)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _TYPE_TESTS:
            roots.extend(node.args[1:])
    return {id(n) for root in roots for n in ast.walk(root)}


_TYPE_TESTS = frozenset({"isinstance", "issubclass"})


def offences(source: str, filename: str) -> list[str]:
    """One sentence for each ``sql.SQL`` in ``source`` that is not applied to a string literal, in order."""
    tree = ast.parse(source, filename)
    modules, classes = _names(tree)
    found: list[tuple[int, int, str]] = []
    called: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_sql_class(node.func, modules, classes):
            called.add(id(node.func))
            arg = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "obj"), None)
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str) and len(node.args) <= 1):
                found.append((node.lineno, node.col_offset, f"sql.SQL is applied to {_what(arg)}"))
    named = called | _type_uses(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Name | ast.Attribute)
            and id(node) not in named
            and isinstance(node.ctx, ast.Load)
            and _is_sql_class(node, modules, classes)
        ):
            found.append((node.lineno, node.col_offset, "sql.SQL is passed on without being called on a literal"))
    return [f"{filename}:{line}:{col + 1}: {what}; {FIX}." for line, col, what in sorted(found)]


def check(paths: list[str]) -> list[str]:
    found: list[str] = []
    for root in map(Path, paths):
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            found.extend(offences(path.read_text(encoding="utf-8"), str(path)))
    return found


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python deploy/check-sql.py DIR_OR_FILE...", file=sys.stderr)
        return 2
    found = check(argv)
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
