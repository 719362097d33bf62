"""CSV rows to xAPI statements: filters, typing by the mapping, and the statement id.

A row either passes every filter or is dropped (counted, not an error); a kept row becomes a
statement (a dict) or a ``RowProblem`` naming the CSV column at fault. Typing runs before the
validator: a ``number`` is a JSON number, a ``boolean`` a JSON boolean and a ``date`` an RFC 3339
UTC instant with milliseconds, so nothing reaches the statement as a string by accident.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas.kinds.xapi import REQUIRED_PATHS, Scalar, XapiConnection, XapiField, XapiFilter

#: The namespace of the ids feedsync derives for statements that come without one.
ID_NAMESPACE = uuid.UUID("6f2d43f4-6c55-5b0e-9a51-0c1f8e3a7d21")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
OUT_OF_RANGE = "is out of range: a date must fall between the years 1 and 9999 in UTC"


@dataclass(frozen=True)
class RowProblem:
    """Why a row is not a statement: ``column`` is the CSV column at fault (None: no single one)."""

    column: str | None
    code: str
    message: str


def derived_id(connection: str, sha256: str, line: int) -> str:
    """The id of a statement that came without one: the same file imported again gives the same ids."""
    return derived_ids(connection, sha256, range(line, line + 1))[0]


def derived_ids(connection: str, sha256: str, lines: range) -> list[str]:
    """``derived_id`` of each line, five times faster: the UUIDv5 (RFC 4122: SHA-1 of the
    namespace and the name, version and variant bits set) without a UUID object per line."""
    prefix = ID_NAMESPACE.bytes + f"{connection}\n{sha256}\n".encode()
    ids = []
    for line in lines:
        n = int.from_bytes(hashlib.sha1(prefix + b"%d" % line, usedforsecurity=False).digest()[:16], "big")
        h = "%032x" % (n & _CLEAR | _V5)
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids


_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_V5 = (5 << 76) | (0x8000 << 48)


# -- filters -----------------------------------------------------------------------------------------


def passes(filters: list[XapiFilter], row: dict[str, str]) -> bool:
    return all(_holds(f, row.get(f.column, "")) for f in filters)


def _holds(f: XapiFilter, cell: str) -> bool:
    if f.op == "empty":
        return cell == ""
    if f.op == "not_empty":
        return cell != ""
    if f.op == "in":
        assert isinstance(f.value, list)
        return any(_compare(cell, v) == 0 for v in f.value)
    assert f.value is not None and not isinstance(f.value, list)
    if f.op == "contains":
        return _text(f.value) in cell
    if cell == "" and f.op in ("gt", "gte", "lt", "lte"):
        return False  # an empty cell is no number, date or text to compare: use empty / not_empty
    order = _compare(cell, f.value)
    return {
        "eq": order == 0,
        "ne": order != 0,
        "gt": order > 0,
        "gte": order >= 0,
        "lt": order < 0,
        "lte": order <= 0,
    }[f.op]


def _text(value: Scalar) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _compare(cell: str, value: Scalar) -> int:
    """Numbers as numbers, dates as instants, anything else as text."""
    text = _text(value)
    if _NUMBER.match(cell) and _NUMBER.match(text):
        a, b = float(cell), float(text)
        return (a > b) - (a < b)
    da, db = instant(cell), instant(text)
    if da is not None and db is not None:
        return (da > db) - (da < db)
    return (cell > text) - (cell < text)


# -- typing ------------------------------------------------------------------------------------------


def instant(text: str) -> datetime | None:
    """An ISO 8601 date or date-time, or M/D/YYYY [H:MM[:SS]]; without a zone it is UTC. None also
    for a time that exists in its own zone but not in UTC (``out_of_range`` tells those apart)."""
    local = _local(text)
    if local is None:
        return None
    try:
        return local.replace(tzinfo=UTC) if local.tzinfo is None else local.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:30+01:00 is in year 0 in UTC, which datetime cannot hold
        return None


def out_of_range(text: str) -> bool:
    """Whether ``text`` is a date-time that reads, but falls before year 1 or after 9999 in UTC."""
    return _local(text) is not None and instant(text) is None


def _local(text: str) -> datetime | None:
    m = _US_DATE.match(text)
    try:
        if m:
            month, day, year, hour, minute, second = m.groups()
            return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
        if len(text) >= 10 and text[4] == "-":
            return datetime.fromisoformat(text)
    except ValueError:
        pass
    return None


def rfc3339(dt: datetime) -> str:
    """A UTC instant as RFC 3339 with milliseconds: 2026-11-01T10:03:41.863Z."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def typed(path: str, field: XapiField, cell: str) -> Any:
    """The cell as its JSON value; ValueError (code, message) when it is not of the field's type."""
    if field.type == "number":
        if not _NUMBER.match(cell):
            raise ValueError("invalid_number", f"'{field.column}' must be a number (e.g. 0.85) for {path}")
        number = float(cell)
        if not math.isfinite(number):  # 1e400: JSON has no Infinity, and PostgreSQL refuses it
            raise ValueError("invalid_number", f"'{field.column}' is too large a number for {path}")
        return int(number) if number.is_integer() and not re.search(r"[.eE]", cell) else number
    if field.type == "boolean":
        word = cell.lower()
        if word not in _TRUE | _FALSE:
            raise ValueError("invalid_boolean", f"'{field.column}' must be true/false, 1/0 or yes/no for {path}")
        return word in _TRUE
    if field.type == "date":
        dt = instant(cell)
        if dt is None and out_of_range(cell):
            raise ValueError("invalid_date", f"'{field.column}' {OUT_OF_RANGE} for {path}")
        if dt is None:
            raise ValueError(
                "invalid_date", f"'{field.column}' must be a date (YYYY-MM-DDTHH:MM:SSZ or M/D/YYYY) for {path}"
            )
        return rfc3339(dt)
    if path == "actor.mbox" and not cell.lower().startswith("mailto:"):
        return "mailto:" + cell
    return cell


