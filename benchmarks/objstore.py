"""The object store case of `make bench` (FEEDSYNC_BENCH_ONLY=s3 runs it alone): the 1M-person users
import (empty store) with the file store in S3 (moto's server on 127.0.0.1, FEEDSYNC_STORE_URL)
against the same import with the local folder. The target: S3 within 15% of the folder."""

from __future__ import annotations

import os
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


def s3_bench() -> list[str]:
    day1, _ = feeds(PEOPLE)
    timings: dict[str, float] = {}
    server, s3_env = _moto()
    try:
        for label, env in (("local folder", {}), ("S3 (moto on 127.0.0.1)", s3_env)):
            fresh_database()
            up = Up(env=env)
            try:
                timings[label] = up.import_file(day1, day1.name)
            finally:
                up.stop()
            print(f"{label}: {timings[label]:.1f} s", flush=True)
    finally:
        server.stop()  # type: ignore[attr-defined]
    local, s3 = timings["local folder"], timings["S3 (moto on 127.0.0.1)"]
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
    ]
    print("\n".join(lines))
    return lines


def s3_only() -> None:
    replace_section(HERE / "RESULTS.md", "## Object store", s3_bench())
