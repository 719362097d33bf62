"""Kind ``hierarchy``: org.csv (units), pos.csv (positions) and user.csv (people) as one bundle.

Everything is keyed by the HR system's id numbers. The bundle is checked whole before anything is
applied (``prepare``): duplicates, references to a unit, position or manager that exists neither
in the bundle nor in the store, and cycles in the unit tree or the manager chains, each reported
with its whole chain on every row of the cycle. Rows with errors are dropped from staging (and
whatever depends on them, until nothing more falls); the rest is applied in dependency order:
units, positions, people, manager links, deactivations (full feeds), then the group rules for the
people the run changed.
"""

from __future__ import annotations

from functools import partial
from pathlib import PurePosixPath
from typing import Any

import psycopg
from psycopg import sql

from schemas.connections import BUNDLE_CORE, BUNDLE_PARTS, DONT_IMPORT, Connection, connection_from_json
from schemas.providers import FileNameProblem, FileSpec
from workers import rules, store
from workers.connectors import users
from workers.connectors.checks import Check, Chunk, checked_insert, jsonb_object, literal, required, row_hash
from workers.connectors.content import Step, staged
from workers.connectors.users import EMAIL_BAD_DOTS, EMAIL_RE

TREES = {"org": "lms.org_units", "pos": "lms.positions"}
LABEL = {"org": "unit", "pos": "position", "user": "person"}


def config_of(raw: dict[str, Any]) -> Connection:
    return connection_from_json(raw)


def file_spec(config: dict[str, Any], file_name: str) -> FileSpec:
    cfg = config_of(config)
    for part in cfg.parts:
        options = cfg.files[part]
        if options.name == file_name:
            mapping = {a: c for a, c in options.mapping.items() if c != DONT_IMPORT}
            return FileSpec(
                part, "csv", mapping, frozenset(mapping), encoding=options.encoding, delimiter=options.delimiter
            )
    expected = ", ".join(cfg.files[p].name for p in cfg.parts)
    raise FileNameProblem(f"{file_name!r} is not a file of this bundle; it takes {expected}")


def expected_files(config: dict[str, Any]) -> dict[str, str]:
    """part -> file name, for the parts the connection syncs."""
    cfg = config_of(config)
    return {p: cfg.files[p].name for p in BUNDLE_PARTS if p in cfg.parts}


def create_staging(conn: psycopg.Connection[Any], run_id: int, config: dict[str, Any]) -> None:
    for part in TREES:
        conn.execute(
            f"""CREATE UNLOGGED TABLE IF NOT EXISTS {staged(part, run_id)} (
                  file_id bigint NOT NULL, line_no int NOT NULL, key text NOT NULL, name text NOT NULL,
                  parent_key text, attrs jsonb NOT NULL, row_hash text NOT NULL)"""
        )
    conn.execute(
        f"""CREATE UNLOGGED TABLE IF NOT EXISTS {staged("huser", run_id)} (
              file_id bigint NOT NULL, line_no int NOT NULL, key text NOT NULL, email text NOT NULL,
              first_name text, last_name text, unit_key text, position_key text, manager_key text,
              attrs jsonb NOT NULL, row_hash text NOT NULL)"""
    )
    # Keys seen in rejected rows, with their rows (never deactivated: being refused is not being
    # gone; a rejected row not here is one whose key could not be read), and the people the run
    # changed (the group rules are evaluated for them only).
    conn.execute(
        f"""CREATE UNLOGGED TABLE IF NOT EXISTS {staged("hrej", run_id)} (
              part text NOT NULL, key text NOT NULL, file_id bigint, line_no int)"""
    )
    conn.execute(f"CREATE UNLOGGED TABLE IF NOT EXISTS {staged('affected', run_id)} (user_id bigint PRIMARY KEY)")


# -- transform ------------------------------------------------------------------------------------------


def _attrs(part: str, present: dict[str, Any]) -> str:
    extra = [a for a in present if a not in BUNDLE_CORE[part]]
    if not extra:
        return "'{}'::jsonb"
    return "jsonb_strip_nulls(" + jsonb_object([(f"'{a}'", f"c.{a}") for a in extra]) + ")"


def _col(attribute: str, present: dict[str, Any]) -> str:
    return f"c.{attribute}" if attribute in present else "NULL::text"


