"""The optional parts (pyproject's extras: console, sftp, arrow) are loaded where they are used and
nowhere else: a worker that imports its actors, and `feedsync --help`, load none of them; the console,
an SFTP export and a users block load theirs. Where one is not installed, what needs it says which
extra to install, and the users and xapi blocks take the SQL transform.

What is loaded is looked at in a fresh interpreter, since this test process has loaded everything
already. "Not installed" is ``sys.modules[name] = None``: importing the module then raises
ModuleNotFoundError, as for a package that is absent, and ``find_spec`` finds nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from producers import queries
from tests.conftest import sql
from tests.data import a_run
from tests.stubpipeline import HEADER, Pipeline
from workers import extras

OPTIONAL = {m for modules in extras.EXTRAS.values() for m in modules}

_PRELUDE = """
import json, sys
for name in {blocked!r}:
    sys.modules[name] = None
"""
# The last line of output: every module loaded, for the test to look at.
_REPORT = """
print(json.dumps(sorted(m for m, module in sys.modules.items() if module is not None)))
"""


def _run(code: str, tmp_path: Path, *, blocked: tuple[str, ...] = ()) -> tuple[set[str], str, str]:
    """(modules loaded, what the code printed before, stderr) of ``code`` in a fresh interpreter."""
    env = {
        **os.environ,
        "FEEDSYNC_DROP_DIR": str(tmp_path / "drop"),
        "FEEDSYNC_STORE_DIR": str(tmp_path / "store"),
        "FEEDSYNC_EXPORT_DIR": str(tmp_path / "export"),
        "FEEDSYNC_KEYS_DIR": str(tmp_path / "keys"),
    }
    script = _PRELUDE.format(blocked=blocked) + code + _REPORT
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    *printed, modules = proc.stdout.splitlines()
    return set(json.loads(modules)), "\n".join(printed), proc.stderr


def _tops(modules: set[str]) -> set[str]:
    return {m.partition(".")[0] for m in modules}


def _blocked(extra: str) -> tuple[str, ...]:
    return extras.EXTRAS[extra]


def _cli(*args: str) -> str:
    """Code that runs `feedsync ARGS` and prints its exit code."""
    return f"""
from producers.cli import main
sys.argv = ["feedsync", *{list(args)!r}]
try:
    main()
except SystemExit as exc:
    print("exit", exc.code)
"""


XAPI = """
[[connections]]
name = "lrs"
kind = "xapi"

[connections.xapi]
"actor.mbox" = { column = "Email" }
"verb.id" = { column = "Verb" }
"object.id" = { column = "Activity" }
"""

_XAPI_BLOCK = f"""
from schemas.connections import load_connections_toml
from workers.connectors import block_stager
from workers.connectors.checks import Chunk
from workers.connectors.contract import RawBlock
from workers.connectors.xapi.transform import attributes

(config,) = load_connections_toml({XAPI!r})
print("users", block_stager("users"))
stager = block_stager("xapi")
print("stager", type(stager).__name__, sys.modules.get("pyarrow") is not None)
if stager is not None:
    names = attributes(config)
    header = ["Email", "Verb", "Activity"]
    positions = {{a: header.index(c) for a, c in names.items()}}
    columns = {{a: {{"column": c, "no": positions[a] + 1}} for a, c in names.items()}}
    body = b"".join(
        b"mailto:%s@x.com,http://adlnet.gov/expapi/verbs/completed,https://x.test/c1\\n" % n for n in (b"ann", b"bob")
    )
    raw = RawBlock(body, 2, 2, 3, positions, "utf-8", ",")
    prepared = stager.prepare_block(Chunk(1, 1, 0, "a.csv", columns), config, raw)
    print("valid", prepared.valid)
"""


def _export(tmp_path: Path) -> str:
    host_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    toml = f"""
[[connections]]
name = "transcripts"
kind = "transcript_export"

[connections.sftp]
host = "sftp.lms.example.com"
user = "lms"
host_key = "{host_key}"
key_file = "{tmp_path / "key"}"
remote_dir = "/inbound"
"""
    return f"""
from schemas.connections import load_connections_toml
from schemas.settings import get_settings
from workers.errors import TerminalError
from workers.stages.export import destination_for

(cfg,) = load_connections_toml({toml!r})
print("before", sys.modules.get("asyncssh") is not None)
try:
    print("destination", type(destination_for(get_settings(), cfg)).__name__)
except TerminalError as exc:
    print("terminal", type(exc).__name__, exc)
