"""The xAPI import's fast pass against ralph: it says yes only to statements ralph takes, it takes
the shapes a mapping makes, and every rule of the issue's invalid table gives the same one row
error whichever path judged the row."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from producers.commands import apply_connections
from schemas.connections import load_connections_toml
from tests.conftest import sql
from tests.stubpipeline import Pipeline
from tests.xapistatements import COMPLETED, INVALID, VALID
from workers.connectors.xapi.fastpath import FastCheck
from workers.connectors.xapi.statements import derived_id
from workers.connectors.xapi.validation import problem

UUID = derived_id("lrs", "ab" * 32, 2)

#: Values of each part of a statement, good and bad, for the shapes the fast pass knows and beyond.
PARTS: dict[str, list[Any]] = {
    "id": [None, UUID, UUID.upper(), UUID.replace("-", ""), "not-a-uuid", ""],
    "actor": [
        {"mbox": "mailto:ann@x.com"},
        {"mbox": "mailto:ann@x.com", "name": "Ann"},
        {"mbox": "mailto:ann@x.com", "name": ""},
        {"mbox": "mailto:ann@x.com", "objectType": "Agent"},
        {"mbox": "mailto:ann@x.com", "objectType": "Group"},
        {"mbox": "mailto:ann@x.test"},  # a special-use domain: the e-mail check refuses it
        {"mbox": "mailto:"},
        {"mbox": "MAILTO:ann@x.com"},
        {"mbox": "mailto:a b@x.com"},
        {"mbox": "mailto:ann@x.com", "openid": "https://id.x.com/ann"},
        {"name": "Ann"},
    ],
    "verb": [
        {"id": COMPLETED},
        {"id": COMPLETED, "display": {"en-US": "completed"}},
        {"id": COMPLETED, "display": {"en_US": "completed"}},
        {"id": COMPLETED, "display": {"en-US": ""}},
        {"id": COMPLETED, "display": {}},
        {"id": COMPLETED, "display": {"en-US": 3}},
        {"id": "completed"},
        {"id": ""},
        {"id": "http://x.com/a b"},
        {"id": COMPLETED, "colour": "red"},
    ],
    "object": [
        {"id": "https://x.com/c1"},
        {"id": "https://x.com/c1", "objectType": "Activity"},
        {"id": "https://x.com/ü/1"},
        {"id": "urn:x:1"},
        {"id": "x.com/c1"},
        {"id": "https://x.com/<"},
        {"id": "https://x.com/c1", "objectType": "Agent"},
        {"id": "https://x.com/c1", "definition": {"name": {"en-US": "Course"}}},
        {"id": "https://x.com/c1", "definition": {"type": "http://adlnet.gov/expapi/activities/course"}},
        {"id": "https://x.com/c1", "definition": {"type": "course"}},
        {"id": "https://x.com/c1", "definition": {}},
        {"objectType": "StatementRef", "id": UUID},
    ],
    "result": [
        None,
        {},
        {"score": {"scaled": 0.5}},
        {"score": {"scaled": -1}},
        {"score": {"scaled": 1.5}},
        {"score": {"scaled": True}},
        {"score": {"raw": 12}},
        {"score": {"raw": "12"}},
        {"score": {"raw": 5, "min": 10}},
        {"score": {}},
        {"completion": True, "success": False},
        {"completion": "true"},
        {"response": ""},
        {"response": "a"},
        {"response": None},
    ],
    "timestamp": [
        None,
        "2026-11-01T10:03:41.863Z",
        "2026-02-30T00:00:00.000Z",
        "2026-13-01T10:03:41.863Z",
        "2026-11-01",
        "",
    ],
}


def statement(choice: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in choice.items() if v is not None}


def variants() -> list[dict[str, Any]]:
    """Every statement with one or two parts changed from the first (good) values, and a sample of
    the rest."""
    base = {part: values[0] for part, values in PARTS.items()}
    found = []
    for a, b in itertools.combinations(PARTS, 2):
        for va, vb in itertools.product(PARTS[a], PARTS[b]):
            found.append(statement({**base, a: va, b: vb}))
    combos = list(itertools.product(*PARTS.values()))
    found += [statement(dict(zip(PARTS, v, strict=True))) for v in random.Random(16).sample(combos, 1000)]
    return found


def test_the_fast_pass_says_yes_only_to_statements_ralph_takes() -> None:
    fast = FastCheck()
    said_yes = 0
    for s in variants():
        if fast.valid(s):
            said_yes += 1
            assert problem(s) is None, s
    assert said_yes > 150  # and it does decide (195 of the 279 that ralph takes: the others are other shapes)


def test_the_fast_pass_takes_what_a_mapping_makes() -> None:
    fast = FastCheck()
    mapped = {
        "id": UUID,
        "actor": {"mbox": "mailto:ann@x.com", "name": "Ann"},
        "verb": {"id": COMPLETED, "display": {"en-US": "completed"}},
        "object": {"id": "https://x.com/c1", "definition": {"name": {"en-US": "Course"}}},
        "result": {"score": {"scaled": 0.85, "raw": 85}, "completion": True, "success": True},
        "timestamp": "2026-11-01T10:03:41.863Z",
    }
    assert problem(mapped) is None
    assert fast.valid(mapped) and fast.valid(VALID)


@pytest.mark.parametrize(("change", "path"), INVALID)
def test_no_statement_of_the_invalid_table_gets_past_the_fast_pass(change: dict[str, Any], path: str) -> None:
    # So its reason is always ralph's (and the strict pass's): the same on either path.
    assert not FastCheck().valid({**VALID, **change})


BOTH = """
[[connections]]
name = "lrs-{name}"
kind = "xapi"
path = "import/xapi-{name}/*.csv"

