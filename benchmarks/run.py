"""`make bench`: feedsync end to end against the floors and a peer, on the same generated feeds.

For each size (FEEDSYNC_BENCH_SIZES, default 100000,1000000,5000000):
- floor 1: `psql \\copy` into an UNLOGGED text staging table;
- floor 2: `psql \\copy` into a copy of lms.users' shape with the same indexes;
- feedsync: the file dropped into a running `feedsync up` until its run is completed in the
  history, empty store, then the next day's feed with 10% of people changed; peak RSS of every
  worker process sampled throughout;
- dlt (1M only, or FEEDSYNC_BENCH_DLT_SIZES): merge on e-mail, empty and 10% changed.
Then the latency of a 100-row file with `feedsync up` idle (p50, p99 over 50 files), and where the
time goes with 1 and 2 worker processes, the hierarchy bundle, and the export: 1M learner transcript
rows (FEEDSYNC_BENCH_EXPORT) by `feedsync sync --since` against `psql \\copy (SELECT …) TO` of the same
SELECT; and the 1M import with the run journal against the same with its triggers dropped.
Prints a table and writes benchmarks/RESULTS.md. FEEDSYNC_BENCH_ONLY=users, =bundle, =hierarchy,
=export or =xapi runs one part, printed only (=journal appends the journal's cost to RESULTS.md);
FEEDSYNC_BENCH_DB names a bench database of one's own.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from psycopg import sql as q

from producers import feedgen

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
PG = os.environ.get("FEEDSYNC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DB = os.environ.get("FEEDSYNC_BENCH_DB", "feedsync_bench")  # a bench of one's own on a shared server
DSN = f"{PG}/{DB}"
SIZES = [int(x) for x in os.environ.get("FEEDSYNC_BENCH_SIZES", "100000,1000000,5000000").split(",")]
DLT_SIZES = [int(x) for x in os.environ.get("FEEDSYNC_BENCH_DLT_SIZES", "1000000").split(",") if x]
VENV_DLT = HERE / ".venv-dlt"
# The same people as the users feed of that size (feedgen's addresses), for the bundle / users ratio.
BUNDLE_PEOPLE = int(os.environ.get("FEEDSYNC_BENCH_BUNDLE", "1000000"))
# "users", "bundle", "hierarchy" (the bundle and the users import of its people) or "export": only that part
ONLY = os.environ.get("FEEDSYNC_BENCH_ONLY", "")
EXPORT_ROWS = int(os.environ.get("FEEDSYNC_BENCH_EXPORT", "1000000"))  # transcript rows of the export case
VHOST = os.environ.get("FEEDSYNC_BENCH_VHOST", DB)
BROKER = os.environ.get("FEEDSYNC_BENCH_BROKER_URL", f"amqp://guest:guest@127.0.0.1:5672/{VHOST}")
COLUMNS = [c.lower().replace(" ", "_") for c in feedgen.HEADER]


def sh(*args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout


def psql(query: str | q.Composed, db: str | None = None) -> str:
    """Through the psql client, as an operator would; a composed query is rendered here (psql -c
    takes no parameters), its values quoted by psycopg. The database is read when called (the xapi
    case points DB at its own)."""
    text = query if isinstance(query, str) else query.as_string()
    return sh("psql", f"{PG}/{db or DB}", "-v", "ON_ERROR_STOP=1", "-qtAc", text).strip()


def fresh_database() -> None:
    """A new database and an empty vhost of the bench's own: a message left from an earlier (stopped)
    bench must not meet a new database whose run ids start again at 1."""
    psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", db="postgres")
    if shutil.which("rabbitmqctl"):
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", VHOST], capture_output=True, timeout=60)
        sh("rabbitmqctl", "-q", "add_vhost", VHOST)
        sh("rabbitmqctl", "-q", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    env = {**os.environ, "FEEDSYNC_DATABASE_URL": DSN, "FEEDSYNC_BROKER_URL": BROKER}
    sh(sys.executable, "-m", "producers.cli", "migrate", env=env)
    sh(
        sys.executable,
        "-m",
        "producers.cli",
        "connections",
        "apply",
        str(HERE.parent / "examples/connections.toml"),
        env=env,
    )


def feeds(n: int) -> tuple[Path, Path]:
    """The feed of n people and the next day's, with 10% changed (generated once, kept in data/)."""
    DATA.mkdir(exist_ok=True)
    day1, day2 = DATA / f"users-{n}-day1.csv", DATA / f"users-{n}-day2.csv"
    if not day1.exists():
        feedgen.generate_users(day1, n, bad_rows=n // 100, seed=1)
    if not day2.exists():
        feedgen.generate_users(day2, n, bad_rows=n // 100, seed=1, changed_share=0.10)
    return day1, day2


def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def floor_unlogged(path: Path) -> float:
    cols = ", ".join(f"{c} text" for c in COLUMNS)
    psql(f"DROP TABLE IF EXISTS floor_staging; CREATE UNLOGGED TABLE floor_staging ({cols})")
    return timed(lambda: sh("psql", DSN, "-qc", f"\\copy floor_staging FROM '{path}' WITH (FORMAT csv, HEADER true)"))


def floor_indexed(path: Path) -> float:
    """lms.users' indexes (identity primary key, unique lower-case e-mail, manager) on the feed's shape."""
    cols = ", ".join(f"{c} text" for c in COLUMNS)
    psql(f"""DROP TABLE IF EXISTS floor_users;
             CREATE TABLE floor_users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, {cols},
                                       email_key text GENERATED ALWAYS AS (lower(email)) STORED);
             CREATE UNIQUE INDEX ON floor_users (email_key); CREATE INDEX ON floor_users (manager_email);""")
    return timed(
        lambda: sh(
            "psql",
            DSN,
            "-qc",
            f"\\copy floor_users ({', '.join(COLUMNS)}) FROM '{path}' WITH (FORMAT csv, HEADER true)",
        )
    )


def _high_water(pid: int) -> int:
    """The process's peak resident set size in bytes since it started or its peak was reset."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class Up:
    """A running `feedsync up`, with every worker process's peak RSS measured."""

    def __init__(self, processes: int | None = None) -> None:
        """processes=None: `feedsync up` with its default (half the cores)."""
        self.drop = DATA / "drop"
        shutil.rmtree(self.drop, ignore_errors=True)
        shutil.rmtree(DATA / "store", ignore_errors=True)
        self.env = {
            **os.environ,
            "FEEDSYNC_DATABASE_URL": DSN,
            "FEEDSYNC_BROKER_URL": BROKER,
            "FEEDSYNC_DROP_DIR": str(self.drop),
            "FEEDSYNC_STORE_DIR": str(DATA / "store"),
            # INFO: the load's own timings (prepare, classify, each batch) are read back from the log.
            "FEEDSYNC_LOG_LEVEL": "INFO",
        }
        self.log = open(DATA / "up.log", "ab")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "producers.cli",
                "up",
                *([] if processes is None else ["--processes", str(processes)]),
            ],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.peak: dict[int, int] = {}
        self.sampling = True
        threading.Thread(target=self._sample, daemon=True).start()
        deadline = time.monotonic() + 60
        wanted = processes or max(1, (os.cpu_count() or 2) // 2)
        while len(self.workers()) < wanted and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # the watcher's first rescan

    def workers(self) -> list[psutil.Process]:
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        found = []
        for p in kids:  # a child may end between the listing and the look (an error would end the sampler)
            with contextlib.suppress(psutil.Error, AttributeError):
                if "dramatiq" in " ".join(p.cmdline()) and p.parent().pid != self.proc.pid:
                    found.append(p)
        return found

    def _sample(self) -> None:
        """Each worker's peak: the kernel's high-water mark (VmHWM, reset by reset_peaks), so a peak
        between two samples is not missed, and a short import is measured as exactly as a long one."""
        while self.sampling:
            for p in self.workers():
                with contextlib.suppress(psutil.Error, OSError, ValueError):
                    self.peak[p.pid] = max(self.peak.get(p.pid, 0), p.memory_info().rss, _high_water(p.pid))
            time.sleep(0.1)

    def import_file(self, src: Path, name: str, folder: str = "import/user/internal") -> float:
        """Seconds from the file appearing in the drop dir to its run being completed."""
        before = int(psql("SELECT coalesce(max(id), 0) FROM sync.runs"))
        self.log.flush()
        self.log_from = (DATA / "up.log").stat().st_size
        target = self.drop / folder
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / f".{name}.part"
        shutil.copyfile(src, tmp)
        t0 = time.perf_counter()
        os.replace(tmp, target / name)
        while True:
            st = psql(q.SQL("SELECT status FROM sync.runs WHERE id > {} ORDER BY id DESC LIMIT 1").format(before))
            if st in ("completed", "completed_with_errors", "failed"):
                assert st != "failed", psql(q.SQL("SELECT error FROM sync.runs WHERE id > {}").format(before))
                return time.perf_counter() - t0
            time.sleep(0.05)

    def import_bundle(self, files: dict[str, Path]) -> float:
        """Seconds from the first file of a bundle appearing (they are dropped in reverse order, as
        they may arrive) to its run being completed."""
        before = int(psql("SELECT coalesce(max(id), 0) FROM sync.runs"))
        target = self.drop / "import/hierarchy"
        target.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        for part in ("user", "pos", "org"):
            tmp = target / f".{part}.part"
            shutil.copyfile(files[part], tmp)
            os.replace(tmp, target / files[part].name)
        while True:
            st = psql(q.SQL("SELECT status FROM sync.runs WHERE id > {} ORDER BY id DESC LIMIT 1").format(before))
            if st in ("completed", "completed_with_errors", "failed"):
                assert st == "completed", psql(
                    q.SQL("SELECT status, error, note FROM sync.runs WHERE id > {}").format(before)
                )
                return time.perf_counter() - t0
            time.sleep(0.05)

    def load_profile(self) -> dict[str, float]:
        """Seconds inside the last imported file's load, from the workers' log: prepare (the
        duplicate check), classify, and the insert and update batches."""
        profile = dict.fromkeys(("prepare", "classify", "insert", "update"), 0.0)
        with open(DATA / "up.log", "rb") as f:
            f.seek(self.log_from)
            for line in f:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == "load planned":
                    profile["prepare"] += event["prepare_s"]
                    profile["classify"] += event["classify_s"]
                elif event.get("event") == "load batch applied":
                    step = "insert" if "created" in event else "update" if "updated" in event else None
                    if step:
                        profile[step] += event["seconds"]
        return profile

    def reset_peaks(self) -> None:
        for p in self.workers():
            with contextlib.suppress(OSError):
                Path(f"/proc/{p.pid}/clear_refs").write_text("5")  # 5: reset the peak RSS (proc(5))
        self.peak.clear()

    def stop(self) -> None:
        self.sampling = False
        self.proc.terminate()
        self.proc.wait(timeout=120)
        self.log.close()


def stage_breakdown() -> dict[str, float]:
    rows = psql("""SELECT stage, round(EXTRACT(EPOCH FROM max(finished_at) - min(started_at))::numeric, 2)
                   FROM sync.stage_runs WHERE run_id = (SELECT max(id) FROM sync.runs) GROUP BY stage""")
    return {line.split("|")[0]: float(line.split("|")[1]) for line in rows.splitlines() if line}


def ensure_dlt() -> Path | None:
    py = VENV_DLT / "bin" / "python"
    if not py.exists():
        try:
            sh(sys.executable, "-m", "venv", str(VENV_DLT))
            sh(str(py), "-m", "pip", "install", "-q", "dlt[postgres]==1.31.*", "pyarrow")
        except subprocess.CalledProcessError as exc:
            print(f"dlt could not be installed, skipping the peer: {exc.stderr[-500:]}")
            return None
    return py


def run_dlt(py: Path, day1: Path, day2: Path) -> tuple[float, float]:
    psql("DROP DATABASE IF EXISTS dlt_bench WITH (FORCE)", db="postgres")
    psql("CREATE DATABASE dlt_bench", db="postgres")
    shutil.rmtree(Path.home() / ".dlt" / "pipelines" / "feedsync_bench", ignore_errors=True)
    # dlt's credentials demand a password; with the local trust auth the server ignores it.
    dsn = f"{PG}/dlt_bench".replace("://postgres@", "://postgres:unused@")
    out1 = sh(str(py), str(HERE / "dlt_load.py"), str(day1), dsn)
    out2 = sh(str(py), str(HERE / "dlt_load.py"), str(day2), dsn)
    return float(out1.strip().splitlines()[-1]), float(out2.strip().splitlines()[-1])


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
    floor = timed(lambda: sh("psql", DSN, "-qc", f"\\copy ({select}) TO '{floor_file}' WITH (FORMAT csv)"))
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

    with psycopg.connect(DSN) as conn:
        cfg = ExportConnection(name="bench-transcripts", kind="transcript_export")
        window = Window(datetime.fromisoformat(start), datetime.fromisoformat(end))
        query = transcript_export.query(cfg, profile_attributes(conn), window).as_string(conn)
    return " ".join(query.split("\n"))


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


def replace_section(path: Path, heading: str, lines: list[str]) -> None:
    """Put lines (a section starting with a line that starts with heading, after a blank line) in
    place of that section of the file, up to the next "## " heading; appended when there is none."""
    text = path.read_text().splitlines()
    start = next((i for i, line in enumerate(text) if line.startswith(heading)), None)
    body = lines[1:] if lines and lines[0] == "" else lines
    if start is None:
        text += ["", *body]
    else:
        end = next((i for i in range(start + 1, len(text)) if text[i].startswith("## ")), len(text))
        while end > start and text[end - 1] == "":
            end -= 1
        text[start:end] = body
    path.write_text("\n".join(text) + "\n")


def main() -> None:
    if ONLY == "bundle":
        bundle_bench()
        return
    if ONLY == "hierarchy":  # a quick probe of one target: the bundle against the users import of its people
        day1, _ = feeds(BUNDLE_PEOPLE)
        fresh_database()
        up = Up()
        try:
            users = up.import_file(day1, day1.name)
        finally:
            up.stop()
        _, secs = bundle_bench()
        print(f"users {users:.1f} s, bundle {secs:.1f} s, bundle / users {secs / users:.2f} (target <= 3)", flush=True)
        return
    if ONLY == "export":
        export_bench()
        return
    if ONLY == "journal":  # only the journal's cost at 1M, appended to RESULTS.md
        lines = journal_cost(*feeds(1_000_000))
        with (HERE / "RESULTS.md").open("a") as f:
            f.write("\n".join(lines) + "\n")
        return
    if ONLY == "xapi":  # the xAPI case alone: its section of RESULTS.md replaced, the rest left alone
        lines = importlib.import_module("benchmarks.xapi").xapi_bench()
        replace_section(HERE / "RESULTS.md", "## xAPI import", lines)
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
        if n in DLT_SIZES and (py := ensure_dlt()) is not None:
            row["dlt_empty"], row["dlt_changed"] = run_dlt(py, day1, day2)
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
        ratios["hierarchy bundle 1M / users import of the same 1M people, empty store (target <= 3)"] = (
            f"{bundle_secs / one_m['feedsync_empty']:.2f}"
        )
    notes += export_bench()
    notes += importlib.import_module("benchmarks.xapi").xapi_bench()
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
        "| dlt empty s | dlt 10% changed s | worker peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        dlt_e = f"{r['dlt_empty']:.1f}" if "dlt_empty" in r else "—"
        dlt_c = f"{r['dlt_changed']:.1f}" if "dlt_changed" in r else "—"
        lines.append(
            f"| {r['rows']:,} | {r['floor_unlogged']:.1f} | {r['floor_indexed']:.1f} "
            f"| {r['feedsync_empty']:.1f} ({r['rows'] / r['feedsync_empty'] / 1000:.0f}k) "
            f"| {r['feedsync_changed']:.1f} ({r['rows'] / r['feedsync_changed'] / 1000:.0f}k) "
            f"| {dlt_e} | {dlt_c} | {r['rss_mb']:.0f} |"
        )
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
            cells = [stages.get(s, 0) for s in ("parse", "transform", "load")]
            cells += [load[k] for k in ("prepare", "classify", "insert", "update")]
            lines.append(f"| {feed} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
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
