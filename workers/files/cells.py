"""What a spreadsheet must not run: cells of the CSVs people open (the error report, the exports).

A spreadsheet reads a cell starting with ``=``, ``+``, ``-`` or ``@`` as a formula (OWASP "CSV
injection"), and tab and CR too, since some strip them and then see the next character. Names,
titles and profile attributes come from HR and content feeds, so any of them may start so.

One rule, two forms: ``csv_cell`` for cells Python writes, ``sql_cell`` for cells PostgreSQL writes
with ``COPY`` (the exports), built from the same characters so the two cannot drift apart.
"""

from __future__ import annotations

from psycopg import sql

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A cell a spreadsheet shows as text: one starting with ``= + - @``, tab or CR gets a leading
    single quote (OWASP). Numbers and empty cells are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def sql_cell(expr: sql.Composable) -> sql.Composed:
    """``csv_cell`` in SQL, for one column of a ``SELECT`` that ``COPY`` writes as CSV. Only text
    is touched, as ``csv_cell`` leaves numbers alone (a negative score stays a number); every value
    comes out as text, which ``COPY`` writes exactly as it writes the value itself."""
    return sql.SQL(
        "CASE WHEN pg_typeof({v}) IN ('text'::regtype, 'character varying'::regtype, 'unknown'::regtype) "
        "AND left(({v})::text, 1) = ANY({starts}) THEN '''' || ({v})::text ELSE ({v})::text END"
    ).format(v=expr, starts=sql.Literal(list(FORMULA_START)))
