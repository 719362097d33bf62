"""Kind ``xapi``, a clean block in the worker: a mapped file's statements built column by column
with pyarrow and staged by one COPY in the parse's transaction (the chunk then has no transform).

A mapped file repeats the same learners, verbs, activities and scores on every row, so each
column is dictionary-encoded and each distinct value is typed and checked once, by the very
functions the row-by-row transform uses (``statements.typed``, ``fastpath.leaf_check``); the
statement's JSON text is then joined from the columns' JSON fragments, in the key order the row
path writes. Timestamps, the one column that seldom repeats, take a vector check for the common
``YYYY-MM-DDTHH:MM:SSZ`` form.

A row the fast checks do not say yes to (a bad value, an empty required cell, a date in another
form) is made by the row path (``transform.statement_of``: ralph judges it, and a bad row gets
the same error either way); a mapping of a path outside the fast shapes, a ``statement_column``
file, or a block pyarrow reads differently from the line reader is left to COPY and the row path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from schemas.kinds import KindConfig, config_as
from schemas.kinds.xapi import XapiConnection, XapiField, XapiFilter
from schemas.settings import get_settings
from workers import store
from workers.connectors.arrowblock import copy_csv, read_block
from workers.connectors.checks import Chunk
from workers.connectors.contract import RawBlock
from workers.connectors.xapi.fastpath import FastCheck, leaf_check
from workers.connectors.xapi.statements import (
    Plan,
    RowProblem,
    derived_ids,
    passes,
    plan_of,
    serialized,
    typed,
)
from workers.connectors.xapi.transform import STAGE_COLUMNS, attributes, row_errors, stage, staged_row, statement_of
from workers.staging import stage_table

#: Rows built at a time within a block (see prepare_block).
_SLICE_ROWS = 10_000
_SECONDS_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
_NO_TEXT = pa.scalar(None, pa.string())


@dataclass(frozen=True, slots=True)
class Prepared:
    """A block's statements, ready to be staged in the chunk's transaction."""

    cfg: XapiConnection
    fast: pa.Table  # STAGE_COLUMNS: the statements made here, and the filtered rows (kept false)
    slow: list[tuple[Any, ...]]  # STAGE_COLUMNS: the statements the row path made
    errors: list[tuple[int, str | None, str, str, str | None]]  # the row path's row errors
    valid: int
    filtered: int


@dataclass(frozen=True, slots=True)
class _Column:
    """One mapped column, checked: per row its JSON fragment (None: the property is left out),
    its value as text (for the indexed columns), and whether the fast checks said yes."""

    fragment: pa.Array
    text: pa.Array
    ok: pa.Array


def fast_shape(cfg: XapiConnection) -> bool:
    """Whether every mapped path is one the fast checks decide (and the actor is an mbox)."""
    return (
        not cfg.statement_column and "actor.mbox" in cfg.xapi and all(leaf_check(path) is not None for path in cfg.xapi)
    )


def _sha256(file_id: int) -> str:
    """The file's content hash, for derived ids: a query per block (not cached: ids of a truncated
    test store come back)."""
    with store.connect() as conn:
        row = store.fetch_one(conn, "SELECT sha256 FROM sync.feed_files WHERE id = %s", (file_id,))
    assert row is not None
    return str(row["sha256"])


def prepare_block(chunk: Chunk, config: KindConfig, block: RawBlock) -> Prepared | None:
    """The block's statements, or None when the block is for COPY and the row path. Built a slice
    at a time: a statement's JSON is joined from a dozen intermediate columns, and a slice's keep
    the worker's memory small whatever the chunk size."""
    cfg = config_as(XapiConnection, config)
    if not get_settings().xapi_fast_path or not fast_shape(cfg):
        return None
    plan = plan_of(cfg)
    constants: dict[str, tuple[str, Any]] = {}
    for path, _keys, field, _required in plan:
        if field.column is None:
            if not _leaf(path)(field.value):
                return None  # every row breaks the same rule: the row path says which
            constants[path] = (serialized(field.value), field.value)
    table = read_block(block)
    if table is None:
        return None
    sha = _sha256(chunk.file_id)
    memo: dict[str, dict[str, Any]] = {path: {} for path in cfg.xapi}
    parts = [
        _prepare_slice(chunk, cfg, sha, plan, constants, memo, table.slice(start, _SLICE_ROWS), block, start)
        for start in range(0, table.num_rows, _SLICE_ROWS)
    ]
    return Prepared(
        cfg,
        pa.concat_tables([p.fast for p in parts]),
        [row for p in parts for row in p.slow],
        [error for p in parts for error in p.errors],
        sum(p.valid for p in parts),
        sum(p.filtered for p in parts),
    )


