"""Where a users import's time goes (`python -m benchmarks.profile`): the worker by py-spy, the
database by auto_explain.

The users bench's two days (FEEDSYNC_BENCH_SIZES' first size, default 1,000,000) imported into a
running `feedsync up` with one worker process, which py-spy samples from the file appearing to the
run completed. py-spy is a profiler, not a feedsync dependency: it is installed in a venv of its own
(benchmarks/.venv-spy, like the peers'). The bench database loads auto_explain for its sessions
(``session_preload_libraries``: no server restart, unlike pg_stat_statements), which writes every
statement over 150 ms with its ANALYZE, BUFFERS and WAL plan to the server's log
(FEEDSYNC_BENCH_PG_LOG, Debian's by default; the bench runs as a superuser on a server of its own).
Writes benchmarks/data/profile-<day>.txt (py-spy's collapsed stacks) and
benchmarks/data/explain-<day>.log (the plans), and prints each day's top functions by own samples,
the slowest statements and the run's stage spans.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import DATA, DB, HERE, Up, feeds, fresh_database, psql, sh, stage_breakdown

VENV = HERE / ".venv-spy"
SIZE = int(os.environ.get("FEEDSYNC_BENCH_SIZES", "1000000").split(",")[0])
PG_LOG = Path(os.environ.get("FEEDSYNC_BENCH_PG_LOG", "/var/log/postgresql/postgresql-15-main.log"))
AUTO_EXPLAIN = (
    "session_preload_libraries = 'auto_explain'",
    "auto_explain.log_min_duration = '150ms'",
    "auto_explain.log_analyze = on",
    "auto_explain.log_buffers = on",
    "auto_explain.log_wal = on",
    "auto_explain.log_nested_statements = on",
)


def ensure_spy() -> Path:
    spy = VENV / "bin" / "py-spy"
    if not spy.exists():
        sh(sys.executable, "-m", "venv", str(VENV))
        sh(str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "py-spy==0.4.*")
    return spy


def top(collapsed: Path, n: int = 15) -> list[tuple[str, int]]:
    """The leaf frames with the most samples (a collapsed line is `frame;frame;leaf count`)."""
    own: collections.Counter[str] = collections.Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        own[stack.rsplit(";", 1)[-1]] += int(count)
    return own.most_common(n)


def slowest(log: str, n: int = 12) -> list[tuple[float, int, str]]:
    """The bench database's statements in an auto_explain log, by total ms: (ms, times, first words)."""
    total: dict[str, list[float]] = collections.defaultdict(list)
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if f"@{DB} LOG:  duration:" not in line or i + 1 >= len(lines):
            continue
        ms = float(line.split("duration:")[1].split()[0])
        # The statement's first words (a statement may begin with a line break).
        text = " ".join(" ".join(lines[i + 1 : i + 4]).replace("Query Text:", "").split())[:90]
        total[text].append(ms)
    return sorted(((sum(v), len(v), k) for k, v in total.items()), reverse=True)[:n]


def main() -> None:
    spy = ensure_spy()
    day1, day2 = feeds(SIZE)
    fresh_database()
    for setting in AUTO_EXPLAIN:
        psql(f"ALTER DATABASE {DB} SET {setting}", db="postgres")
    up = Up(processes=1)
    try:
        for label, path in (("empty", day1), ("changed", day2)):
            # The busiest of the group's processes (its metrics server is a fork that shows up too).
            worker = max(up.workers(), key=lambda p: sum(p.cpu_times()[:2]))
            out = DATA / f"profile-{label}.txt"
            rec = subprocess.Popen(
                [
                    str(spy),
                    "record",
                    "--format",
                    "raw",
                    "--rate",
                    "50",
                    "--nonblocking",
                    "-o",
                    str(out),
                    "--pid",
                    str(worker.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            log_from = PG_LOG.stat().st_size if PG_LOG.exists() else 0
            seconds = up.import_file(path, path.name)
            rec.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
            rec.wait(timeout=60)
            print(f"== {label}: {seconds:.1f} s, stages {stage_breakdown()}, load {up.load_profile()}")
            total = sum(int(line.rpartition(" ")[2]) for line in out.read_text().splitlines())
            for frame, count in top(out):
                print(f"  {100 * count / max(total, 1):5.1f}%  {frame}")
            if PG_LOG.exists():
                with PG_LOG.open("rb") as f:
                    f.seek(log_from)
                    plans = f.read().decode(errors="replace")
                (DATA / f"explain-{label}.log").write_text(plans)
                for ms, times, text in slowest(plans):
                    print(f"  {ms / 1000:6.2f} s  x{times:<3} {text}")
    finally:
        up.stop()


if __name__ == "__main__":
    main()
