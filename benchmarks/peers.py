"""The peers a data engineer would pick for this import, on the same files as feedsync, each in a
venv of the bench's own with pinned versions (never a feedsync dependency; made on first use):

- dlt (benchmarks/.venv-dlt, dlt[postgres] 1.31): benchmarks/dlt_load.py merges the feed on e-mail;
- Singer (benchmarks/.venv-singer, MeltanoLabs' meltanolabs-target-postgres 0.8.1, Meltano SDK):
  benchmarks/singer_tap.py writes the feed as Singer messages (key_properties ["email"]) into
  `target-postgres` with load_method=upsert, so it upserts on e-mail as dlt merges.

Each gets a database of its own named after the bench's (FEEDSYNC_BENCH_DB), made afresh before
its empty-store day, so two benches on one server do not meet. Both are timed on the empty store,
then on the next day's feed (10% changed) into what the first day left.

target-postgres runs with the settings a data engineer tuning it for speed would choose:
use_copy=true (its documented faster insert), validate_records=false (the tap sends strings that
are strings; on, the SDK's per-record JSON-schema check made it about 3x slower at 100k rows),
add_record_metadata and activate_version off (no _sdc_ columns, nothing deleted), batches at the
SDK's default size. The seconds are the pipe's wall clock, tap and target started to both ended
(the target's start-up, about 1 s, included)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import harness
from benchmarks.harness import DATA, HERE, PG, psql, sh

VENV_DLT = HERE / ".venv-dlt"
VENV_SINGER = HERE / ".venv-singer"
SINGER_PIN = "meltanolabs-target-postgres==0.8.1"


def _venv(folder: Path, *requirements: str) -> Path | None:
    """The venv's python, made and filled on first use; None (the peer skipped) when it cannot be."""
    py = folder / "bin" / "python"
    if not py.exists():
        try:
            sh(sys.executable, "-m", "venv", str(folder))
            sh(str(py), "-m", "pip", "install", "-q", *requirements)
        except subprocess.CalledProcessError as exc:
            print(f"{folder.name} could not be made, skipping that peer: {exc.stderr[-500:]}")
            shutil.rmtree(folder, ignore_errors=True)  # tried again next time, not found half-filled
            return None
    return py


def ensure_dlt() -> Path | None:
    return _venv(VENV_DLT, "dlt[postgres]==1.31.*", "pyarrow")


def ensure_singer() -> Path | None:
    return _venv(VENV_SINGER, SINGER_PIN)


def _fresh(db: str) -> None:
    psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", db="postgres")
    psql(f"CREATE DATABASE {db}", db="postgres")


def run_dlt(py: Path, day1: Path, day2: Path) -> tuple[float, float]:
    db = f"{harness.DB}_dlt"
    _fresh(db)
    shutil.rmtree(Path.home() / ".dlt" / "pipelines" / db, ignore_errors=True)
    # dlt's credentials demand a password; with the local trust auth the server ignores it.
    dsn = f"{PG}/{db}".replace("://postgres@", "://postgres:unused@")
    out1 = sh(str(py), str(HERE / "dlt_load.py"), str(day1), dsn, db)
    out2 = sh(str(py), str(HERE / "dlt_load.py"), str(day2), dsn, db)
    return float(out1.strip().splitlines()[-1]), float(out2.strip().splitlines()[-1])


def _singer_day(py: Path, config: Path, feed: Path, log: Path) -> float:
    """One feed through tap | target-postgres: the pipe's seconds."""
    target = py.parent / "target-postgres"
    with log.open("ab") as err:
        t0 = time.perf_counter()
        tap = subprocess.Popen([str(py), str(HERE / "singer_tap.py"), str(feed)], stdout=subprocess.PIPE)
        assert tap.stdout is not None
        sink = subprocess.run(
            [str(target), "--config", str(config)], stdin=tap.stdout, stdout=subprocess.DEVNULL, stderr=err, check=False
        )
        tap.stdout.close()
        tap_rc = tap.wait()
        secs = time.perf_counter() - t0
    if tap_rc or sink.returncode:
        raise RuntimeError(f"the Singer peer failed (tap {tap_rc}, target {sink.returncode}): see {log}")
    return secs


def run_singer(py: Path, day1: Path, day2: Path) -> tuple[float, float]:
    """Both days through target-postgres; the store it left is checked against the feed."""
    db = f"{harness.DB}_singer"
    _fresh(db)
    config = DATA / "singer-target.json"
    config.write_text(
        json.dumps(
            {
                # psycopg 3, as the target recommends.
                "sqlalchemy_url": f"postgresql+psycopg://{PG.split('://', 1)[1]}/{db}",
                "default_target_schema": "singer_users",
                "load_method": "upsert",
                "use_copy": True,
                "validate_records": False,
                "add_record_metadata": False,
                "activate_version": False,
            }
        )
    )
    log = DATA / "singer-target.log"
    log.unlink(missing_ok=True)
    secs = _singer_day(py, config, day1, log), _singer_day(py, config, day2, log)
    rows = promoted = 0
    with day2.open(newline="", encoding="utf-8") as f:
        for record in csv.DictReader(f):  # streamed: a 5M feed is never held whole
            rows += 1
            promoted += record["Job Title"].startswith("Promoted ")
    expected = (rows, promoted)
    stored = psql("SELECT count(*), count(*) FILTER (WHERE job_title LIKE 'Promoted %') FROM singer_users.users", db)
    got = tuple(int(x) for x in stored.split("|"))
    assert got == expected, f"target-postgres left (rows, promoted) {got} for the feed's {expected}"
    return secs
