"""What every case of `make bench` shares: the bench's database and vhost, the generated users feeds,
the \\copy floors, and a running `feedsync up` with its workers' peak memory sampled.

The database and vhost are module settings read when called, so a case can point them at its own
for its duration (benchmarks/xapi.py does)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from psycopg import sql as q

from producers import feedgen
from tests.waiting import poll_until

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
PG = os.environ.get("FEEDSYNC_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DB = os.environ.get("FEEDSYNC_BENCH_DB", "feedsync_bench")  # a bench of one's own on a shared server
DSN = f"{PG}/{DB}"
VHOST = os.environ.get("FEEDSYNC_BENCH_VHOST", DB)
BROKER = os.environ.get("FEEDSYNC_BENCH_BROKER_URL", f"amqp://guest:guest@127.0.0.1:5672/{VHOST}")
COLUMNS = [c.lower().replace(" ", "_") for c in feedgen.HEADER]


def sh(*args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout


def psql(query: str | q.Composable, db: str | None = None) -> str:
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


#: A run still going after this is stuck, not slow: the largest case (5M people) takes minutes.
RUN_TIMEOUT_S = 6 * 3600


def _finished(before: int) -> str | None:
    """The newest run after ``before``, once it has ended: its status."""
    st = psql(q.SQL("SELECT status FROM sync.runs WHERE id > {} ORDER BY id DESC LIMIT 1").format(before))
    return st if st in ("completed", "completed_with_errors", "failed") else None


class Up:
    """A running `feedsync up`, with every worker process's peak RSS measured."""

    def __init__(self, processes: int | None = None, env: dict[str, str] | None = None) -> None:
        """processes=None: `feedsync up` with its default (half the cores); env: settings on top."""
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
            **(env or {}),
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
        wanted = processes or max(1, (os.cpu_count() or 2) // 2)
        # As many workers as asked for, or after a minute the bench goes on with those that started.
        with contextlib.suppress(AssertionError):
            poll_until(lambda: len(self.workers()) >= wanted, timeout=60, interval=0.2)
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
        st = poll_until(lambda: _finished(before), timeout=RUN_TIMEOUT_S, message="the import's run did not finish")
        assert st != "failed", psql(q.SQL("SELECT error FROM sync.runs WHERE id > {}").format(before))
        return time.perf_counter() - t0

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
        st = poll_until(lambda: _finished(before), timeout=RUN_TIMEOUT_S, message="the bundle's run did not finish")
        assert st == "completed", psql(q.SQL("SELECT status, error, note FROM sync.runs WHERE id > {}").format(before))
        return time.perf_counter() - t0

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