"""


def test_a_worker_importing_its_actors_loads_none_of_the_optional_parts(tmp_path: Path) -> None:
    loaded, _, _ = _run("import workers.actors", tmp_path)
    # The modules that use them are loaded: what is checked is that they import them lazily.
    assert {"workers.stages.export", "workers.connectors.users", "workers.connectors.xapi"} <= loaded
    assert _tops(loaded) & OPTIONAL == set()


def test_feedsync_help_loads_none_of_the_optional_parts(tmp_path: Path) -> None:
    loaded, printed, _ = _run(_cli("--help"), tmp_path)
    assert printed.endswith("exit 0")
    assert all(f"  {command} " in printed for command in ("admins", "sftp", "web")), printed
    assert _tops(loaded) & OPTIONAL == set()


def test_feedsync_sync_starts_without_the_xapi_models_or_the_http_clients(tmp_path: Path) -> None:
    # What `feedsync sync` imports before its run exists: every kind is listed, none is run here.
    loaded, _, _ = _run("import producers.cli, producers.commands, producers.pull_first", tmp_path)
    assert {"workers.connectors.xapi", "workers.connectors.hierarchy"} <= loaded
    assert _tops(loaded) & {"ralph", "httpx", "authlib", "joserfc"} == set()


def test_an_xapi_block_loads_pyarrow_at_the_first_block_and_a_users_feed_never_does(
    settings: Any, tmp_path: Path
) -> None:
    # The block's derived ids take its file's SHA-256 from the store: file 1 must be there, whatever
    # ran before (the script's chunk names file 1; the tables start empty, their ids at 1).
    a_run(settings)
    assert sql("SELECT id FROM sync.feed_files") == [(1,)]
    loaded, printed, _ = _run(_XAPI_BLOCK, tmp_path)
    assert printed.splitlines() == ["users None", "stager XapiBlocks False", "valid 2"]
    assert "pyarrow" in _tops(loaded)


def test_without_pyarrow_xapi_blocks_are_left_to_the_row_transform(tmp_path: Path) -> None:
    loaded, printed, _ = _run(_XAPI_BLOCK, tmp_path, blocked=_blocked("arrow"))
    assert printed.splitlines() == ["users None", "stager NoneType False"]
    assert "pyarrow" not in _tops(loaded)


@pytest.mark.parametrize("hidden", [False, True])
def test_a_users_feed_is_staged_by_copy_and_the_sql_transform_with_or_without_pyarrow(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, hidden: bool
) -> None:
    if hidden:  # as if the [arrow] extra were not installed: find_spec finds nothing, an import fails
        monkeypatch.setitem(sys.modules, "pyarrow", None)
    people = "".join(f"p{i}@x.com,First{i},Last{i},,Dept {i % 3}\n" for i in range(6))
    run_id = pipeline.import_files(("import/user/internal/users.csv", HEADER + people + "bad@,Bad,Mail,,X\n"))
    assert [(e["line"], e["code"]) for e in queries.errors(run_id)] == [(8, "invalid_email")]
    assert sql("SELECT count(*) FROM lms.users")[0][0] == 6
    assert sql("SELECT DISTINCT reader FROM sync.chunks WHERE run_id = %s", (run_id,)) == [("copy",)]


def test_an_sftp_export_loads_asyncssh_when_its_destination_is_made(tmp_path: Path) -> None:
    loaded, printed, _ = _run(_export(tmp_path), tmp_path)
    assert printed.splitlines() == ["before False", "destination SftpDestination"]
    assert "asyncssh" in _tops(loaded)


def test_an_sftp_export_without_the_sftp_extra_fails_its_run_with_one_sentence(tmp_path: Path) -> None:
    _, printed, _ = _run(_export(tmp_path), tmp_path, blocked=_blocked("sftp"))
    assert printed.splitlines() == [
        "before False",
        "terminal MissingExtra transcripts: pushing the export to sftp://lms@sftp.lms.example.com:22/inbound "
        "needs feedsync's [sftp] extra, which is not installed here: install it (pip install 'feedsync[sftp]', "
        "or 'feedsync[all]') where feedsync runs",
    ]


def test_feedsync_web_loads_the_console_stack(tmp_path: Path) -> None:
    # A --bind without a host is refused after the stack is imported and before anything listens.
    loaded, printed, stderr = _run(_cli("web", "--bind", "8080"), tmp_path)
    assert printed.endswith("exit 1") and "--bind 8080: give HOST:PORT" in stderr
    assert set(extras.EXTRAS["console"]) <= _tops(loaded)
    assert "asyncssh" not in _tops(loaded) and "pyarrow" not in _tops(loaded)


@pytest.mark.parametrize(
    ("extra", "args", "what"),
    [
        ("console", ("web",), "`feedsync web`"),
        ("console", ("admins", "list"), "`feedsync admins list`"),
        ("sftp", ("sftp", "fingerprint", "127.0.0.1", "--port", "1"), "`feedsync sftp fingerprint`"),
        ("sftp", ("sftp", "pull", "--once"), "`feedsync sftp pull`"),
    ],
)
def test_a_command_whose_extra_is_not_installed_says_which_to_install(
    tmp_path: Path, extra: str, args: tuple[str, ...], what: str
) -> None:
    _, printed, stderr = _run(_cli(*args), tmp_path, blocked=_blocked(extra))
    assert printed.endswith("exit 1")
    assert stderr == (
        f"feedsync: {what} needs feedsync's [{extra}] extra, which is not installed here: "
        f"install it (pip install 'feedsync[{extra}]', or 'feedsync[all]') where feedsync runs\n"
    )


def test_a_missing_module_that_is_not_the_extras_is_not_taken_for_it() -> None:
    with pytest.raises(ModuleNotFoundError) as raised, extras.needs("sftp", "a push"):
        import feedsync_no_such_module  # noqa: F401
    assert raised.value.name == "feedsync_no_such_module"
    with (
        pytest.raises(extras.MissingExtra, match=r"^a push needs feedsync's \[sftp\] extra"),
        extras.needs("sftp", "a push"),
    ):
        raise ModuleNotFoundError("asyncssh is absent", name="asyncssh.connection")
