"""The export as an admin runs it, on the real broker: the real HMM samples imported, then
`feedsync sync transcripts --since 2017-01-01 --wait` writes the ALM-shaped file and the history shows it."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLES, DbToday, feedsync
from tests.unit.exportdata import HMM_AND_TRANSCRIPTS

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.conformance]

TOML = HMM_AND_TRANSCRIPTS


def test_sync_transcripts_since_2017_writes_the_alm_transcript_of_the_imported_hmm_samples(
    settings: Any, rabbit_env: dict[str, str], start: Any, tmp_path: Path
) -> None:
    env = rabbit_env
    conf = tmp_path / "c.toml"
    conf.write_text(TOML)
    feedsync("connections", "apply", str(conf), env=env)
    start("worker", "--processes", "1", "--threads", "2").wait_for("Worker process is ready")
    inbox = settings.drop_dir / "import" / "hmm"
    inbox.mkdir(parents=True)
    shutil.copyfile(SAMPLES / "alm" / "hmm12-metadata.csv", inbox / "hmm12_metadata.csv")
    shutil.copyfile(SAMPLES / "alm" / "client-hmm12-20170304.csv", inbox / "client_hmm12_20170304.csv")
    assert feedsync("sync", "hmm", "--since", "2017-03-01", "--wait", env=env).stdout.strip().endswith("completed")

    folder = settings.export_dir / "export" / "transcripts"
    today = DbToday()
    out = feedsync("sync", "transcripts", "--since", "2017-01-01", "--wait", env=env).stdout
    (path,) = [folder / n for n in today.names("learner_transcript_2017-01-01_to_{}.csv") if n in out]
    assert f"wrote {path} (1 rows)" in out, out
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["email"], r["Course"], r["Status"]) for r in rows] == [
        ("user1@xyz.com", "Presentation Skills", "Completed")
    ]
    (run,) = json.loads(feedsync("history", "transcripts", "--json", env=env).stdout)
    assert run["status"] == "completed" and run["type"] == "on_demand"
    assert run["export"]["file"] == path.name and run["export"]["rows"] == 1
    assert not list(path.parent.glob("*.part"))