def _prepare_slice(
    chunk: Chunk,
    cfg: XapiConnection,
    sha: str,
    plan: Plan,
    constants: dict[str, tuple[str, Any]],
    memo: dict[str, dict[str, Any]],
    table: pa.Table,
    block: RawBlock,
    start: int,
) -> Prepared:
    n = table.num_rows
    cells = {
        column: pc.utf8_trim_whitespace(table.column(f"c{block.positions[a]}").combine_chunks())
        for a, column in attributes(cfg).items()
    }
    first = block.first_line + start
    lines = pa.array(range(first, first + n), pa.int32())
    kept = pa.repeat(pa.scalar(True), n)
    for f in cfg.filters:
        kept = pc.and_(kept, _per_value(cells[f.column], _filter(f), (pa.bool_(),))[0])
    columns = {
        # An empty id cell: the row path gives the row a derived id, first in the statement.
        path: _checked(path, field, required or path == "id", _leaf(path), cells[field.column], memo[path])
        for path, _keys, field, required in plan
        if field.column is not None
    }
    ok = kept
    for c in columns.values():
        ok = pc.and_(ok, c.ok)
    for lead in _order_keepers(plan):
        if lead in columns:
            ok = pc.and_(ok, pc.is_valid(columns[lead].fragment))
    slow_rows = pc.and_(kept, pc.invert(ok))
    fast = _fast_rows(chunk, cfg, sha, plan, lines, kept, ok, columns, constants)
    slow, errors = _row_path(chunk, cfg, sha, plan, lines, cells, slow_rows)
    return Prepared(cfg, fast, slow, errors, _count(ok) + len(slow), n - _count(kept))


def _order_keepers(plan: Plan) -> list[str]:
    """The row path puts an object where its first present value is; here it goes where the mapping
    first names it. They agree for an object whose paths are one run in the mapping (no sibling's
    in between), and for any object whose first path has a value. So a row that leaves out the
    first path of an object mapped in pieces is made by the row path: these are those first paths."""
    index = {path: i for i, (path, *_rest) in enumerate(plan)}
    objects: dict[tuple[str, ...], list[int]] = {}
    for path, keys, _field, _required in plan:
        for depth in range(1, len(keys)):
            objects.setdefault(tuple(keys[:depth]), []).append(index[path])
    return [plan[spots[0]][0] for spots in objects.values() if spots[-1] - spots[0] + 1 != len(spots)]


def _leaf(path: str) -> Callable[[Any], bool]:
    check = leaf_check(path)
    assert check is not None  # fast_shape said every mapped path has one
    return check


def _count(mask: pa.Array) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


def screen_block(conn: psycopg.Connection[Any], chunk: Chunk, config: KindConfig, prepared: Prepared) -> Prepared:
    return prepared  # duplicate and stored ids are judged in the load, file by file


def write_block(conn: psycopg.Connection[Any], chunk: Chunk, prepared: Prepared) -> dict[str, int]:
    if prepared.fast.num_rows:
        copy_csv(conn, stage_table("xapi", chunk.run_id), prepared.fast)
    # pyarrow's allocator keeps what a block freed: given back, the worker's memory stays flat.
    pa.default_memory_pool().release_unused()
    stage(conn, chunk, prepared.slow)
    row_errors(conn, chunk, prepared.cfg, prepared.errors)
    return {"valid": prepared.valid, "rejected": len(prepared.errors), "warnings": 0, "filtered": prepared.filtered}


