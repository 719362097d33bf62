"""Kind ``hierarchy``, per file and chunk: which file of the bundle a name is, the run's staging,
and mapping and validation in SQL."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import psycopg
from psycopg import sql

from schemas.kinds import HierarchyConnection, KindConfig, config_as
from schemas.kinds.hierarchy import BUNDLE_CORE
from schemas.kinds.users import DONT_IMPORT
from schemas.providers import FileNameProblem, FileSpec
from workers.connectors.checks import Check, Chunk, checked_insert, jsonb_object, required, row_hash
from workers.connectors.people_filters import create_filtered
from workers.connectors.users import EMAIL_RE, bad_email
from workers.staging import stage_table

TREES = {"org": "lms.org_units", "pos": "lms.positions"}
LABEL = {"org": "unit", "pos": "position", "user": "person"}


def config_of(config: KindConfig) -> HierarchyConnection:
    return config_as(HierarchyConnection, config)


def file_spec(config: KindConfig, file_name: str) -> FileSpec:
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


def expected_files(config: KindConfig) -> dict[str, str] | None:
    """part -> file name, for the parts the connection syncs."""
    return config_of(config).expected_files()


def store_table(part: str) -> sql.Identifier:
    """The table of the store a part is applied to (people: lms.users)."""
    return sql.Identifier(*(TREES.get(part) or "lms.users").split("."))


def create_staging(conn: psycopg.Connection[Any], run_id: int, config: KindConfig) -> None:
    for part in TREES:
        conn.execute(
            sql.SQL(
                """CREATE UNLOGGED TABLE IF NOT EXISTS {} (
                     file_id bigint NOT NULL, line_no int NOT NULL, key text NOT NULL, name text NOT NULL,
                     parent_key text, attrs jsonb NOT NULL, row_hash text NOT NULL)"""
            ).format(stage_table(part, run_id))
        )
    conn.execute(
        sql.SQL(
            """CREATE UNLOGGED TABLE IF NOT EXISTS {} (
                 file_id bigint NOT NULL, line_no int NOT NULL, key text NOT NULL, email text NOT NULL,
                 first_name text, last_name text, unit_key text, position_key text, manager_key text,
                 attrs jsonb NOT NULL, row_hash text NOT NULL)"""
        ).format(stage_table("huser", run_id))
    )
    # Keys seen in rejected rows, with their rows (never deactivated: being refused is not being
    # gone; a rejected row not here is one whose key could not be read), and the people the run
    # changed (the group rules are evaluated for them only).
    conn.execute(
        sql.SQL(
            """CREATE UNLOGGED TABLE IF NOT EXISTS {} (
                 part text NOT NULL, key text NOT NULL, file_id bigint, line_no int)"""
        ).format(stage_table("hrej", run_id))
    )
    conn.execute(
        sql.SQL("CREATE UNLOGGED TABLE IF NOT EXISTS {} (user_id bigint PRIMARY KEY)").format(
            stage_table("affected", run_id)
        )
    )
    # The people the connection's filters leave out (hierarchy/filters.py), by id number.
    create_filtered(conn, run_id)


# -- transform ------------------------------------------------------------------------------------------


def _attrs(part: str, present: dict[str, Any]) -> sql.Composable:
    """SQL for the row's other attributes as jsonb (names are the mapping's attribute names)."""
    extra = [a for a in present if a not in BUNDLE_CORE[part]]
    if not extra:
        return sql.SQL("'{}'::jsonb")
    pairs: list[tuple[sql.Composable, sql.Composable]] = [(sql.Literal(a), _col(a, present)) for a in extra]
    return sql.SQL("jsonb_strip_nulls({})").format(jsonb_object(pairs))


def _col(attribute: str, present: dict[str, Any]) -> sql.Composable:
    return sql.SQL("c.{}").format(sql.Identifier(attribute)) if attribute in present else sql.SQL("NULL::text")


def _as_text(attrs: sql.Composable) -> sql.Composed:
    return sql.SQL("({})::text").format(attrs)


def transform_chunk(conn: psycopg.Connection[Any], chunk: Chunk, config: KindConfig) -> dict[str, int]:
    run_id, file_id, file_name, columns = chunk.run_id, chunk.file_id, chunk.file_name, chunk.columns
    spec = file_spec(config, PurePosixPath(file_name).name)
    part = spec.role
    attrs = _attrs(part, columns)
    rejected_keys = sql.SQL(
        """
        RETURNING 1),
    refused AS (
        INSERT INTO {rejected} (part, key, file_id, line_no)
        SELECT {part}, c.key, {file_id}, c.line_no FROM checked c
        WHERE NOT c.ok AND c.key IS NOT NULL"""
    ).format(rejected=stage_table("hrej", run_id), part=sql.Literal(part), file_id=sql.Literal(file_id))
    if part in TREES:
        parent = _col("parent", columns)
        checks = [required(spec, "key"), required(spec, "name")]
        if "parent" in columns:
            checks.append(
                Check(
                    "parent",
                    sql.SQL("parent = key"),
                    "self_parent",
                    f"a {LABEL[part]} cannot be its own parent; correct the parent and rerun",
                )
            )
        insert = sql.SQL(
            """
            INSERT INTO {table} (file_id, line_no, key, name, parent_key, attrs, row_hash)
            SELECT {file_id}, c.line_no, c.key, c.name, {parent}, {attrs}, {row_hash}
            FROM checked c WHERE c.ok {rejected_keys}"""
        ).format(
            table=stage_table(part, run_id),
            file_id=sql.Literal(file_id),
            parent=parent,
            attrs=attrs,
            row_hash=row_hash(sql.SQL("c.key"), sql.SQL("c.name"), parent, _as_text(attrs)),
            rejected_keys=rejected_keys,
        )
    else:
        unit, position, manager = (_col(a, columns) for a in ("unit", "position", "manager"))
        first, last = _col("first_name", columns), _col("last_name", columns)
        checks = [
            required(spec, "key"),
            required(spec, "email"),
            Check(
                "email",
                sql.SQL("email IS NOT NULL AND {}").format(bad_email(sql.SQL("email"), "email_re")),
                "invalid_email",
                "this is not a valid e-mail address (name@example.com); correct it and rerun",
                params={"email_re": EMAIL_RE},
            ),
        ]
        if "manager" in columns:
            checks.append(
                Check(
                    "manager",
                    sql.SQL("manager = key"),
                    "self_manager",
                    "a person cannot be their own manager; correct the manager and rerun",
                )
            )
        insert = sql.SQL(
            """
            INSERT INTO {table} (file_id, line_no, key, email, first_name, last_name, unit_key,
                                 position_key, manager_key, attrs, row_hash)
            SELECT {file_id}, c.line_no, c.key, c.email, {values}, {attrs}, {row_hash}
            FROM checked c WHERE c.ok {rejected_keys}"""
        ).format(
            table=stage_table("huser", run_id),
            file_id=sql.Literal(file_id),
            values=sql.SQL(", ").join((first, last, unit, position, manager)),
            attrs=attrs,
            row_hash=row_hash(
                sql.SQL("c.key"), sql.SQL("c.email"), first, last, unit, position, manager, _as_text(attrs)
            ),
            rejected_keys=rejected_keys,
        )
    return checked_insert(conn, chunk, spec, checks, insert)
