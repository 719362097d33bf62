"""Kind ``users``, a clean block in the worker: read with pyarrow, then mapped, validated and
hashed column by column, the same checks as the SQL transform (transform.py); blockwrite.py
screens it against the store and stages it with one COPY into the run's typed table in the
parse's own transaction. PostgreSQL receives typed rows
once; it still hashes them (the typed table's generated ``row_hash``), so a row hashes the same
on either path and an unchanged person stays unchanged.

A block pyarrow reads differently from the line reader (a field count that differs, bytes not in
the encoding, a record across lines) or that holds control characters is not staged here: the
caller sends it on to COPY and the SQL transform, and from there to the Python reader.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from schemas.kinds import KindConfig
from workers.connectors.arrowblock import json_string, read_block
from workers.connectors.checks import Chunk
from workers.connectors.contract import RawBlock
from workers.connectors.users.transform import (
    EMAIL_BAD_DOTS,
    EMAIL_RE,
    config_of,
    hashed_attributes,
    no_manager,
)

TYPED = [
    "file_id",
    "line_no",
    "key",
    "email",
    "first_name",
    "last_name",
    "manager_key",
    "attrs",
    "hash_src",
    "inactive",
    "manager_text",
    "deleted",
]


def _blank(values: pa.Array) -> pa.Array:
    """nullif(btrim(value), ''): spaces trimmed, an empty value NULL."""
    trimmed = pc.utf8_trim(values, characters=" ")
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _is_in(values: pa.Array, allowed: list[str]) -> pa.Array:
    return pc.fill_null(pc.is_in(values, value_set=pa.array(allowed, pa.string())), False)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A block validated, mapped and hashed, ready to be written in the chunk's transaction."""

    errors: list[tuple[Any, ...]]  # sync.row_errors rows
    kept: list[tuple[int, str]]  # (line, key) of rows refused for another reason than their e-mail
    typed: pa.Table  # the typed rows to stage (and needs_manager, for the screen)
    valid: int  # rows that passed validation, those found already in the store included
    same: pa.Table | None = None  # file_id, line_no, key of rows already in the store as they are


def prepare_block(chunk: Chunk, config: KindConfig, block: RawBlock) -> Prepared | None:
    """Validate, map and hash one block, without the database (the parse prepares the next block
    while the current one is written); None when the block is for the SQL path."""
    table = read_block(block)
    if table is None:
        return None
    cfg = config_of(config)
    present = set(cfg.imported_mapping)

    def raw(attribute: str) -> pa.Array:
        return table.column(f"c{block.positions[attribute]}").combine_chunks()

    def val(attribute: str) -> pa.Array:
        if attribute not in present:
            return pa.nulls(table.num_rows, pa.string())
        return _blank(raw(attribute))

    n = table.num_rows
    email = pc.utf8_trim(raw("email"), characters=" ")
    manager = val("manager")
    manager_text = pc.if_else(_is_in(pc.utf8_lower(manager), no_manager(cfg)), pa.scalar(None, pa.string()), manager)
    manager_raw = pc.utf8_lower(manager_text)
    state_raw = val("state")
    state_lower = pc.utf8_lower(state_raw)
    active_states, inactive_states = cfg.state_values.keys()

    no_email = pc.equal(email, "")
    bad_email = pc.and_(
        pc.invert(no_email),
        pc.or_(
            pc.or_(
                pc.invert(pc.match_substring_regex(email, EMAIL_RE)),
                pc.match_substring_regex(email, EMAIL_BAD_DOTS),
            ),
            pc.greater(pc.utf8_length(email), 254),
        ),
    )
    self_manager = pc.fill_null(pc.equal(manager_raw, pc.utf8_lower(email)), False)
    bad_state = pc.and_(
        pc.is_valid(state_raw),
        pc.and_(pc.invert(_is_in(state_lower, active_states)), pc.invert(_is_in(state_lower, inactive_states))),
    )
    inactive = _is_in(state_lower, inactive_states)
    required_extra = [a for a in cfg.required if a != "email" and a in present]
    missing = {a: pc.is_null(val(a)) for a in required_extra}
    refused = pc.or_(pc.or_(no_email, bad_email), bad_state)
    for m in missing.values():
        refused = pc.or_(refused, m)
    ok = pc.invert(refused)
    lines = pa.array(range(block.first_line, block.first_line + n), pa.int32())

    errors = _row_errors(
        chunk, cfg, lines, ok, email, manager_text, state_raw, no_email, bad_email, self_manager, bad_state, missing
    )
    # A row refused for another reason than its e-mail still names its person: they are kept.
    kept_rows = pc.and_(refused, pc.invert(pc.or_(no_email, bad_email)))
    kept = (
        list(zip(lines.filter(kept_rows).to_pylist(), pc.utf8_lower(email.filter(kept_rows)).to_pylist(), strict=True))
        if pc.any(kept_rows).as_py()
        else []
    )
    keep_manager = pc.invert(self_manager)
    attrs = (
        pc.binary_join_element_wise(
            "{",
            *[
                piece
                for i, a in enumerate(cfg.profile_attributes)
                for piece in ((", " if i else "") + json.dumps(a) + ": ", json_string(val(a)))
            ],
            "}",
            "",
        )
        if cfg.profile_attributes
        else pa.array(["{}"] * n, pa.string())
    )
    hash_src = pc.binary_join_element_wise(*[raw(a) for a in hashed_attributes(cfg)], "\x1f")
    typed = pa.table(
        {
            "file_id": pa.repeat(pa.scalar(chunk.file_id, pa.int64()), n),
            "line_no": lines,
            "key": pc.utf8_lower(email),
            "email": email,
            "first_name": val("first_name"),
            "last_name": val("last_name"),
            "manager_key": pc.if_else(keep_manager, manager_raw, pa.scalar(None, pa.string())),
            "attrs": attrs,
            "hash_src": hash_src,
            "inactive": inactive,
            "manager_text": pc.if_else(keep_manager, manager_text, pa.scalar(None, pa.string())),
            # ALM's DELETED, kept apart from SUSPENDED for the exports' userState (lms.deleted_people).
            "deleted": pc.and_(inactive, pc.fill_null(pc.equal(state_lower, "deleted"), False)),
            # The row names a manager (self included): unchanged only once that manager is linked.
            "needs_manager": pc.is_valid(manager_text),
        }
    ).filter(ok)
    return Prepared(errors, kept, typed, typed.num_rows)


