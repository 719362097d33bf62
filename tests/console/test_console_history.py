"""The console's history list and run pages render every history row shape of every kind (the
store tests/historystore.py builds) without a "None", each kind counted in its own terms, the same
words as `feedsync history` and `feedsync run`."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from tests import historystore
from tests.console.conftest import text_of
from tests.stubpipeline import Pipeline


def test_the_history_list_and_every_run_page_show_each_kinds_own_counts_and_no_none(
    as_admin: TestClient, pipeline: Pipeline
) -> None:
    runs = historystore.build(pipeline)
    listed = as_admin.get("/runs")
    assert listed.status_code == 200
    assert "None" not in listed.text
    rows = {
        m.group(1): text_of(m.group(0))
        for m in re.finditer(r'<tr>\s*<td><a href="/runs/(\d+)">.*?</tr>', listed.text, re.S)
    }
    assert set(map(str, runs.values())) <= set(rows)
    for shape, words in historystore.LISTED.items():
        for words_shown in words:
            assert words_shown in rows[str(runs[shape])], (shape, words_shown, rows[str(runs[shape])])
    for shape, run_id in runs.items():
        page = as_admin.get(f"/runs/{run_id}")
        assert page.status_code == 200, shape
        assert "None" not in page.text, (shape, text_of(page.text))
        shown = text_of(page.text)
        for line in historystore.SHOWN.get(shape, []):
            if line.startswith("counts: none yet"):
                assert "Nothing counted yet." in shown, (shape, shown)
                continue
            noun, verbs = line.split(": ", 1)
            # A row per thing counted: the noun, then each count with its verb.
            assert f"{noun} {verbs.replace(',', '')}" in shown, (shape, line, shown)


def test_every_connection_page_lists_its_runs_without_a_none(as_admin: TestClient, pipeline: Pipeline) -> None:
    runs = historystore.build(pipeline)
    for name in ("hr-users", "hr", "hmm", "ga", "lrs", "transcripts", "skills", "xapi"):
        page = as_admin.get(f"/connections/{name}")
        assert page.status_code == 200, name
        assert "None" not in page.text, (name, text_of(page.text))
    listed = text_of(as_admin.get("/connections/lrs").text)
    assert "statements: 1 stored" in listed and f"#{runs['xapi']}" in listed