def _required(path: str) -> bool:
    return path in REQUIRED_PATHS or path == "actor.mbox"


#: One mapped path: (path, its keys, its field, whether a statement needs it).
Plan = list[tuple[str, list[str], XapiField, bool]]


def plan_of(cfg: XapiConnection) -> Plan:
    """The mapping taken apart once (per chunk), not once per row."""
    return [(path, path.split("."), field, _required(path)) for path, field in cfg.xapi.items()]


def from_mapping(cfg: XapiConnection, row: dict[str, str], plan: Plan | None = None) -> dict[str, Any] | RowProblem:
    """The statement the mapping makes of a row (without its id when the mapping has none)."""
    statement: dict[str, Any] = {}
    for path, keys, field, required in plan if plan is not None else plan_of(cfg):
        if field.column is None:
            value: Any = field.value
        else:
            cell = row.get(field.column, "")
            if cell == "":
                if required:
                    return RowProblem(field.column, "required", f"'{field.column}' is empty; {path} needs a value")
                continue  # an empty cell leaves the property out
            if field.type == "string" and path != "actor.mbox":
                value = cell
            else:
                try:
                    value = typed(path, field, cell)
                except ValueError as exc:
                    code, message = exc.args
                    return RowProblem(field.column, code, message)
        _put(statement, keys, value)
    return statement