def _row_errors(
    chunk: Chunk,
    cfg: Any,
    lines: pa.Array,
    ok: pa.Array,
    email: pa.Array,
    manager_text: pa.Array,
    state_raw: pa.Array,
    no_email: pa.Array,
    bad_email: pa.Array,
    self_manager: pa.Array,
    bad_state: pa.Array,
    missing: dict[str, pa.Array],
) -> list[tuple[Any, ...]]:
    """The row errors of the rows with something to report (few), as the SQL transform words them."""
    flagged = pc.or_(pc.invert(ok), self_manager)
    if not pc.any(flagged).as_py():
        return []

    def col(attr: str) -> tuple[int | None, str | None]:
        c = chunk.columns.get(attr)
        return (c["no"], c["column"]) if c else (None, None)

    def left(v: str | None) -> str | None:
        return None if v is None else v[:200]

    state_msg = (
        f"this state is not one the connection knows ({cfg.state_values.described()}); "
        "correct it, or add it to state_values, and rerun"
    )
    rows = pa.table(
        {
            "line": lines,
            "ok": ok,
            "email": email,
            "manager_text": manager_text,
            "state_raw": state_raw,
            "no_email": no_email,
            "bad_email": bad_email,
            "self_manager": self_manager,
            "bad_state": bad_state,
            **{f"miss_{a}": m for a, m in missing.items()},
        }
    ).filter(flagged)
    errors: list[tuple[Any, ...]] = []
    head = (chunk.run_id, chunk.file_id, chunk.file_name)
    for r in rows.to_pylist():
        if r["no_email"]:
            errors.append(
                (
                    *head,
                    r["line"],
                    *col("email"),
                    "required",
                    "the e-mail is empty; every user needs an e-mail address: fill it in and rerun",
                    None,
                    True,
                )
            )
        if r["bad_email"]:
            errors.append(
                (
                    *head,
                    r["line"],
                    *col("email"),
                    "invalid_email",
                    "this is not a valid e-mail address (name@example.com); correct it and rerun",
                    left(r["email"]),
                    True,
                )
            )
        if r["self_manager"] and r["ok"]:
            errors.append(
                (
                    *head,
                    r["line"],
                    *col("manager"),
                    "self_manager",
                    "a user cannot be their own manager; the user was imported without a manager change",
                    left(r["manager_text"]),
                    False,
                )
            )
        if r["bad_state"]:
            errors.append((*head, r["line"], *col("state"), "invalid_state", state_msg, left(r["state_raw"]), True))
        for a in missing:
            if r[f"miss_{a}"]:
                errors.append(
                    (
                        *head,
                        r["line"],
                        *col(a),
                        "required",
                        f"{a} is empty but required; fill it in and rerun",
                        None,
                        True,
                    )
                )
    return errors
