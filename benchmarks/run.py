"""`make bench`: feedsync end to end against the floors and a peer, on the same generated feeds.

For each size (FEEDSYNC_BENCH_SIZES, default 100000,1000000,5000000):
- floor 1: `psql \\copy` into an UNLOGGED text staging table;
- floor 2: `psql \\copy` into a copy of lms.users' shape with the same indexes;
- feedsync: the file dropped into a running `feedsync up` until its run is completed in the
  history, empty store, then the next day's feed with 10% of people changed; peak RSS of every
  worker process sampled throughout;
- the peers (1M only, or FEEDSYNC_BENCH_DLT_SIZES; benchmarks/peers.py), empty and 10% changed: dlt
  merging on e-mail, and a Singer run (our tap of the file into MeltanoLabs' target-postgres,
  upsert on e-mail).
Then the latency of a 100-row file with `feedsync up` idle (p50, p99 over 50 files), and where the
time goes with 1 and 2 worker processes, the hierarchy bundle, and the export: 1M learner transcript
rows (FEEDSYNC_BENCH_EXPORT) by `feedsync sync --since` against `psql \\copy (SELECT …) TO` of the same
SELECT; and the 1M import with the run journal against the same with its triggers dropped.
Prints a table and writes benchmarks/RESULTS.md. FEEDSYNC_BENCH_ONLY=users, =bundle, =hierarchy,
=export, =xapi, =api (benchmarks/api.py: a Graph pull against the same records as a file) or =s3 (the
1M import with the S3 store against the folder) runs one part, printed only (=journal appends the
journal's cost to RESULTS.md; =xapi, =api and =s3 replace their own section of it);
FEEDSYNC_BENCH_DB names a bench database of one's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from psycopg import sql as q

from benchmarks import api, peers, xapi
from benchmarks.export import export_bench
from benchmarks.harness import (
    DATA,
    HERE,
    Up,
    feeds,
    floor_indexed,
    floor_unlogged,
    fresh_database,
    psql,
    replace_section,
    sh,
    stage_breakdown,
)
from benchmarks.objstore import s3_only
from producers import feedgen

SIZES = [int(x) for x in os.environ.get("FEEDSYNC_BENCH_SIZES", "100000,1000000,5000000").split(",")]
DLT_SIZES = [int(x) for x in os.environ.get("FEEDSYNC_BENCH_DLT_SIZES", "1000000").split(",") if x]
# The same people as the users feed of that size (feedgen's addresses), for the bundle / users ratio.
BUNDLE_PEOPLE = int(os.environ.get("FEEDSYNC_BENCH_BUNDLE", "1000000"))
# "users", "bundle", "hierarchy" (the bundle and the users import of its people) or "export": only that part
ONLY = os.environ.get("FEEDSYNC_BENCH_ONLY", "")


def latency(up: Up, files: int = 50) -> tuple[float, float]:
    small = DATA / "small.csv"
    seconds = []
    for i in range(files):
        feedgen.generate_users(small, 100, seed=1000 + i)
        seconds.append(up.import_file(small, f"small-{i:03d}.csv"))
    seconds.sort()
    return statistics.median(seconds), seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))]


def bundle_bench() -> tuple[list[str], float]:
    """The hierarchy bundle: org.csv, pos.csv and user.csv into an empty store, rules included.
    Returns the RESULTS.md lines and the seconds it took."""
    folder = DATA / f"bundle-{BUNDLE_PEOPLE}"
    if not (folder / "user.csv").exists():
        feedgen.generate_bundle(folder, BUNDLE_PEOPLE)
    files = {part: folder / f"{part}.csv" for part in ("org", "pos", "user")}
    fresh_database()
    up = Up()
    try:
        config = DATA / "bundle.toml"
        config.write_text(feedgen.BUNDLE_CONNECTIONS)
        sh(sys.executable, "-m", "producers.cli", "connections", "apply", str(config), env=up.env)
        secs = up.import_bundle(files)
        stages = stage_breakdown()
        rss = max(up.peak.values(), default=0) / 1e6
    finally:
        up.stop()
    counts = psql("SELECT counts FROM sync.runs ORDER BY id DESC LIMIT 1")
    groups = psql(
        "SELECT string_agg(name || ': ' || n, ', ') FROM (SELECT g.name, count(m.user_id) AS n "
        "FROM lms.groups g LEFT JOIN lms.group_members m ON m.group_id = g.id WHERE g.active GROUP BY g.name) x"
    )
    levels = int(psql("SELECT max(depth) FROM lms.reports")) + 1
    cells = " | ".join(f"{stages.get(s, 0):.1f}" for s in ("plan", "parse", "transform", "load", "finalize"))
    lines = [
        "",
        f"## Hierarchy bundle ({BUNDLE_PEOPLE:,} people, 2,000 units, 500 positions, "
        f"{levels} levels in the manager tree)",
        "",
        "Three files dropped in reverse order into a running `feedsync up` (default workers), empty store, two "
        "group rules; from the first file appearing to the run completed.",
        "",
        "| total s | people/s | plan | parse | transform | load | finalize | worker peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
        f"| {secs:.1f} | {BUNDLE_PEOPLE / secs / 1000:.0f}k | {cells} | {rss:.0f} |",
        "",
        f"Groups after the run: {groups}. Run counts: `{counts}`.",
    ]
    print("\n".join(lines), flush=True)
    return lines, secs


DROP_JOURNAL = q.SQL(
    """DO $$ DECLARE t record; BEGIN
         FOR t IN SELECT tgrelid::regclass AS tbl, tgname FROM pg_trigger WHERE tgname LIKE 'journal\\_%' LOOP
           EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.tbl);
         END LOOP;
       END $$"""
)


def journal_cost(day1: Path, day2: Path) -> list[str]:
    """The 1M import with the run journal (the default) against the same imports with its triggers
    dropped: the journal's whole cost, capture of the transition tables included (FEEDSYNC_JOURNAL
    =false alone keeps the triggers, which still capture)."""
    secs: dict[str, tuple[float, float]] = {}
    for label in ("with the journal", "without (triggers dropped)"):
        fresh_database()
        if label.startswith("without"):
            psql(DROP_JOURNAL)
        up = Up()
        try:
            secs[label] = (up.import_file(day1, day1.name), up.import_file(day2, day2.name))
        finally:
            up.stop()
        print(label, secs[label], flush=True)
    (we, wc), (ne, nc) = secs.values()
    return [
        "",
        "## What the run journal costs (1,000,000 people)",
        "",
        "The same two imports into a fresh store, with the journal's triggers and with them dropped.",
        "",
        "| import | with the journal s | without s | with / without (target <= 1.15) |",
        "|---|---|---|---|",
        f"| empty store | {we:.1f} | {ne:.1f} | {we / ne:.2f} |",
        f"| 10% changed | {wc:.1f} | {nc:.1f} | {wc / nc:.2f} |",
    ]


def hierarchy_probe() -> None:
    """A quick probe of one target: the bundle against the users import of its people."""
    day1, _ = feeds(BUNDLE_PEOPLE)
    fresh_database()
    up = Up()
    try:
        users = up.import_file(day1, day1.name)
    finally:
        up.stop()
    _, secs = bundle_bench()
    print(f"users {users:.1f} s, bundle {secs:.1f} s, bundle / users {secs / users:.2f} (target <= 2.0)", flush=True)


def journal_only() -> None:
    """Only the journal's cost at 1M, appended to RESULTS.md."""
    lines = journal_cost(*feeds(1_000_000))
    with (HERE / "RESULTS.md").open("a") as f:
        f.write("\n".join(lines) + "\n")


