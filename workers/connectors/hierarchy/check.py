"""Kind ``hierarchy``, the sanity check of the whole bundle before anything is applied:
duplicates, references that exist nowhere and cycles, each a row error; what depends on a rejected
row falls with it."""

from __future__ import annotations

from typing import Any

import psycopg

from workers import store
from workers.connectors.content import staged
from workers.connectors.hierarchy.transform import LABEL, TREES, config_of
from workers.rows import RunRow


def _reject(conn: psycopg.Connection[Any], run: RunRow, part: str, bad: str, attribute: str, code: str) -> int:
    """Reject the staged rows ``bad`` selects as (file_id, line_no, key, value, message): a row error
    each on ``attribute``'s column, the row dropped from staging and its key remembered."""
    run_id = run.id
    table = staged("huser" if part == "user" else part, run_id)
    row = store.fetch_one(
        conn,
        f"""
        WITH bad AS (SELECT DISTINCT ON (file_id, line_no) * FROM ({bad}) b),
        errs AS (
            INSERT INTO sync.row_errors (run_id, file_id, file_name, line, column_no, column_name, code, message,
                                         value, rejected)
            SELECT %(run)s, b.file_id, f.original_path, b.line_no, (rf.columns -> %(attr)s ->> 'no')::int,
                   rf.columns -> %(attr)s ->> 'column', %(code)s, b.message, left(b.value, 200), true
            FROM bad b JOIN sync.feed_files f ON f.id = b.file_id
            JOIN sync.run_files rf ON rf.run_id = %(run)s AND rf.file_id = b.file_id
            RETURNING 1),
        keys AS (INSERT INTO {staged("hrej", run_id)} (part, key, file_id, line_no)
                 SELECT %(part)s, key, file_id, line_no FROM bad RETURNING 1),
        del AS (DELETE FROM {table} s USING bad b WHERE s.file_id = b.file_id AND s.line_no = b.line_no RETURNING 1)
        SELECT (SELECT count(*) FROM del) AS n, (SELECT count(*) FROM errs) AS e, (SELECT count(*) FROM keys) AS k""",  # noqa: S608 (table names from staged(): fixed prefixes and int run ids; columns are this kind's attribute names; values are parameters)
        {"run": run_id, "attr": attribute, "code": code, "part": part},
    )
    return int(row["n"]) if row else 0


def _duplicates(table: str, column: str, what: str, fold: bool = False) -> str:
    """Every row whose ``column`` (case-folded with ``fold``) another row of the file also has."""
    k = f"lower(x.{column})" if fold else f"x.{column}"
    return f"""
        SELECT s.file_id, s.line_no, s.key, s.{column} AS value,
               'this {what} appears more than once in the file (lines ' || d.lines || '); keep one row and rerun'
                 AS message
        FROM {table} s JOIN (SELECT {k} AS k, string_agg(x.line_no::text, ', ' ORDER BY x.line_no) AS lines
                             FROM {table} x GROUP BY 1 HAVING count(*) > 1) d ON d.k = {k.replace("x.", "s.")}"""  # noqa: S608 (table names from staged(): fixed prefixes and int run ids; columns are this kind's attribute names; values are parameters)


def _cycles(table: str, link: str, store_table: str, store_link: str, label: str) -> str:
    """Rows on a cycle of ``link`` (bundle rows, and store rows the bundle does not replace), each
    with its whole chain: ``A → B → C → A``."""
    return f"""
        WITH RECURSIVE edges AS (
            SELECT key AS node, {link} AS up FROM {table}
            UNION ALL
            SELECT t.external_id, p.external_id FROM {store_table} t JOIN {store_table} p ON p.id = t.{store_link}
            WHERE t.external_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {table} s WHERE s.key = t.external_id)),
        walk (start, node, path) AS (
            SELECT s.key, s.{link}, ARRAY[s.key] FROM {table} s WHERE s.{link} IS NOT NULL
            UNION ALL
            SELECT w.start, e.up, w.path || w.node FROM walk w JOIN edges e ON e.node = w.node
            WHERE w.node <> ALL (w.path) AND e.up IS NOT NULL),
        cyc AS (SELECT DISTINCT ON (start) start, array_to_string(path || node, ' → ') AS chain
                FROM walk WHERE node = start)
        SELECT s.file_id, s.line_no, s.key, s.{link} AS value,
               'the {label} chain has a cycle: ' || c.chain || '; break it by correcting one of these rows and rerun'
                 AS message
        FROM {table} s JOIN cyc c ON c.start = s.key"""  # noqa: S608 (table names from staged(): fixed prefixes and int run ids; columns are this kind's attribute names; values are parameters)


