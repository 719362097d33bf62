"""The export case of `make bench` (FEEDSYNC_BENCH_ONLY=export runs it alone): transcript rows
exported by a running `feedsync up` against `psql \\copy (SELECT …) TO` of the same SELECT."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from datetime import datetime

from psycopg import sql as q

from benchmarks import harness
from benchmarks.harness import DATA, Up, fresh_database, psql, sh, timed

EXPORT_ROWS = int(os.environ.get("FEEDSYNC_BENCH_EXPORT", "1000000"))  # transcript rows of the export case

EXPORT_TOML = """
[[connections]]
name = "bench-transcripts"
kind = "transcript_export"
location = "bench"
"""


def export_bench() -> list[str]:
    """EXPORT_ROWS transcript rows (100 courses per person) exported by `feedsync sync --since` into a
    running `feedsync up`, against `psql \\copy (SELECT …) TO` of the same SELECT in the same run."""
    DATA.mkdir(parents=True, exist_ok=True)  # run alone, nothing has made it yet
    fresh_database()
    people = max(1, EXPORT_ROWS // 100)
    psql(
        q.SQL(
            """INSERT INTO lms.users (email, first_name, last_name, attributes)
            SELECT 'p' || n || '@bench.test', 'Zoë ' || n, 'Łukasz', jsonb_build_object('department', 'D' || n % 50)
            FROM generate_series(1, {people}) n;
            INSERT INTO lms.courses (provider, external_id, title, duration_minutes)
            SELECT 'hmm', 'C' || n, 'Course "' || n || '", part one', 30 FROM generate_series(1, 100) n;
            INSERT INTO lms.learner_progress (user_id, course_id, status, first_accessed_on, completed_on, score,
                                              time_spent_minutes, updated_at)
            SELECT u.id, c.id, CASE WHEN (u.id + c.id) % 3 = 0 THEN 'completed' ELSE 'in_progress' END,
                   date '2026-01-01' + ((u.id + c.id) % 300)::int,
                   CASE WHEN (u.id + c.id) % 3 = 0 THEN date '2026-06-01' + ((u.id * c.id) % 100)::int END,
                   (u.id * c.id) % 101, (u.id + c.id) % 500, now() - interval '1 day'
            FROM lms.users u CROSS JOIN lms.courses c"""
        ).format(people=people)
    )
    psql("VACUUM ANALYZE lms.users, lms.courses, lms.learner_progress")
    rows = int(psql("SELECT count(*) FROM lms.learner_progress"))
    out = DATA / "export"
    shutil.rmtree(out, ignore_errors=True)
    os.environ["FEEDSYNC_EXPORT_DIR"] = str(out)  # `feedsync up` below takes it from the environment
    up = Up()
    try:
        config = DATA / "export.toml"
        config.write_text(EXPORT_TOML)
        sh(sys.executable, "-m", "producers.cli", "connections", "apply", str(config), env=up.env)
        idle_rss = max(up.peak.values(), default=0) / 1e6
        up.reset_peaks()
        t0 = time.perf_counter()
        sh(
            sys.executable,
            "-m",
            "producers.cli",
            "sync",
            "bench-transcripts",
            "--since",
            "2000-01-01",
            "--wait",
            env=up.env,
        )
        wall = time.perf_counter() - t0
        rss = max(up.peak.values(), default=0) / 1e6
    finally:
        up.stop()
        os.environ.pop("FEEDSYNC_EXPORT_DIR", None)
    stage = float(
        psql("SELECT EXTRACT(EPOCH FROM finished_at - started_at) FROM sync.stage_runs WHERE stage = 'export'")
    )
    exported = json.loads(psql("SELECT to_jsonb(e) FROM sync.exports e ORDER BY run_id DESC LIMIT 1"))
    floor_file = DATA / "export-floor.csv"
    select = export_select(exported["window_from"], exported["window_to"])
    floor = timed(lambda: sh("psql", harness.DSN, "-qc", f"\\copy ({select}) TO '{floor_file}' WITH (FORMAT csv)"))
    assert exported["rows"] == rows, (exported["rows"], rows)
    written = out / "export" / "bench" / exported["file_name"]
    with open(written, "rb") as f:
        header = len(f.readline())
    assert written.stat().st_size - header == floor_file.stat().st_size, "the export's rows differ from \\copy's"
    lines = [
        "",
        f"## Export ({rows:,} learner transcript rows)",
        "",
        "`feedsync sync bench-transcripts --since 2000-01-01 --wait` into a running `feedsync up`, against "
        "`psql \\copy (SELECT …) TO` of the export's own SELECT over the same window.",
        "",
        "| \\copy TO s | export stage s | sync --wait s | stage / \\copy (target <= 1.5) | file MB "
        "| worker RSS idle / peak MB |",
        "|---|---|---|---|---|---|",
        f"| {floor:.1f} | {stage:.1f} | {wall:.1f} | {stage / floor:.2f} | {exported['bytes'] / 1e6:.0f} "
        f"| {idle_rss:.0f} / {rss:.0f} |",
    ]
    print("\n".join(lines), flush=True)
    return lines


def export_select(start: str, end: str) -> str:
    """The transcript export's SELECT for a window, as one line for psql's \\copy."""
    import psycopg

    from schemas.exports import ExportConnection
    from workers.connectors import transcript_export
    from workers.connectors.exporting import Window, profile_attributes

    with psycopg.connect(harness.DSN) as conn:
        cfg = ExportConnection(name="bench-transcripts", kind="transcript_export")
        window = Window(datetime.fromisoformat(start), datetime.fromisoformat(end))
        query = transcript_export.query(cfg, profile_attributes(conn), window).as_string(conn)
    return " ".join(query.split("\n"))