[connections.xapi]
"actor.mbox" = {{ column = "Email" }}
"actor.openid" = {{ column = "OpenId" }}
"verb.id" = {{ column = "Verb" }}
"verb.display.en_US" = {{ column = "Label" }}
"object.id" = {{ column = "Activity" }}
"object.objectType" = {{ column = "Type" }}
"result.score.raw" = {{ column = "Raw" }}
"result.score.scaled" = {{ column = "Scaled", type = "number" }}
"result.completion" = {{ column = "Done" }}
"context.revision" = {{ column = "Revision" }}
"version" = {{ column = "Version" }}
"""

#: The invalid table as a mapping can write it (a null cannot be mapped), between two valid rows.
ROWS = [
    ("ann@x.com,,{v},https://x.test/c1,,,,0.5,,,", None),
    ("ann@x.com,,{v},https://x.test/c1,,,12,,,,", "result.score.raw"),  # "12" for a number
    ("ann@x.com,,{v},https://x.test/c1,,,,,true,,", "result.completion"),  # "true" for a boolean
    (",,{v},https://x.test/c1,,,,,,,", "required"),  # an empty mbox
    ("ann,,{v},https://x.test/c1,,,,,,,", "actor.mbox"),  # not a mailto: e-mail
    ("ann@x.com,https://id.x.com/ann,{v},https://x.test/c1,,,,,,,", "actor"),  # two identifiers
    ("ann@x.com,,{v},x.test/c1,,,,,,,", "object.id"),  # an IRI without a scheme
    ("ann@x.com,,{v},https://x.test/c1,completed,,,,,,", "verb.display.en_US"),  # en_US
    ("ann@x.com,,{v},https://x.test/c1,,,,,,,2.0.0", "version"),
    ("ann@x.com,,{v},https://x.test/c1,,,,1.5,,,", "result.score.scaled"),
    ("ann@x.com,,{v},https://x.test/c1,,Agent,,,,2,", "context"),  # context revision on an agent object
    ("bob@x.com,,{v},https://x.test/c2,,,,0.9,,,", None),
]
HEAD = "Email,OpenId,Verb,Activity,Label,Type,Raw,Scaled,Done,Revision,Version\n"


def test_each_rule_of_the_invalid_table_is_the_same_one_row_error_on_both_paths(pipeline: Pipeline) -> None:
    body = HEAD + "".join(row.format(v=COMPLETED) + "\n" for row, _ in ROWS)
    seen = {}
    for name, fast in (("ralph", False), ("fast", True)):
        apply_connections(load_connections_toml(BOTH.format(name=name)))
        pipeline.settings.xapi_fast_path = fast
        run_id = pipeline.import_files((f"import/xapi-{name}/a-{name}.csv", body))
        seen[name] = sql(
            "SELECT line, column_name, code, message FROM sync.row_errors WHERE run_id = %s ORDER BY line",
            (run_id,),
        )
    assert seen["fast"] == seen["ralph"]
    assert [line for line, *_ in seen["fast"]] == [n for n, (_, rule) in enumerate(ROWS, 2) if rule]
    for (_, _, code, message), rule in zip(seen["fast"], [r for _, r in ROWS if r], strict=True):
        assert code == rule if rule == "required" else message.startswith(f"{rule}:"), (rule, message)
    texts = sql(
        "SELECT c.name, s.statement::jsonb - 'id' FROM lms.xapi_statements s"
        " JOIN sync.connections c ON c.id = s.source_connection_id ORDER BY c.name, s.source_line"
    )
    assert [t for n, t in texts if n == "lrs-fast"] == [t for n, t in texts if n == "lrs-ralph"]
    assert len(texts) == 4
