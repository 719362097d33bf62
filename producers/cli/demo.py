"""`feedsync demo`: the main job on generated data, through a running `feedsync up`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from producers.cli.base import POSITIVE, cli, fail
from producers.cli.history import errors, history
from schemas.settings import get_settings


@cli.command()
@click.option("--rows", type=POSITIVE, default=3000, show_default=True)
@click.option("--bad-rows", type=click.IntRange(min=0), default=5, show_default=True)
def demo(rows: int, bad_rows: int) -> None:
    """Apply a demo connection, drop a generated feed into a running `feedsync up`, show the result."""
    import subprocess
    import tempfile

    from producers import feedgen
    from producers.commands import apply_connections, upload, wait_for_run
    from producers.queries import history as query
    from producers.supervisor import feedsync_argv
    from schemas.connections import load_connections_toml
    from workers.migrations import migrate as run_migrations

    settings = get_settings()
    t0 = time.monotonic()
    run_migrations(settings)
    apply_connections(load_connections_toml(feedgen.DEMO_CONNECTIONS, "demo connections"))
    before = {r["run_id"] for r in query("hr-users", 1000) if r["run_id"] is not None}
    log_path = Path("var") / "demo-up.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    up_log = open(log_path, "wb")  # noqa: SIM115  (closed below, after `up` stops)
    click.echo(f"started `feedsync up` (its logs: {log_path})")
    up_proc = subprocess.Popen(feedsync_argv("up"), stdout=up_log, stderr=subprocess.STDOUT)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stamp = time.strftime("%Y%m%d%H%M%S")
            feed = feedgen.generate_users(
                Path(tmp) / f"users-{stamp}.csv", rows, bad_rows=bad_rows, seed=int(time.time())
            )
            upload(settings, "hr-users", [feed.path])
        click.echo(f"dropped a feed of {rows} people ({bad_rows} bad rows); waiting for the run...")
        deadline = time.monotonic() + 110
        new: list[dict[str, Any]] = []
        while not new and time.monotonic() < deadline:
            new = [r for r in query("hr-users", 20) if r["run_id"] is not None and r["run_id"] not in before]
            time.sleep(0.3)
        if not new:
            fail("no run started within the time limit; is RabbitMQ up? see `feedsync up` logs above")
        wait_for_run(new[-1]["run_id"], timeout_s=max(5.0, deadline - time.monotonic()))
    finally:
        up_proc.terminate()
        up_proc.wait(timeout=90)
        up_log.close()
    click.echo("\n== execution history (feedsync history hr-users) ==")
    ctx = click.get_current_context()
    ctx.invoke(history, connection="hr-users", as_json=False, limit=5)
    click.echo(f"\n== rejected rows of run {new[-1]['run_id']} (feedsync errors {new[-1]['run_id']}) ==")
    ctx.invoke(errors, run_id=new[-1]["run_id"], as_json=False, as_csv=False)
    click.echo(f"\ndemo finished in {time.monotonic() - t0:.1f}s")
