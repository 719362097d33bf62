"""The long-running processes: worker group, watcher, scheduler, and all three supervised."""

from __future__ import annotations

import sys
import threading
from typing import Any

import click

from producers.cli.base import POSITIVE, cli, fail
from schemas.settings import get_settings
from workers import extras


def _settings_for_children() -> Any:
    """Settings, with the folders as resolved here passed on to every process started from here."""
    import os

    s = get_settings()
    os.environ["FEEDSYNC_DROP_DIR"] = str(s.drop_dir)
    os.environ["FEEDSYNC_EXPORT_DIR"] = str(s.export_dir)
    os.environ["FEEDSYNC_STORE_DIR"] = str(s.store_dir)
    os.environ["FEEDSYNC_KEYS_DIR"] = str(s.keys_dir)
    return s


def _metrics_folder() -> None:
    """An empty folder of this worker group's own for prometheus_client's multiprocess files (the
    message metrics and stage durations its processes write, read by its metrics server), set in
    the environment before any child starts: prometheus_client picks its mode when first imported.
    One named in PROMETHEUS_MULTIPROC_DIR is emptied; otherwise a temporary one is made and removed
    when the group stops."""
    import atexit
    import os
    import shutil
    import tempfile
    from pathlib import Path

    named = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if named:
        folder = Path(named)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
    else:
        folder = Path(tempfile.mkdtemp(prefix="feedsync-metrics-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    # Dramatiq's middleware reads the lower-case names; prometheus_client the upper-case one.
    for name in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir", "dramatiq_prom_db"):
        os.environ[name] = str(folder)


@cli.command()
@click.option("--processes", type=POSITIVE, default=None, help="worker processes (default FEEDSYNC_WORKER_PROCESSES)")
@click.option("--threads", type=POSITIVE, default=None, help="threads per process (default FEEDSYNC_WORKER_THREADS)")
def worker(processes: int | None, threads: int | None) -> None:
    """Run a supervised group of Dramatiq worker processes."""
    from producers.supervisor import Child, Supervisor, dramatiq_argv

    s = _settings_for_children()
    _metrics_folder()
    argv = dramatiq_argv(processes or s.worker_processes, threads or s.worker_threads)
    sys.exit(Supervisor([Child("worker", argv)]).run())


@cli.command()
def watch() -> None:
    """Watch the drop dir and register finished files."""
    import signal

    from producers.watcher import Watcher

    w = Watcher(get_settings())
    signal.signal(signal.SIGTERM, lambda *_: w.stop())
    try:
        w.run()
    except KeyboardInterrupt:
        w.stop()


@cli.command()
def scheduler() -> None:
    """Run periodic duties: schedules, the outbox sweeper and file retention."""
    import signal

    from producers import scheduler as sched

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        sched.run(get_settings(), stopping)
    except KeyboardInterrupt:
        stopping.set()


@cli.command()
@click.option("--processes", type=POSITIVE, default=None)
@click.option("--threads", type=POSITIVE, default=None)
def up(processes: int | None, threads: int | None) -> None:
    """Worker group, watcher and scheduler in one supervised process group."""
    from producers.supervisor import Child, Supervisor, dramatiq_argv, feedsync_argv

    s = _settings_for_children()
    if s.web_bind and not extras.installed("console"):
        fail(str(extras.MissingExtra("console", f"FEEDSYNC_WEB_BIND={s.web_bind} (the admin console)")))
    _metrics_folder()
    children = [
        Child("worker", dramatiq_argv(processes or s.worker_processes, threads or s.worker_threads)),
        Child("watcher", feedsync_argv("watch")),
        Child("scheduler", feedsync_argv("scheduler")),
    ]
    if extras.installed("sftp"):
        children.append(Child("sftp-pull", feedsync_argv("sftp", "pull")))
    else:  # said once here rather than by a child that fails and is restarted for ever
        click.echo("feedsync up: the [sftp] extra is not installed, so no SFTP connection is pulled", err=True)
    if s.web_bind:  # the admin console, where FEEDSYNC_WEB_BIND says
        children.append(Child("web", feedsync_argv("web")))
    sys.exit(Supervisor(children).run())
