"""Where a users import's worker time goes, by py-spy (`python -m benchmarks.profile`).

The users bench's two days (FEEDSYNC_BENCH_SIZES' first size, default 1,000,000) imported into a
running `feedsync up` with one worker process, which py-spy samples from the file appearing to the
run completed. py-spy is a profiler, not a feedsync dependency: it is installed in a venv of its own
(benchmarks/.venv-spy, like the peers'). Writes benchmarks/data/profile-<day>.txt (py-spy's
collapsed stacks) and prints each day's top functions by own samples and the run's stage spans.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import DATA, HERE, Up, feeds, fresh_database, sh, stage_breakdown

VENV = HERE / ".venv-spy"
SIZE = int(os.environ.get("FEEDSYNC_BENCH_SIZES", "1000000").split(",")[0])


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


def main() -> None:
    spy = ensure_spy()
    day1, day2 = feeds(SIZE)
    fresh_database()
    up = Up(processes=1)
    try:
        for label, path in (("empty", day1), ("changed", day2)):
            (worker,) = up.workers()
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
            seconds = up.import_file(path, path.name)
            rec.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
            rec.wait(timeout=60)
            print(f"== {label}: {seconds:.1f} s, stages {stage_breakdown()}, load {up.load_profile()}")
            total = sum(int(line.rpartition(" ")[2]) for line in out.read_text().splitlines())
            for frame, count in top(out):
                print(f"  {100 * count / max(total, 1):5.1f}%  {frame}")
    finally:
        up.stop()


if __name__ == "__main__":
    main()