def transform_chunk(conn: psycopg.Connection[Any], chunk: Chunk, config: dict[str, Any]) -> dict[str, int]:
    run_id, file_id, file_name, columns = chunk.run_id, chunk.file_id, chunk.file_name, chunk.columns
    spec = file_spec(config, PurePosixPath(file_name).name)
    part = spec.role
    attrs = _attrs(part, columns)
    rejected_keys = f"""
        RETURNING 1),
    refused AS (
        INSERT INTO {staged("hrej", run_id)} (part, key, file_id, line_no)
        SELECT '{part}', c.key, {file_id}, c.line_no FROM checked c
        WHERE NOT c.ok AND c.key IS NOT NULL"""
    if part in TREES:
        parent = _col("parent", columns)
        checks = [required(spec, "key"), required(spec, "name")]
        if "parent" in columns:
            checks.append(
                Check(
                    "parent",
                    "parent = key",
                    "self_parent",
                    f"a {LABEL[part]} cannot be its own parent; correct the parent and rerun",
                )
            )
        insert = f"""
            INSERT INTO {staged(part, run_id)} (file_id, line_no, key, name, parent_key, attrs, row_hash)
            SELECT {file_id}, c.line_no, c.key, c.name, {parent}, {attrs},
                   {row_hash("c.key", "c.name", parent, f"({attrs})::text")}
            FROM checked c WHERE c.ok {rejected_keys}"""
    else:
        unit, position, manager = (_col(a, columns) for a in ("unit", "position", "manager"))
        first, last = _col("first_name", columns), _col("last_name", columns)
        checks = [
            required(spec, "key"),
            required(spec, "email"),
            Check(
                "email",
                f"email IS NOT NULL AND (email !~ {literal(EMAIL_RE)} OR email ~ {literal(EMAIL_BAD_DOTS)})",
                "invalid_email",
                "this is not a valid e-mail address (name@example.com); correct it and rerun",
            ),
        ]
        if "manager" in columns:
            checks.append(
                Check(
                    "manager",
                    "manager = key",
                    "self_manager",
                    "a person cannot be their own manager; correct the manager and rerun",
                )
            )
        insert = f"""
            INSERT INTO {staged("huser", run_id)} (file_id, line_no, key, email, first_name, last_name, unit_key,
                                                  position_key, manager_key, attrs, row_hash)
            SELECT {file_id}, c.line_no, c.key, c.email, {first}, {last}, {unit}, {position}, {manager}, {attrs},
                   {row_hash("c.key", "c.email", first, last, unit, position, manager, f"({attrs})::text")}
            FROM checked c WHERE c.ok {rejected_keys}"""
    return checked_insert(conn, chunk, spec, checks, insert)


# -- the sanity check -----------------------------------------------------------------------------------


def _reject(conn: psycopg.Connection[Any], run: dict[str, Any], part: str, bad: str, attribute: str, code: str) -> int:
    """Reject the staged rows ``bad`` selects as (file_id, line_no, key, value, message): a row error
    each on ``attribute``'s column, the row dropped from staging and its key remembered."""
    run_id = int(run["id"])
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
        SELECT (SELECT count(*) FROM del) AS n, (SELECT count(*) FROM errs) AS e, (SELECT count(*) FROM keys) AS k""",
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
                             FROM {table} x GROUP BY 1 HAVING count(*) > 1) d ON d.k = {k.replace("x.", "s.")}"""


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
        FROM {table} s JOIN cyc c ON c.start = s.key"""


def _missing(table: str, link: str, targets: list[str], rejected: str, part: str, label: str, fix: str) -> str:
    """Rows whose ``link`` names nothing in ``targets`` (bundle or store tables, by key)."""
    absent = " AND ".join(f"NOT EXISTS (SELECT 1 FROM {t} WHERE {k} = s.{link})" for t, k in map(str.split, targets))
    return f"""
        SELECT s.file_id, s.line_no, s.key, s.{link} AS value,
               CASE WHEN EXISTS (SELECT 1 FROM {rejected} r WHERE r.part = '{part}' AND r.key = s.{link})
                    THEN 'the {label} ' || s.{link} || ' was rejected (see its row); fix it and rerun'
                    ELSE 'no {label} has the id ' || s.{link} || ' in this bundle or in the platform; {fix}' END
                 AS message
        FROM {table} s WHERE s.{link} IS NOT NULL AND {absent}"""


def prepare(conn: psycopg.Connection[Any], run: dict[str, Any]) -> int:
    """The whole bundle's sanity check; returns how many rows it rejected."""
    run_id = int(run["id"])
    parts = config_of(run["config"]).parts
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
            WHERE u.external_id IS NOT NULL AND u.external_id <> s.key"""
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


def classify(conn: psycopg.Connection[Any], run: dict[str, Any]) -> None:
    return None  # people are matched in apply_users, once the run's new units and positions exist


# -- plan and thresholds --------------------------------------------------------------------------------


def _part_files(conn: psycopg.Connection[Any], run: dict[str, Any], part: str) -> list[dict[str, Any]]:
    """The run's files of a part (id and status)."""
    name = expected_files(run["config"]).get(part)
    files = store.fetch_all(
        conn,
        """SELECT f.id, f.original_path, rf.status FROM sync.run_files rf JOIN sync.feed_files f ON f.id = rf.file_id
           WHERE rf.run_id = %s""",
        (run["id"],),
    )
    return [f for f in files if PurePosixPath(f["original_path"]).name == name]