def _filter(f: XapiFilter) -> Callable[[str], tuple[bool]]:
    return lambda cell: (passes([f], {f.column: cell}),)


def _per_value(
    values: pa.Array, fn: Callable[[str], tuple[Any, ...]], types: tuple[pa.DataType, ...]
) -> list[pa.Array]:
    """fn of each distinct value (once), spread back over the rows; a null row gives nulls."""
    encoded = pc.dictionary_encode(values)
    results = [fn(v) for v in encoded.dictionary.to_pylist()]
    return [
        pa.array([r[i] for r in results], t).take(encoded.indices) if results else pa.nulls(len(values), t)
        for i, t in enumerate(types)
    ]


def _checked(path: str, field: XapiField, required: bool, check: Any, cells: pa.Array, memo: dict[str, Any]) -> _Column:
    """``memo``: this path's verdicts for the block so far (its slices share their values)."""

    def one(cell: str) -> tuple[str | None, str | None, bool]:
        found = memo.get(cell)
        if found is None:
            found = memo[cell] = judged(cell)
        return found

    def judged(cell: str) -> tuple[str | None, str | None, bool]:
        if cell == "":
            return None, None, not required  # left out, or the row path says it is required
        try:
            value = typed(path, field, cell)
        except ValueError:
            return None, None, False
        if not check(value):
            return None, None, False
        return serialized(value), value if isinstance(value, str) else None, True

    types = (pa.string(), pa.string(), pa.bool_())
    if not (field.type == "date" and path == "timestamp"):
        fragment, text, ok = _per_value(cells, one, types)
        return _Column(fragment, text, ok)
    # Timestamps seldom repeat: the usual form is checked here, by the rules Python's parser keeps
    # (an instant is what the timestamp's check asks for; a date at any other path is judged above).
    seconds = pc.utf8_slice_codeunits(cells, 0, 19)
    # strptime rolls 30 February over into March: a date is real when it prints back as written;
    # and it reads year 0, which Python's datetime has not.
    parsed = pc.strptime(cells, format="%Y-%m-%dT%H:%M:%SZ", unit="s", error_is_null=True)
    usual = pc.fill_null(
        pc.and_(
            pc.and_(
                pc.match_substring_regex(cells, _SECONDS_UTC),
                pc.equal(pc.strftime(parsed, format="%Y-%m-%dT%H:%M:%S"), seconds),
            ),
            pc.greater_equal(pc.year(parsed), 1),
        ),
        False,
    )
    text = pc.binary_join_element_wise(seconds, ".000Z", "")
    rest = pc.if_else(usual, _NO_TEXT, cells)
    fragment_r, text_r, ok_r = _per_value(rest, one, types)
    return _Column(
        pc.if_else(usual, pc.binary_join_element_wise('"', text, '"', ""), fragment_r),
        pc.if_else(usual, text, text_r),
        pc.if_else(usual, True, pc.fill_null(ok_r, False)),
    )


