"""The object store case of `make bench` (FEEDSYNC_BENCH_ONLY=s3 runs it alone): the 1M-person users
import (empty store) with the file store in S3 (moto's server on 127.0.0.1, FEEDSYNC_STORE_URL)
against the same import with the local folder, and the S3 import with a second worker group beside
the first (its own folders and group name, as on another host) against one group. The targets: S3
within 15% of the folder; two groups no slower than one."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from benchmarks.harness import HERE, Up, feeds, fresh_database, replace_section

PEOPLE = int(os.environ.get("FEEDSYNC_BENCH_S3_PEOPLE", "1000000"))
BUCKET = "feedsync-bench"


def _moto() -> tuple[object, dict[str, str]]:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",  # moto's, not a secret
        "FEEDSYNC_STORE_URL": f"s3://{BUCKET}/store",
    }
    boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - moto's, not a secret
    ).create_bucket(Bucket=BUCKET)
    return server, env


def _second_group(up: Up, s3_env: dict[str, str], home: str) -> subprocess.Popen[bytes]:
    """`feedsync worker` as a second host would run it: one process, its own folders and group name,
    the same database, broker and bucket."""
    env = {
        **up.env,
        **s3_env,
        "FEEDSYNC_WORKER_GROUP": "bench-second",
        "FEEDSYNC_STORE_DIR": f"{home}/store",
        "FEEDSYNC_DROP_DIR": f"{home}/drop",
        "FEEDSYNC_EXPORT_DIR": f"{home}/export",
        "FEEDSYNC_METRICS_BIND": "127.0.0.1:0",
        "TMPDIR": home,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "producers.cli", "worker", "--processes", "1"],
        env=env,
        stdout=up.log,
        stderr=subprocess.STDOUT,
    )


def _timed(label: str, env: dict[str, str], day1: object, two_groups: bool = False) -> float:
    fresh_database()
    up = Up(processes=1 if two_groups else None, env=env)
    second = None
    try:
        if two_groups:
            home = tempfile.mkdtemp(prefix="feedsync-bench-second-")
            second = _second_group(up, env, home)
            time.sleep(5)  # its worker boots (a bench, not a test: no condition to wait on but the log)
        secs = up.import_file(day1, day1.name)  # type: ignore[arg-type]
    finally:
        if second is not None:
            second.terminate()
            second.wait(timeout=60)
        up.stop()
    print(f"{label}: {secs:.1f} s", flush=True)
    return secs


def s3_bench() -> list[str]:
    day1, _ = feeds(PEOPLE)
    server, s3_env = _moto()
    try:
        local = _timed("local folder", {}, day1)
        s3 = _timed("S3 (moto on 127.0.0.1)", s3_env, day1)
        one = s3  # `feedsync up`'s default on 2 cores: one group of one worker process
        two = _timed("S3, two worker groups of one process each", s3_env, day1, two_groups=True)
    finally:
        server.stop()  # type: ignore[attr-defined]
    lines = [
        "",
        "## Object store",
        "",
        f"{PEOPLE:,} people, empty store, `feedsync up` with its defaults; the file store in S3 "
        "(`FEEDSYNC_STORE_URL`, moto's server on 127.0.0.1) against the local folder. Measured "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `FEEDSYNC_BENCH_ONLY=s3 make bench`.",
        "",
        "| store | seconds | / local |",
        "|---|---|---|",
        f"| local folder | {local:.1f} | 1.00 |",
        f"| S3 (moto) | {s3:.1f} | {s3 / local:.2f} |",
        "",
        "| worker groups (S3) | seconds | / one group |",
        "|---|---|---|",
        f"| one group, one process | {one:.1f} | 1.00 |",
        f"| two groups, one process each (separate folders, as on two hosts) | {two:.1f} | {two / one:.2f} |",
    ]
    print("\n".join(lines))
    return lines


def s3_only() -> None:
    replace_section(HERE / "RESULTS.md", "## Object store", s3_bench())