def _part_read(conn: psycopg.Connection[Any], run: dict[str, Any], part: str) -> bool:
    """A part may say who is gone only if its file was read whole in this run."""
    mine = [f["status"] for f in _part_files(conn, run, part)]
    return bool(mine) and all(s == "parsed" for s in mine)


def _deactivates(conn: psycopg.Connection[Any], run: dict[str, Any], part: str) -> bool:
    return config_of(run["config"]).full_feed and _part_read(conn, run, part)


def _gone(run: dict[str, Any], part: str) -> str:
    """Active records of this connection missing from the part's file (one anti-join)."""
    run_id = int(run["id"])
    if part == "user":
        table, stage_key, store_key = "lms.users", staged("huser", run_id), "external_id"
    else:
        table, stage_key, store_key = TREES[part], staged(part, run_id), "external_id"
    return f"""{table} t WHERE t.source_connection_id = %(conn)s AND t.active
               AND NOT EXISTS (SELECT 1 FROM {stage_key} s WHERE s.key = t.{store_key})
               AND NOT EXISTS (SELECT 1 FROM {staged("hrej", run_id)} r
                               WHERE r.part = '{part}' AND r.key = t.{store_key})"""


def needs_plan(run: dict[str, Any]) -> bool:
    cfg = config_of(run["config"])
    return bool(run["dry_run"] or cfg.full_feed or cfg.max_change is not None or cfg.max_deactivate is not None)


def plan(conn: psycopg.Connection[Any], run: dict[str, Any], sample: int = 5) -> dict[str, Any]:
    run_id = int(run["id"])
    parts = config_of(run["config"]).parts
    params = {"conn": run["connection_id"], "n": sample}
    result: dict[str, Any] = {}
    for part in ("org", "pos", "user"):
        if part not in parts:
            continue
        if part == "user":
            h = staged("huser", run_id)
            counts = store.fetch_one(
                conn,
                f"""SELECT count(*) FILTER (WHERE u.id IS NULL) AS creates,
                           count(*) FILTER (WHERE u.id IS NOT NULL AND (u.source_hash IS DISTINCT FROM s.row_hash
                                                                        OR NOT u.active)) AS updates
                    FROM {h} s LEFT JOIN lms.users u ON u.external_id = s.key""",
            )
            pop = store.fetch_one(
                conn, "SELECT count(*) AS n FROM lms.users WHERE source_connection_id = %(conn)s AND active", params
            )
        else:
            t, table = staged(part, run_id), TREES[part]
            counts = store.fetch_one(
                conn,
                f"""SELECT count(*) FILTER (WHERE u.id IS NULL) AS creates,
                           count(*) FILTER (WHERE u.id IS NOT NULL AND (u.source_hash IS DISTINCT FROM s.row_hash
                                                                        OR NOT u.active)) AS updates
                    FROM {t} s LEFT JOIN {table} u ON u.external_id = s.key""",
            )
            pop = store.fetch_one(
                conn, f"SELECT count(*) AS n FROM {table} WHERE source_connection_id = %(conn)s AND active", params
            )
        assert counts is not None and pop is not None
        entry: dict[str, Any] = {
            "creates": int(counts["creates"]),
            "updates": int(counts["updates"]),
            "population": int(pop["n"]),
            "deactivations": 0,
            "deactivations_sample": [],
        }
        if _deactivates(conn, run, part):
            gone = _gone(run, part)
            row = store.fetch_one(conn, f"SELECT count(*) AS n FROM {gone}", params)
            entry["deactivations"] = int(row["n"]) if row else 0
            entry["deactivations_sample"] = [
                r["external_id"]
                for r in store.fetch_all(conn, f"SELECT t.external_id FROM {gone} ORDER BY 1 LIMIT %(n)s", params)
            ]
            # Rows of this part refused before their key could be read: whoever they are about may be
            # among the deactivations.
            files = [int(f["id"]) for f in _part_files(conn, run, part)]
            entry.update(users.unreadable_rows(conn, run_id, sql.SQL(staged("hrej", run_id)), sample, files))
        result[{"org": "units", "pos": "positions", "user": "people"}[part]] = entry
    people = result.get("people", {"creates": 0, "updates": 0, "deactivations": 0, "population": 0})
    # The top-level figures are the people's, as for a users connection (feedsync run shows them).
    result.update({k: people[k] for k in ("creates", "updates", "deactivations", "population")})
    result["deactivations_sample"] = people.get("deactivations_sample", [])
    result["unreadable_rejected"] = sum(
        int(result[w].get("unreadable_rejected", 0)) for w in ("units", "positions", "people") if w in result
    )
    result["full_feed"] = config_of(run["config"]).full_feed
    return result