def api_only() -> None:
    """The API people case alone: its section of RESULTS.md replaced, the rest left alone."""
    replace_section(HERE / "RESULTS.md", "## API people", api.api_bench())


def xapi_only() -> None:
    """The xAPI case alone: its section of RESULTS.md replaced, the rest left alone."""
    replace_section(HERE / "RESULTS.md", "## xAPI import", xapi.xapi_bench())


#: FEEDSYNC_BENCH_ONLY values that run one part and nothing else ("users" is a cut of the full run).
ONE_PART: dict[str, Callable[[], object]] = {
    "bundle": bundle_bench,
    "hierarchy": hierarchy_probe,
    "export": export_bench,
    "journal": journal_only,
    "xapi": xapi_only,
    "api": api_only,
    "s3": s3_only,
}


def main() -> None:
    if ONLY in ONE_PART:
        ONE_PART[ONLY]()
        return
    results: list[dict[str, Any]] = []
    ratios: dict[str, str] = {}
    notes: list[str] = []
    for n in SIZES:
        day1, day2 = feeds(n)
        fresh_database()
        f_unlogged, f_indexed = floor_unlogged(day1), floor_indexed(day1)
        up = Up()
        try:
            empty = up.import_file(day1, day1.name)
            empty_stages, empty_load = stage_breakdown(), up.load_profile()
            rss_empty = dict(up.peak)
            up.reset_peaks()
            changed = up.import_file(day2, day2.name)
            changed_stages, changed_load = stage_breakdown(), up.load_profile()
            rss_changed = dict(up.peak)
        finally:
            up.stop()
        row: dict[str, Any] = {
            "rows": n,
            "floor_unlogged": f_unlogged,
            "floor_indexed": f_indexed,
            "feedsync_empty": empty,
            "feedsync_changed": changed,
            "rss_mb": max([*rss_empty.values(), *rss_changed.values(), 0]) / 1e6,
            "stages": empty_stages,
            "inside": {"empty": (empty_stages, empty_load), "10% changed": (changed_stages, changed_load)},
        }
        if n in DLT_SIZES and (py := peers.ensure_dlt()) is not None:
            row["dlt_empty"], row["dlt_changed"] = peers.run_dlt(py, day1, day2)
        if n in DLT_SIZES and (py := peers.ensure_singer()) is not None:
            row["singer_empty"], row["singer_changed"] = peers.run_singer(py, day1, day2)
        if n == 1_000_000 and ONLY != "users":
            notes += journal_cost(day1, day2)
        results.append(row)
        print(row, flush=True)

    one_m = next((r for r in results if r["rows"] == 1_000_000), None)
    if one_m:
        ratios["1M empty: feedsync / \\copy indexed (target <= 2.0)"] = (
            f"{one_m['feedsync_empty'] / one_m['floor_indexed']:.2f}"
        )
        ratios["1M 10% changed: feedsync / \\copy unlogged (target <= 3.5)"] = (
            f"{one_m['feedsync_changed'] / one_m['floor_unlogged']:.2f}"
        )
        if "dlt_empty" in one_m:
            ratios["dlt / feedsync, 10% changed (target >= 4)"] = (
                f"{one_m['dlt_changed'] / one_m['feedsync_changed']:.2f}"
            )
            ratios["dlt / feedsync, empty (target >= 1.5)"] = f"{one_m['dlt_empty'] / one_m['feedsync_empty']:.2f}"
        if "singer_empty" in one_m:
            ratios["target-postgres / feedsync, empty (> 1: feedsync faster)"] = (
                f"{one_m['singer_empty'] / one_m['feedsync_empty']:.2f}"
            )
            ratios["target-postgres / feedsync, 10% changed (> 1: feedsync faster)"] = (
                f"{one_m['singer_changed'] / one_m['feedsync_changed']:.2f}"
            )
    rss = {r["rows"]: r["rss_mb"] for r in results}
    if 1_000_000 in rss and 5_000_000 in rss:
        ratios["worker peak RSS 1M / 5M, MB (target <= 250, equal within 10%)"] = (
            f"{rss[1_000_000]:.0f} / {rss[5_000_000]:.0f}"
        )

    if ONLY == "users":  # a quick probe: the users rows and their ratios, printed, RESULTS.md left alone
        print(json.dumps(ratios, indent=1), flush=True)
        return
    # Where the time goes with 1 and 2 worker processes (the 1M feed, or the largest measured below it).
    probe = max((n for n in SIZES if n <= 1_000_000), default=SIZES[0])
    workers_rows = []
    for processes in (1, 2):
        fresh_database()
        up = Up(processes=processes)
        try:
            secs = up.import_file(feeds(probe)[0], f"probe-{processes}.csv")
            workers_rows.append((processes, secs, stage_breakdown()))
        finally:
            up.stop()

    fresh_database()
    up = Up()
    try:
        p50, p99 = latency(up)
    finally:
        up.stop()
    ratios["small-file latency p50 / p99, s (target <= 1 / <= 3)"] = f"{p50:.2f} / {p99:.2f}"
    bundle_lines, bundle_secs = bundle_bench()
    notes += bundle_lines
    if one_m and BUNDLE_PEOPLE == 1_000_000:
        ratios["hierarchy bundle 1M / users import of the same 1M people, empty store (target <= 2.0)"] = (
            f"{bundle_secs / one_m['feedsync_empty']:.2f}"
        )
    notes += export_bench()
    notes += xapi.xapi_bench()
    notes += api.api_bench()
    write_results(results, ratios, workers_rows, probe, notes)