def _put(target: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    for k in keys:
        if keys.count(k) > 1:
            raise _DuplicateKey(k)
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are Python's, not JSON's: PostgreSQL refuses them


class _Unrepresentable(ValueError):
    pass


def _json_float(text: str) -> float:
    """A JSON number with a fraction or exponent, refused when a double cannot carry it: 1e400 is
    Infinity, 1e-400 reads as 0, and far enough out (0e-20000) PostgreSQL's numeric refuses it."""
    mantissa, _, exponent = text.lower().partition("e")
    if len(text) > _MAX_FLOAT_CHARS or len(exponent.lstrip("+-")) > 3:
        raise _Unrepresentable(text)
    value = float(text)
    if not math.isfinite(value) or (value == 0 and any(c in "123456789" for c in mantissa)):
        raise _Unrepresentable(text)
    return value


def _json_int(text: str) -> int:
    """A JSON number without fraction or exponent, refused as a float is beyond a double's range:
    9 written 400 times is no smaller than 1e400, and past 4,300 digits Python will not read it."""
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise _Unrepresentable(text)
    value = int(text)
    if abs(value) > sys.float_info.max:
        raise _Unrepresentable(text)
    return value


#: The largest double, 1.8e308, has 309 digits.
_MAX_INT_DIGITS = 309
#: A double's shortest form has 17 digits; 1e-308 written out in full takes 310 characters.
_MAX_FLOAT_CHARS = 330


def from_column(column: str, cell: str) -> dict[str, Any] | RowProblem:
    """A whole statement from one cell (ALM's xAPI report): JSON, an object, each property once,
    and nothing PostgreSQL's json and jsonb refuse or Python cannot walk (``_unsound``)."""
    if cell == "":
        return RowProblem(column, "required", f"'{column}' is empty; each row must hold a statement as JSON")
    try:
        statement = json.loads(
            cell,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=_json_float,
            parse_int=_json_int,
        )
    except _DuplicateKey as exc:
        return RowProblem(column, "invalid_statement", f"'{column}': property {exc.args[0]!r} appears twice")
    except _Unrepresentable:
        return RowProblem(column, "invalid_json", f"'{column}' {_BEYOND_DOUBLE}")
    except RecursionError:  # the C decoder recurses per level: thousands of them exhaust the stack
        return RowProblem(column, "invalid_json", f"'{column}' {_TOO_DEEP}")
    except ValueError:
        return RowProblem(column, "invalid_json", f"'{column}' is not valid JSON; export the statement again")
    if not isinstance(statement, dict):
        return RowProblem(column, "invalid_json", f"'{column}' must hold a JSON object (one statement)")
    found = _unsound(statement)
    if found is not None:
        code, reason = found
        return RowProblem(column, code, f"'{column}' {reason}")
    return statement


#: Levels of objects and arrays a statement may nest: the validator and PostgreSQL's JSON parsers
#: recurse per level; a real statement (a sub-statement's context extensions) needs far fewer.
MAX_DEPTH = 100
_TOO_DEEP = f"nests objects and arrays more than {MAX_DEPTH} levels deep; flatten it and export the statement again"
#: NUL, which jsonb cannot hold, and lone UTF-16 surrogates (\ud800), which are no characters.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unsound(statement: dict[str, Any]) -> tuple[str, str] | None:
    """(code, reason) for a statement PostgreSQL would refuse at load (a NUL, a lone surrogate) or
    the validator could not walk (too deep); None when it is sound.
    Iterative, so the check itself never runs out of stack."""
    todo: list[tuple[Any, str, int]] = [(statement, "", 1)]
    while todo:
        value, path, depth = todo.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                return "invalid_json", _TOO_DEEP
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and _UNSTORABLE.search(key):
                    return "invalid_statement", f"{_at(path)}has a property name that {_UNSTORABLE_TEXT}"
                todo.append((item, f"{path}.{key}" if path else str(key), depth + 1))
        elif isinstance(value, str) and _UNSTORABLE.search(value):
            return "invalid_statement", f"{_at(path)}{_UNSTORABLE_TEXT}"
    return None


_BEYOND_DOUBLE = "holds a number beyond what a double can carry (about 1e-308 to 1e308); correct it and export again"
_UNSTORABLE_TEXT = (
    "holds a NUL character (\\u0000) or a lone surrogate (\\ud800 to \\udfff), which cannot be stored; "
    "remove it and export the statement again"
)


def _at(path: str) -> str:
    return f"at {path} " if path else ""


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def serialized(statement: Any) -> str:
    """JSON text, compact, as stored (a statement, or one value of it)."""
    return _ENCODER.encode(statement)


def column_of(cfg: XapiConnection, path: str) -> str | None:
    """The CSV column behind a JSON path (or the nearest mapped path above or below it)."""
    if cfg.statement_column:
        return cfg.statement_column
    for mapped, field in cfg.xapi.items():
        if field.column and (mapped == path or mapped.startswith(path + ".") or path.startswith(mapped + ".")):
            return field.column
    return None