def exceeded_thresholds(run: dict[str, Any], p: dict[str, Any]) -> list[str]:
    cfg = config_of(run["config"])
    max_deactivate, max_change = cfg.thresholds()
    reasons = []
    for what in ("units", "positions", "people"):
        e = p.get(what)
        if e is None:
            continue
        if max_deactivate is not None and max_deactivate.exceeded(e["deactivations"], e["population"]):
            reasons.append(
                f"it would deactivate {e['deactivations']} of {e['population']} {what} "
                f"(max_deactivate = {users.limit_text(cfg)})"
            )
        reasons += users.unreadable_reason(e, what)
        changes = e["updates"] + e["deactivations"]
        if what == "people" and max_change is not None and max_change.exceeded(changes, e["population"]):
            reasons.append(f"it would change {changes} of {e['population']} people (max_change = {cfg.max_change})")
    return reasons


# -- apply ----------------------------------------------------------------------------------------------


def apply_tree(conn: psycopg.Connection[Any], run: dict[str, Any], part: str) -> dict[str, int]:
    """Units or positions: new ones inserted, then every parent link set (a parent may come later in
    the file), changed ones rewritten. Moving a unit moves its whole sub-tree with it."""
    run_id = int(run["id"])
    t, table, name = staged(part, run_id), TREES[part], {"org": "units", "pos": "positions"}[part]
    params = {"conn": run["connection_id"]}
    before = store.fetch_one(
        conn,
        f"""SELECT count(*) FILTER (WHERE u.source_hash IS DISTINCT FROM s.row_hash OR NOT u.active) AS updated,
                   count(*) FILTER (WHERE u.parent_id IS DISTINCT FROM p.id) AS moved
            FROM {t} s JOIN {table} u ON u.external_id = s.key LEFT JOIN {table} p ON p.external_id = s.parent_key""",
    )
    created = conn.execute(
        f"""INSERT INTO {table} (external_id, name, attributes, source_connection_id, source_hash)
            SELECT s.key, s.name, s.attrs, %(conn)s, s.row_hash FROM {t} s
            WHERE NOT EXISTS (SELECT 1 FROM {table} u WHERE u.external_id = s.key) ORDER BY s.key""",
        params,
    ).rowcount
    moved_ids = [
        r["id"]
        for r in store.fetch_all(
            conn,
            f"""WITH m AS (
                    SELECT u.id, s.name, s.attrs, s.row_hash, p.id AS parent_id,
                           u.parent_id IS DISTINCT FROM p.id AS moved
                    FROM {t} s JOIN {table} u ON u.external_id = s.key
                    LEFT JOIN {table} p ON p.external_id = s.parent_key
                    WHERE u.source_hash IS DISTINCT FROM s.row_hash OR NOT u.active
                       OR u.parent_id IS DISTINCT FROM p.id)
                UPDATE {table} u SET name = m.name, attributes = m.attrs, parent_id = m.parent_id, active = true,
                       deactivated_at = NULL, source_connection_id = %(conn)s, source_hash = m.row_hash,
                       updated_at = clock_timestamp()
                FROM m WHERE u.id = m.id
                RETURNING u.id, m.moved""",
            params,
        )
        if r["moved"]
    ]
    if part == "org" and moved_ids:
        # Everyone in a moved sub-tree now sits under other units: the rules look at them again.
        conn.execute(
            f"""WITH RECURSIVE sub(id) AS (
                    SELECT unnest(%(ids)s::bigint[])
                    UNION SELECT o.id FROM lms.org_units o JOIN sub ON o.parent_id = sub.id)
                INSERT INTO {staged("affected", run_id)} (user_id)
                SELECT u.id FROM lms.users u JOIN sub ON u.org_unit_id = sub.id ON CONFLICT DO NOTHING""",
            {"ids": moved_ids},
        )
    assert before is not None
    return {
        f"{name}_created": created,
        f"{name}_updated": int(before["updated"]),
        f"{name}_moved": int(before["moved"]),
    }


