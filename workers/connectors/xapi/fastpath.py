"""A cheaper yes for the statements a mapping makes: the common shapes checked by hand, with the
same checks ralph runs on their values, each distinct value once in the worker's life.

ralph validates a whole pydantic model per statement, and tries an agent against every branch of
its unions (an e-mail address is validated twice per row): ~150 µs a statement. A mapped file holds
the same few shapes on every row and the same learners, verbs and activities over and over, so
``FastCheck.valid`` says yes to a statement only when each part is of a shape listed below and
each value passes the very check ralph would run on it (``pydantic.validate_email`` for an
``mbox``, rfc3987 and ralph's own pattern for an IRI, the RFC 5646 check of ``validation``):

    id          a UUID in its canonical 8-4-4-4-12 form
    actor       {mbox, name?, objectType: "Agent"?}
    verb        {id, display?}                  display: a language map
    object      {id, objectType: "Activity"?, definition?: {name?, description?, type?}}
    result      {score?: {scaled? in [-1, 1], raw?}, success?, completion?, response?}
    timestamp   RFC 3339 UTC with milliseconds (what the mapping's ``date`` type writes)

Anything else is not decided here: ``valid`` says no, and the caller asks ``validation.problem``,
which finds the reason. So a row refused gets the same reason on either path, and the only way
the fast pass could differ is by saying yes to a statement ralph refuses: the tests hold it to
that (tests/unit/test_xapi_fastpath.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from pydantic import validate_email
from pydantic_core import PydanticCustomError
from rfc3987 import parse as parse_iri

from workers.connectors.xapi.validation import language_tag

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_STATEMENT = frozenset({"id", "actor", "verb", "object", "result", "timestamp"})
_ACTOR = frozenset({"mbox", "name", "objectType"})
_VERB = frozenset({"id", "display"})
_OBJECT = frozenset({"id", "objectType", "definition"})
_DEFINITION = frozenset({"name", "description", "type"})
_RESULT = frozenset({"score", "success", "completion", "response"})
_SCORE = frozenset({"scaled", "raw"})


class FastCheck:
    """The fast pass. The verdicts on e-mails, IRIs and language tags are kept for the worker's life
    (``_CHECKS``), so a learner's address is checked once, not once per statement."""

    def valid(self, s: dict[str, Any]) -> bool:
        """True: the statement is valid by xAPI 1.0.3 (as ``validation.problem`` would find).
        False: not decided here; ask ``validation.problem``."""
        if not s.keys() <= _STATEMENT:
            return False
        sid = s.get("id")
        if sid is not None and not (isinstance(sid, str) and _UUID.match(sid)):
            return False
        return (
            self._actor(s.get("actor"))
            and self._verb(s.get("verb"))
            and self._object(s.get("object"))
            and ("result" not in s or _result(s["result"]))
            and ("timestamp" not in s or is_instant(s["timestamp"]))
        )

    def _actor(self, a: Any) -> bool:
        if not isinstance(a, dict) or not a.keys() <= _ACTOR or a.get("objectType", "Agent") != "Agent":
            return False
        mbox = a.get("mbox")
        if not (isinstance(mbox, str) and mbox.startswith("mailto:") and self._check("mbox", mbox[7:])):
            return False
        return "name" not in a or _text(a["name"])

    def _verb(self, v: Any) -> bool:
        if not isinstance(v, dict) or not v.keys() <= _VERB:
            return False
        return self._iri(v.get("id")) and ("display" not in v or self._language_map(v["display"]))

    def _object(self, o: Any) -> bool:
        if not isinstance(o, dict) or not o.keys() <= _OBJECT or o.get("objectType", "Activity") != "Activity":
            return False
        if not self._iri(o.get("id")):
            return False
        if "definition" not in o:
            return True
        d = o["definition"]
        if not isinstance(d, dict) or not d or not d.keys() <= _DEFINITION:
            return False
        return (
            ("name" not in d or self._language_map(d["name"]))
            and ("description" not in d or self._language_map(d["description"]))
            and ("type" not in d or self._iri(d["type"]))
        )

    def _language_map(self, m: Any) -> bool:
        return (
            isinstance(m, dict) and bool(m) and all(self._check("tag", tag) and _text(text) for tag, text in m.items())
        )

    def _iri(self, value: Any) -> bool:
        return isinstance(value, str) and self._check("iri", value)

    def _check(self, kind: str, value: str) -> bool:
        return _CHECKS[kind](value)