def write_results(
    results: list[dict[str, Any]], ratios: dict[str, str], workers_rows: list[Any], probe: int, notes: list[str]
) -> None:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        info = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name"))
    lines = [
        "# Benchmark results",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make bench` on {os.cpu_count()} cores ({cpu}), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, PostgreSQL {psql('SHOW server_version')}. "
        "Timings vary from run to run on a shared machine: compare the ratios within one run.",
        "",
        "| rows | \\copy unlogged s | \\copy indexed s | feedsync empty s (rows/s) | feedsync 10% changed s (rows/s) "
        "| dlt empty s | dlt 10% changed s | target-postgres empty s | target-postgres 10% changed s "
        "| worker peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        dlt_e, dlt_c, sg_e, sg_c = (
            f"{r[k]:.1f}" if k in r else "—" for k in ("dlt_empty", "dlt_changed", "singer_empty", "singer_changed")
        )
        lines.append(
            f"| {r['rows']:,} | {r['floor_unlogged']:.1f} | {r['floor_indexed']:.1f} "
            f"| {r['feedsync_empty']:.1f} ({r['rows'] / r['feedsync_empty'] / 1000:.0f}k) "
            f"| {r['feedsync_changed']:.1f} ({r['rows'] / r['feedsync_changed'] / 1000:.0f}k) "
            f"| {dlt_e} | {dlt_c} | {sg_e} | {sg_c} | {r['rss_mb']:.0f} |"
        )
    lines += [
        "",
        "The peers run on the same files after feedsync, each into a database of its own: dlt merging on e-mail, "
        "and target-postgres (MeltanoLabs', Singer) upserting on e-mail what a tap of ours reads from the file "
        "(use_copy on, record validation off; benchmarks/peers.py says why).",
    ]
    lines += ["", "## Ratios", "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in ratios.items()]
    lines += [
        "",
        f"## Where the time goes ({probe:,} people, empty store)",
        "",
        "| worker processes | total s | plan | parse | transform | load | finalize |",
        "|---|---|---|---|---|---|---|",
    ]
    for processes, secs, stages in workers_rows:
        cells = " | ".join(f"{stages.get(s, 0):.1f}" for s in ("plan", "parse", "transform", "load", "finalize"))
        lines.append(f"| {processes} | {secs:.1f} | {cells} |")
    lines += [
        "",
        "Stage columns are wall-clock spans from a stage's first start to its last finish; parse and "
        "transform overlap (chunks are transformed while the file is still being parsed).",
    ]
    one_m = next((r for r in results if r["rows"] == 1_000_000), None)
    if one_m:
        lines += [
            "",
            "## Inside the run (1,000,000 people, default workers)",
            "",
            "| feed | parse | transform | load | prepare (duplicates) | classify | insert batches | update batches |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for feed, (stages, load) in one_m["inside"].items():
            spans = [stages.get(s, 0) for s in ("parse", "transform", "load")]
            spans += [load[k] for k in ("prepare", "classify", "insert", "update")]
            lines.append(f"| {feed} | " + " | ".join(f"{c:.1f}" for c in spans) + " |")
        lines += [
            "",
            "The last four are the load's own steps, from the workers' log; the rest of the load is its "
            "bookkeeping, the deactivation check and the row warnings.",
        ]
    lines += [*notes, ""]
    text = "\n".join(lines)
    (HERE / "RESULTS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