def apply_users(conn: psycopg.Connection[Any], run: dict[str, Any]) -> dict[str, int]:
    """People matched by id number (or, the first time, by e-mail: a person another connection
    created is taken over, not duplicated); placed in their unit and position."""
    run_id = int(run["id"])
    h, affected = staged("huser", run_id), staged("affected", run_id)
    cfg = config_of(run["config"])
    keep = "c.{c}" if cfg.empty_erases else "coalesce(c.{c}, u.{c})"
    params = {"conn": run["connection_id"]}
    conn.execute(
        f"""CREATE UNLOGGED TABLE IF NOT EXISTS {staged("hcls", run_id)} AS
            SELECT s.*, coalesce(ux.id, ue.id) AS old_id, o.id AS org_unit_id, p.id AS position_id
            FROM {h} s
            LEFT JOIN lms.users ux ON ux.external_id = s.key
            LEFT JOIN lms.users ue ON ux.id IS NULL AND ue.email_key = lower(s.email)
            LEFT JOIN lms.org_units o ON o.external_id = s.unit_key
            LEFT JOIN lms.positions p ON p.external_id = s.position_key"""
    )
    c = staged("hcls", run_id)
    # Another load may have created one of these people since they were matched (two feeds bringing
    # the same new person at once): not inserted, but matched again and updated below, as an
    # existing person is.
    created = store.fetch_one(
        conn,
        f"""WITH ins AS (
                INSERT INTO lms.users (email, external_id, first_name, last_name, attributes, org_unit_id,
                                       position_id, source_connection_id, source_hash)
                SELECT c.email, c.key, c.first_name, c.last_name, c.attrs, c.org_unit_id, c.position_id,
                       %(conn)s, c.row_hash
                FROM {c} c WHERE c.old_id IS NULL ORDER BY c.key
                ON CONFLICT DO NOTHING
                RETURNING id, external_id),
            a AS (INSERT INTO {affected} (user_id) SELECT id FROM ins ON CONFLICT DO NOTHING),
            mine AS (UPDATE {c} c SET old_id = ins.id FROM ins WHERE c.key = ins.external_id)
            SELECT count(*) AS n FROM ins""",
        params,
    )
    conn.execute(
        f"""UPDATE {c} c SET old_id = coalesce((SELECT u.id FROM lms.users u WHERE u.external_id = c.key),
                                               (SELECT u.id FROM lms.users u WHERE u.email_key = lower(c.email)))
            WHERE c.old_id IS NULL"""
    )
    updated = store.fetch_one(
        conn,
        f"""WITH upd AS (
                UPDATE lms.users u SET email = c.email, external_id = c.key,
                       first_name = {keep.format(c="first_name")}, last_name = {keep.format(c="last_name")},
                       attributes = {"c.attrs" if cfg.empty_erases else "u.attributes || c.attrs"},
                       org_unit_id = {keep.format(c="org_unit_id")}, position_id = {keep.format(c="position_id")},
                       active = true, deactivated_at = NULL, source_connection_id = %(conn)s,
                       source_hash = c.row_hash, updated_at = clock_timestamp()
                FROM {c} c
                WHERE u.id = c.old_id AND (u.source_hash IS DISTINCT FROM c.row_hash OR NOT u.active
                                           OR u.external_id IS DISTINCT FROM c.key)
                RETURNING u.id),
            a AS (INSERT INTO {affected} (user_id) SELECT id FROM upd ON CONFLICT DO NOTHING)
            SELECT count(*) AS n FROM upd""",
        params,
    )
    assert created is not None and updated is not None
    return {"created": int(created["n"]), "updated": int(updated["n"])}