def _result(r: Any) -> bool:
    if not isinstance(r, dict) or not r or not r.keys() <= _RESULT:
        return False
    if "score" in r:
        score = r["score"]
        if not isinstance(score, dict) or not score or not score.keys() <= _SCORE:
            return False  # min and max: ralph's checks of raw against them are its own
        if not all(_number(v) for v in score.values()):
            return False
        if "scaled" in score and not -1 <= score["scaled"] <= 1:
            return False
    return all(isinstance(r[k], bool) for k in ("success", "completion") if k in r) and (
        "response" not in r or _text(r["response"])
    )


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _text(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def is_instant(v: Any) -> bool:
    """Whether v is a valid RFC 3339 UTC instant with milliseconds (YYYY-MM-DDTHH:MM:SS.mmmZ)."""
    if not (isinstance(v, str) and _INSTANT.match(v)):
        return False
    try:
        datetime.fromisoformat(v)
    except ValueError:
        return False
    return True


# The verdicts on values are kept for the worker's life, not per chunk: a million-statement file
# names its twenty thousand learners and thousands of activities in every block. Bounded, so a file
# of all-distinct values costs memory no more than a few megabytes.
@lru_cache(maxsize=1 << 16)
def _email(address: str) -> bool:
    """ralph's MailtoEmail check of the address after ``mailto:``."""
    if not address:
        return False
    try:
        validate_email(address)
    except PydanticCustomError:
        return False
    return True


@lru_cache(maxsize=1 << 16)
def _iri_ok(value: str) -> bool:
    """ralph's IRI: rfc3987's parse, then its anchored pattern."""
    # Here, not at the top: ralph's models cost half a second to import, in every process that
    # lists the kinds (`feedsync sync` included), and only an xAPI import checks an IRI.
    from ralph.models.xapi.base.common import compiled_iri_pattern

    if not value:
        return False
    try:
        parse_iri(value, rule="IRI")
    except ValueError:
        return False
    return compiled_iri_pattern.match(value) is not None


_CHECKS: dict[str, Callable[[str], bool]] = {
    "mbox": _email,
    "iri": _iri_ok,
    "tag": lru_cache(maxsize=1 << 10)(language_tag),
}


def _check_of(kind: str) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and _CHECKS[kind](v)


#: What FastCheck asks of the value at each path of the shapes above (language maps by their parent).
_LEAVES: dict[str, Callable[[Any], bool]] = {
    "id": lambda v: isinstance(v, str) and _UUID.match(v) is not None,
    "actor.mbox": lambda v: isinstance(v, str) and v.startswith("mailto:") and _email(v[7:]),
    "actor.name": _text,
    "actor.objectType": lambda v: v == "Agent",
    "verb.id": _check_of("iri"),
    "object.id": _check_of("iri"),
    "object.objectType": lambda v: v == "Activity",
    "object.definition.type": _check_of("iri"),
    "result.score.scaled": lambda v: _number(v) and -1 <= v <= 1,
    "result.score.raw": _number,
    "result.success": lambda v: isinstance(v, bool),
    "result.completion": lambda v: isinstance(v, bool),
    "result.response": _text,
    "timestamp": is_instant,
}
_MAPS = ("verb.display", "object.definition.name", "object.definition.description")


def leaf_check(path: str) -> Callable[[Any], bool] | None:
    """The check ``FastCheck.valid`` runs on the value a mapping puts at ``path`` (a callable that
    says yes or no), or None for a path outside its shapes. A statement made only of such paths,
    with an ``actor.mbox``, is one ``valid`` says yes to exactly when every leaf's check does."""
    if path in _LEAVES:
        return _LEAVES[path]
    parent, _, tag = path.rpartition(".")
    if parent in _MAPS and language_tag(tag):
        return _text
    return None