def _missing(table: str, link: str, targets: list[str], rejected: str, part: str, label: str, fix: str) -> str:
    """Rows whose ``link`` names nothing in ``targets`` (bundle or store tables, by key)."""
    absent = " AND ".join(f"NOT EXISTS (SELECT 1 FROM {t} WHERE {k} = s.{link})" for t, k in map(str.split, targets))  # noqa: S608 (table names from staged(): fixed prefixes and int run ids; columns are this kind's attribute names; values are parameters)
    return f"""
        SELECT s.file_id, s.line_no, s.key, s.{link} AS value,
               CASE WHEN EXISTS (SELECT 1 FROM {rejected} r WHERE r.part = '{part}' AND r.key = s.{link})
                    THEN 'the {label} ' || s.{link} || ' was rejected (see its row); fix it and rerun'
                    ELSE 'no {label} has the id ' || s.{link} || ' in this bundle or in the platform; {fix}' END
                 AS message
        FROM {table} s WHERE s.{link} IS NOT NULL AND {absent}"""  # noqa: S608 (table names from staged(): fixed prefixes and int run ids; columns are this kind's attribute names; values are parameters)


def prepare(conn: psycopg.Connection[Any], run: RunRow) -> int:
    """The whole bundle's sanity check; returns how many rows it rejected."""
    run_id = run.id
    parts = config_of(run.config).parts
    rejected = staged("hrej", run_id)
    n = 0
    for part, store_table in TREES.items():
        if part not in parts:
            continue
        t, label = staged(part, run_id), LABEL[part]
        conn.execute(f"ANALYZE {t}")
        n += _reject(conn, run, part, _duplicates(t, "key", f"{label} id"), "key", "duplicate")
        n += _reject(conn, run, part, _cycles(t, "parent_key", store_table, "parent_id", label), "parent", "cycle")
        orphans = _missing(
            t,
            "parent_key",
            [f"{t} key", f"{store_table} external_id"],
            rejected,
            part,
            f"parent {label}",
            "add it to the file or correct the parent, and rerun",
        )
        while moved := _reject(conn, run, part, orphans, "parent", "unknown_parent"):  # until nothing more falls
            n += moved
    if "user" in parts:
        h = staged("huser", run_id)
        conn.execute(f"ANALYZE {h}")
        n += _reject(conn, run, "user", _duplicates(h, "key", "person id"), "key", "duplicate")
        n += _reject(conn, run, "user", _duplicates(h, "email", "e-mail", fold=True), "email", "duplicate_email")
        taken = f"""
            SELECT s.file_id, s.line_no, s.key, s.email AS value,
                   'this e-mail belongs to another person (id ' || u.external_id || '); correct it and rerun' AS message
            FROM {h} s JOIN lms.users u ON u.email_key = lower(s.email)
            WHERE u.external_id IS NOT NULL AND u.external_id <> s.key"""  # noqa: S608 (table names from staged(): fixed prefixes and int run ids; columns are this kind's attribute names; values are parameters)
        n += _reject(conn, run, "user", taken, "email", "email_taken")
        n += _reject(
            conn, run, "user", _cycles(h, "manager_key", "lms.users", "manager_id", "manager"), "manager", "cycle"
        )
        references = [
            ("unit_key", "unit", "unknown_unit", [f"{staged('org', run_id)} key", "lms.org_units external_id"]),
            (
                "position_key",
                "position",
                "unknown_position",
                [f"{staged('pos', run_id)} key", "lms.positions external_id"],
            ),
            ("manager_key", "manager", "unknown_manager", [f"{h} key", "lms.users external_id"]),
        ]
        while True:  # a person whose manager fell falls too
            fell = 0
            for link, attribute, code, targets in references:
                label = {"unit": "unit", "position": "position", "manager": "manager"}[attribute]
                ref_part = {"unit": "org", "position": "pos", "manager": "user"}[attribute]
                fix = f"add the {label} to the bundle or correct the id, and rerun"
                fell += _reject(
                    conn, run, "user", _missing(h, link, targets, rejected, ref_part, label, fix), attribute, code
                )
            n += fell
            if not fell:
                break
    return n
