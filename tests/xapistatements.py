"""xAPI statements for the validation tests: one valid statement and the issue's table of invalid
ones, one per rule, with the JSON path each is refused at."""

from __future__ import annotations

from typing import Any

COMPLETED = "http://adlnet.gov/expapi/verbs/completed"


VALID: dict[str, Any] = {
    "actor": {"mbox": "mailto:ann@x.com"},
    "verb": {"id": COMPLETED, "display": {"en-US": "completed"}},
    "object": {"id": "https://x.test/c1"},
}


#: The issue's table of invalid statements, one per rule: (change to VALID, JSON path of the reason).
INVALID: list[tuple[dict[str, Any], str]] = [
    ({"result": {"response": None}}, "result.response"),  # a null
    ({"result": {"score": {"raw": "12"}}}, "result.score.raw"),  # "12" for a number
    ({"result": {"completion": "true"}}, "result.completion"),  # "true" for a boolean
    ({"actor": {"mbox": ""}}, "actor.mbox"),  # empty mbox
    ({"actor": {"mbox": "ann@x.com"}}, "actor.mbox"),  # mbox without mailto:
    ({"actor": {"mbox": "mailto:ann@x.com", "openid": "https://id.x.com/ann"}}, "actor"),  # two identifiers
    ({"object": {"id": "x.test/c1"}}, "object.id"),  # an IRI without a scheme
    ({"verb": {"id": COMPLETED, "display": {"en_US": "completed"}}}, "verb.display.en_US"),  # en_US
    ({"version": "2.0.0"}, "version"),
    ({"result": {"score": {"scaled": 1.5}}}, "result.score.scaled"),
    (
        {"object": {"objectType": "Agent", "mbox": "mailto:bob@x.com"}, "context": {"revision": "2"}},
        "context",
    ),  # context revision on an agent object
    ({"id": "not-a-uuid"}, "id"),
    ({"colour": "red"}, "colour"),  # an unknown property
]
