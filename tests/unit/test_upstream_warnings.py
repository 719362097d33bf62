"""A user never sees another project's deprecation notice, and our own warnings still show."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.filterwarnings("default")


def _stderr(*code: str) -> str:
    return _python("-c", "\n".join(code))


def _python(*args: str) -> str:
    # -W default: Python's own defaults, not pytest's "error", as a user's shell would run it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    proc = subprocess.run([sys.executable, "-W", "default", *args], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_feedsync_help_prints_no_warning() -> None:
    stderr = _python("-m", "producers.cli", "--help")
    assert "Warning" not in stderr, stderr


def test_dramatiq_workers_import_without_a_warning() -> None:
    assert "Warning" not in _stderr("import workers.actors", "import workers.files.sftp"), "a worker process warns"


def test_the_filter_is_scoped_to_the_library_that_warns() -> None:
    """The same message raised from our own module still reaches the user."""
    stderr = _stderr("import workers, warnings", "warnings.warn('DSA is deprecated', UserWarning)")
    assert "UserWarning: DSA is deprecated" in stderr
