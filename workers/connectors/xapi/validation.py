"""xAPI 1.0.3 statement validation: a strict JSON-type pass, then ralph's statement models.

ralph (``ralph-malph``) enforces the spec's structure: required actor, verb and object; exactly one
identifier per agent, ``mbox`` as ``mailto:``; IRIs with a scheme; UUIDs; score bounds; version
1.0.x; no empty strings or unknown properties; revision and platform only for an Activity object.
It is lax where pydantic is lax, so a strict pass runs first for what it lets through: a number
or a boolean given as a string, a ``null``, and language tags written with ``_`` (``en_US``).

``problem`` returns the first specific reason (a JSON path and a sentence) or None: ralph reports
a bad agent once per branch of its unions (twenty errors or more), which helps nobody fixing a row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import langcodes
from pydantic import ValidationError

#: Properties that are JSON numbers, and JSON booleans, wherever a result appears.
_SCORE_NUMBERS = ("scaled", "raw", "min", "max")
_RESULT_BOOLEANS = ("success", "completion")
_LANGUAGE_MAPS = frozenset({"display", "name", "description"})
#: Errors of a union branch that say only "this is not that branch".
_BRANCH_NOISE = frozenset(
    {"missing", "extra_forbidden", "literal_error", "uuid_parsing", "model_type", "dict_type", "string_type"}
)
_IFI = "an agent or identified group needs exactly one identifier: mbox, mbox_sha1sum, openid or account"


def problem(statement: dict[str, Any]) -> tuple[str, str] | None:
    """(JSON path, reason) of the first rule the statement breaks, or None when it is valid."""
    # Imported when first used: ralph's models cost half a second in every process that lists the kinds.
    from ralph.models.xapi.base.statements import BaseXapiStatement

    found = next(_strict(statement, ()), None)
    if found is not None:
        return found
    # The authority is the source LRS's own record of who sent the statement; it is kept as given.
    body = {k: v for k, v in statement.items() if k != "authority"}
    try:
        BaseXapiStatement.model_validate(body)
    except ValidationError as exc:
        return _first(exc, body)
    return None


def _path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not _is_branch(p)]
    return ".".join(parts) or "statement"


def _is_branch(part: Any) -> bool:
    return isinstance(part, str) and (part[:1].isupper() or "[" in part)


def _strict(value: Any, loc: tuple[Any, ...]) -> Iterator[tuple[str, str]]:
    if "extensions" in loc:
        return  # an LRS must not reject a statement for the values of its extensions
    if value is None:
        yield _path(loc), "null is not allowed: leave the property out"
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strict(item, (*loc, i))
        return
    if not isinstance(value, dict):
        return
    yield from _object_problems(value, loc)
    for k, v in value.items():
        yield from _strict(v, (*loc, k))


def _object_problems(value: dict[str, Any], loc: tuple[Any, ...]) -> Iterator[tuple[str, str]]:
    """What the spec asks of the object at ``loc`` beyond its shape: JSON types and language tags."""
    key = loc[-1] if loc else None
    if key == "score":
        yield from _mistyped(value, loc, _SCORE_NUMBERS, _is_number, "must be a JSON number, not text")
    if key == "result":
        yield from _mistyped(
            value, loc, _RESULT_BOOLEANS, _is_boolean, "must be a JSON boolean (true or false), not text"
        )
    if key == "context" and isinstance(value.get("language"), str) and not language_tag(value["language"]):
        yield _path((*loc, "language")), "is not an RFC 5646 language tag (e.g. en-US)"
    if key in _LANGUAGE_MAPS:
        for tag in value:
            if not language_tag(tag):
                yield _path((*loc, tag)), "is not an RFC 5646 language tag (e.g. en-US, not en_US)"


def _mistyped(
    value: dict[str, Any], loc: tuple[Any, ...], names: Iterable[str], valid: Callable[[Any], bool], problem: str
) -> Iterator[tuple[str, str]]:
    for name in names:
        v = value.get(name)
        if v is not None and not valid(v):
            yield _path((*loc, name)), problem


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)  # JSON's true is no number


def _is_boolean(v: Any) -> bool:
    return isinstance(v, bool)


def language_tag(tag: str) -> bool:
    # langcodes also takes en_US, which RFC 5646 does not: subtags are joined by hyphens only.
    return "_" not in tag and " " not in tag and bool(langcodes.tag_is_valid(tag))


def _first(exc: ValidationError, statement: dict[str, Any]) -> tuple[str, str]:
    errors = exc.errors()
    specific = [e for e in errors if not (any(_is_branch(p) for p in e["loc"]) and e["type"] in _BRANCH_NOISE)]
    if not specific:
        specific = _of_its_own_type(errors, statement)
    if not specific:
        # Every branch of a union refused it for its shape: for an agent, its identifiers.
        loc = errors[0]["loc"]
        union = next((i for i, p in enumerate(loc) if _is_branch(p)), len(loc))
        where = _path(loc[:union])
        agent = where.split(".")[-1] in ("actor", "object", "instructor", "team") or isinstance(loc[union - 1], int)
        return where, _IFI if agent else "matches none of the forms the xAPI spec allows here"
    e = specific[0]
    message = str(e["msg"]).removeprefix("Value error, ")
    value = e.get("input")
    if isinstance(value, str) and value and value in message:
        message = message.replace(f"'{value}'", "the value").replace(value, "the value")  # no row values in messages
    return _path(e["loc"]), message


def _of_its_own_type(errors: list[Any], statement: dict[str, Any]) -> list[Any]:
    """An object that says (or implies) what it is is judged by that branch of the union alone."""
    first = errors[0]["loc"]
    union = next((i for i, p in enumerate(first) if _is_branch(p)), None)
    if union is None or not first[:union] or first[union - 1] != "object":
        return []
    value: Any = statement
    for key in first[:union]:
        value = value[key] if isinstance(value, dict | list) else None
    kind = value.get("objectType", "Activity") if isinstance(value, dict) else "Activity"
    if kind not in ("Activity", "StatementRef", "SubStatement"):
        return []
    return [e for e in errors if len(e["loc"]) > union and str(e["loc"][union]).endswith(kind)]