def apply_managers(conn: psycopg.Connection[Any], run: dict[str, Any]) -> dict[str, int]:
    """Manager links by id number, once every person of the bundle exists. A person who changes
    manager takes their whole team with them: all of them are looked at again by the rules."""
    run_id = int(run["id"])
    h, affected = staged("huser", run_id), staged("affected", run_id)
    erase = config_of(run["config"]).empty_erases
    row = store.fetch_one(
        conn,
        f"""WITH RECURSIVE m AS (
                SELECT u.id, mg.id AS manager_id FROM {h} s
                JOIN lms.users u ON u.external_id = s.key
                LEFT JOIN lms.users mg ON mg.external_id = s.manager_key
                WHERE (s.manager_key IS NOT NULL OR %(erase)s) AND u.manager_id IS DISTINCT FROM mg.id),
            upd AS (UPDATE lms.users u SET manager_id = m.manager_id, updated_at = clock_timestamp()
                    FROM m WHERE u.id = m.id RETURNING u.id),
            team(id) AS (SELECT id FROM m UNION SELECT u.id FROM lms.users u JOIN team ON u.manager_id = team.id),
            a AS (INSERT INTO {affected} (user_id) SELECT id FROM team ON CONFLICT DO NOTHING)
            SELECT count(*) AS n FROM upd""",
        {"erase": erase},
    )
    return {"manager_moves": int(row["n"]) if row else 0}


def apply_deactivations(conn: psycopg.Connection[Any], run: dict[str, Any]) -> dict[str, int]:
    """Full feeds: what is missing is deactivated, never deleted. A deactivated unit that still has
    active people is reported on the run, not emptied."""
    run_id = int(run["id"])
    params = {"conn": run["connection_id"], "run": run_id}
    counts: dict[str, int] = {}
    for part, name in (("org", "units"), ("pos", "positions"), ("user", "deactivated")):
        key = name if part == "user" else f"{name}_deactivated"
        counts[key] = 0
        if part not in config_of(run["config"]).parts or not _deactivates(conn, run, part):
            continue
        table = "lms.users" if part == "user" else TREES[part]
        gone = _gone(run, part)
        ids = [
            r["id"]
            for r in store.fetch_all(
                conn,
                f"""UPDATE {table} u SET active = false, deactivated_at = clock_timestamp(),
                           updated_at = clock_timestamp()
                    WHERE u.id IN (SELECT t.id FROM {gone}) RETURNING u.id""",
                params,
            )
        ]
        counts[key] = len(ids)
        if part == "user" and ids:
            conn.execute(
                f"INSERT INTO {staged('affected', run_id)} (user_id) SELECT unnest(%s::bigint[]) "
                "ON CONFLICT DO NOTHING",
                (ids,),
            )
        if ids and part != "user":
            column = "org_unit_id" if part == "org" else "position_id"
            label = LABEL[part]
            conn.execute(
                f"""INSERT INTO sync.row_errors (run_id, file_id, file_name, code, message, value, rejected)
                    SELECT %(run)s, rf.file_id, f.original_path, 'deactivated_{label}_has_people',
                           'the {label} ' || t.external_id || ' (' || t.name || ') is missing from the full feed and '
                           || 'was deactivated, but ' || count(u.id) || ' active people are still in it; move them '
                           || 'to another {label} in the user file', t.external_id, false
                    FROM {table} t JOIN lms.users u ON u.{column} = t.id AND u.active
                    CROSS JOIN LATERAL (
                        SELECT rf.file_id FROM sync.run_files rf WHERE rf.run_id = %(run)s ORDER BY rf.ordinal LIMIT 1
                    ) rf
                    JOIN sync.feed_files f ON f.id = rf.file_id
                    WHERE t.id = ANY(%(ids)s)
                    GROUP BY rf.file_id, f.original_path, t.external_id, t.name""",
                {**params, "ids": ids},
            )
    return counts


def apply_rules(conn: psycopg.Connection[Any], run: dict[str, Any]) -> dict[str, int]:
    return rules.evaluate(conn, run_id=int(run["id"]), people=staged("affected", int(run["id"])))


def load_steps(conn: psycopg.Connection[Any], run: dict[str, Any], *, whole: bool, batch_rows: int) -> list[Step]:
    parts = config_of(run["config"]).parts
    steps: list[Step] = [partial(apply_tree, part=p) for p in TREES if p in parts]
    if "user" in parts:
        steps += [apply_users, apply_managers]
    steps += [apply_deactivations, apply_rules, *([finish] if whole else [])]
    return steps


def finish(conn: psycopg.Connection[Any], run: dict[str, Any]) -> dict[str, int]:
    if "user" not in config_of(run["config"]).parts:
        return {}
    row = store.fetch_one(conn, f"SELECT count(*) AS n FROM {staged('huser', int(run['id']))}")
    return {"valid": int(row["n"]) if row else 0}
