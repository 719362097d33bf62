"""The admin's loop with the real samples (../shared/samples, read in place): check the error log,
fix the mapping or the file name, drop the same file again or rerun, and it imports; a drop that
is set aside shows in the history."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from producers import queries
from producers.commands import apply_connections, rerun
from schemas.connections import load_connections_toml
from tests.conftest import SAMPLES, feedsync, sql
from tests.stubpipeline import Pipeline

pytestmark = pytest.mark.conformance

ALM = SAMPLES / "alm"
ALM_USERS = ALM / "user-import" / "LearningManagerSampleCSV.csv"
ALM_MAPPING = {
    "email": "Employee's Email",
    "full_name": "Employee's Name",
    "manager": "Manager's ID / Email",
}
HMM = '[[connections]]\nname = "hmm"\nkind = "hmm"\ncreate_learners = true\n'


def alm_connection(mapping: dict[str, str]) -> None:
    lines = ['[[connections]]\nname = "alm"\nkind = "users"\npath = "alm/*.csv"\n[connections.mapping]']
    lines += [f'{k} = "{v}"' for k, v in mapping.items()]
    apply_connections(load_connections_toml("\n".join(lines)))


def drop(pipeline: Pipeline, src: Path, rel: str) -> int:
    from producers import registry

    dst = pipeline.settings.drop_dir / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    registry.scan(pipeline.settings)
    pipeline.drain(expect_failures=True)
    return int(sql("SELECT coalesce(max(id), 0) FROM sync.runs")[0][0])


def people() -> int:
    return int(sql("SELECT count(*) FROM lms.users")[0][0])


def test_an_alm_file_rejected_for_its_mapping_imports_when_dropped_again_after_the_fix(pipeline: Pipeline) -> None:
    alm_connection({**ALM_MAPPING, "department": "Department"})  # the sample has no Department column
    first = drop(pipeline, ALM_USERS, "alm/LearningManagerSampleCSV.csv")
    assert queries.history("alm")[0]["status"] == "failed" and people() == 0

    alm_connection(ALM_MAPPING)
    second = drop(pipeline, ALM_USERS, "alm/LearningManagerSampleCSV.csv")
    assert second != first and people() == 5
    assert [(h["run_id"], h["status"]) for h in queries.history("alm")] == [
        (second, "completed_with_errors"),
        (first, "failed"),
    ]

    # The same bytes a third time: now they were imported by the latest run, so they are a
    # duplicate, and the history says so, naming the run that imported them.
    drop(pipeline, ALM_USERS, "alm/LearningManagerSampleCSV.csv")
    latest = queries.history("alm")[0]
    assert latest["type"] == "duplicate" and latest["duplicate_of_run"] == second
    assert latest["file"] == "alm/LearningManagerSampleCSV.csv" and latest["run_id"] is None
    listed = feedsync("history", "alm").stdout.splitlines()
    assert "duplicate" in listed[1] and f"duplicate of run {second}" in listed[1]


def test_a_rerun_after_fixing_the_mapping_of_a_rejected_alm_file_imports_it(pipeline: Pipeline) -> None:
    alm_connection({**ALM_MAPPING, "department": "Department"})
    drop(pipeline, ALM_USERS, "alm/LearningManagerSampleCSV.csv")
    alm_connection(ALM_MAPPING)
    # The stored copy of a users file is gone with its run: the admin drops it again and reruns.
    target = pipeline.settings.drop_dir / "alm" / "LearningManagerSampleCSV.csv"
    shutil.copyfile(ALM_USERS, target)
    run_id = rerun(pipeline.settings, "alm")
    pipeline.drain()
    run = queries.run_detail(run_id)
    assert run is not None and run["status"] == "completed_with_errors" and people() == 5
    assert not any(h["type"] == "duplicate" for h in queries.history("alm"))


def test_hmm_samples_named_with_hyphens_import_once_renamed_and_dropped_again(pipeline: Pipeline) -> None:
    apply_connections(load_connections_toml(HMM))
    files = {"hmm12-metadata.csv": "hmm12_metadata.csv", "client-hmm12-20170304.csv": "client_hmm12_20170304.csv"}
    (pipeline.settings.drop_dir / "import" / "hmm").mkdir(parents=True)
    for sample in files:
        shutil.copyfile(ALM / sample, pipeline.settings.drop_dir / "import" / "hmm" / sample)
    rejected = pipeline.sync("hmm")
    assert rejected["status"] == "failed"
    assert {f["status"] for f in rejected["files"]} == {"rejected"}

    for sample, name in files.items():
        shutil.copyfile(ALM / sample, pipeline.settings.drop_dir / "import" / "hmm" / name)
    run = pipeline.sync("hmm")
    assert run["status"] == "completed", queries.errors(run["run_id"])
    assert run["content"]["courses_created"] == 44
    assert not any(h["type"] == "duplicate" for h in queries.history("hmm"))

    again = rerun(pipeline.settings, "hmm")
    pipeline.drain()
    detail = queries.run_detail(again)
    assert detail is not None and detail["status"] == "completed"


def test_alm_top_managers_named_root_or_company_name_are_no_manager_when_configured(pipeline: Pipeline) -> None:
    apply_connections(
        load_connections_toml(
            """
[[connections]]
name = "alm-kb"
kind = "users"
path = "alm-kb/*.csv"
no_manager_values = ["root"]
[connections.mapping]
email = "email"
full_name = "name"
manager = "manager"

[[connections]]
name = "alm"
kind = "users"
path = "alm/*.csv"
no_manager_values = ["COMPANY NAME"]
[connections.mapping]
email = "Employee's Email"
full_name = "Employee's Name"
manager = "Manager's ID / Email"
"""
        )
    )
    # Users.csv names ROOT, LearningManagerSampleCSV.csv "Company name", as the top people's manager.
    kb = drop(pipeline, ALM / "user-import" / "users_unzipped" / "Users.csv", "alm-kb/Users.csv")
    lm = drop(pipeline, ALM_USERS, "alm/LearningManagerSampleCSV.csv")
    assert queries.errors(kb) == [] and queries.errors(lm) == []
    assert [h["status"] for h in queries.history()] == ["completed", "completed"]
    assert people() == 10