def _fast_rows(
    chunk: Chunk,
    cfg: XapiConnection,
    sha: str,
    plan: Plan,
    lines: pa.Array,
    kept: pa.Array,
    ok: pa.Array,
    columns: dict[str, _Column],
    constants: dict[str, tuple[str, Any]],
) -> pa.Table:
    """The statements the fast checks said yes to, and the filtered rows, as staged rows."""
    take = pc.or_(ok, pc.invert(kept))
    lines = lines.filter(take)
    kept = kept.filter(take)
    n = len(lines)
    fragments = {p: c.fragment.filter(take) for p, c in columns.items()}
    derived = "id" not in columns and "id" not in constants
    # Only a statement without a mapped id takes a derived one (a filtered row's is never read).
    ids = pa.array(_ids(cfg.name, sha, lines.to_pylist()) if derived else [None] * n, pa.string())
    tree: dict[str, Any] = {}
    for path, keys, _field, _required in plan:
        node = tree
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = path
    if "id" not in tree:
        tree = {"id": None, **tree}  # the row path puts a derived id first

    def fragment_of(node: Any) -> Any:
        if node is None:
            return pc.binary_join_element_wise('"', ids, '"', "")
        if isinstance(node, str):
            return constants[node][0] if node in constants else fragments[node]
        # Each member present as ',"key":value', else ''; joined, less the first comma. (Not
        # null_handling="skip": on rows where every member is null it returns an empty array.)
        members = [
            pc.fill_null(pc.binary_join_element_wise("," + serialized(key) + ":", fragment_of(child), ""), "")
            for key, child in node.items()
        ]
        inner = pc.utf8_slice_codeunits(pc.binary_join_element_wise(*members, ""), 1)
        return pc.if_else(pc.equal(inner, ""), _NO_TEXT, pc.binary_join_element_wise("{", inner, "}", ""))

    def text_of(path: str) -> Any:
        if path in constants:
            value = constants[path][1]
            return pa.repeat(pa.scalar(value if isinstance(value, str) else None, pa.string()), n)
        if path in columns:
            return columns[path].text.filter(take)
        return pa.nulls(n, pa.string())

    statement = fragment_of(tree)
    mbox = text_of("actor.mbox")
    none = pa.nulls(n, pa.string())
    staged = {
        "file_id": pa.repeat(pa.scalar(chunk.file_id, pa.int64()), n),
        "line_no": lines,
        "kept": kept,
        "id": pc.if_else(kept, ids if derived else text_of("id"), _NO_TEXT),
        "actor_email": pc.if_else(kept, pc.utf8_slice_codeunits(mbox, 7), _NO_TEXT),
        "verb_id": pc.if_else(kept, text_of("verb.id"), _NO_TEXT),
        "object_id": pc.if_else(kept, text_of("object.id"), _NO_TEXT),
        "ts": pc.if_else(kept, text_of("timestamp"), _NO_TEXT),
        "statement": pc.if_else(kept, statement, _NO_TEXT),
        "voids": none,  # a voiding statement's object is a StatementRef: never of the fast shapes
    }
    assert list(staged) == list(STAGE_COLUMNS)
    return pa.table(staged)


def _ids(connection: str, sha: str, lines: list[int]) -> list[str]:
    """derived ids of the lines, which run consecutively but for the row path's gaps."""
    if lines and lines[-1] - lines[0] + 1 == len(lines):
        return derived_ids(connection, sha, range(lines[0], lines[-1] + 1))
    wanted = set(lines)
    every = range(lines[0], lines[-1] + 1) if lines else range(0)
    return [i for line, i in zip(every, derived_ids(connection, sha, every), strict=True) if line in wanted]


def _row_path(
    chunk: Chunk,
    cfg: XapiConnection,
    sha: str,
    plan: Plan,
    lines: pa.Array,
    cells: dict[str, pa.Array],
    rows: pa.Array,
) -> tuple[list[tuple[Any, ...]], list[tuple[int, str | None, str, str, str | None]]]:
    """The rows the fast checks did not say yes to, made one by one as the row path makes them."""
    if not pc.any(rows).as_py():
        return [], []
    names = list(cells)
    picked = pa.table({"line": lines, **cells}).filter(rows).to_pylist()
    fast = FastCheck()
    staged: list[tuple[Any, ...]] = []
    errors: list[tuple[int, str | None, str, str, str | None]] = []
    for r in picked:
        row = {name: r[name] for name in names}
        made = statement_of(cfg, row, sha, r["line"], fast, plan)
        if isinstance(made, RowProblem):
            errors.append((r["line"], made.column, made.code, made.message, row.get(made.column or "")))
        else:
            staged.append(staged_row(chunk.file_id, r["line"], *made))
    return staged, errors
