"""The admin CLI as a hostile tester or a careless admin drives it (issue 12, cases 12, 17, 18):
one line and a non-zero exit for what does not exist or cannot be, never a traceback; nothing a
file name or a cell holds reaches a terminal or a spreadsheet as a command."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import feedsync, sql
from tests.data import a_run, row_error
from tests.stubpipeline import USERS_TOML


def refused(*args: str, code: int = 1) -> str:
    """Run the CLI expecting a refusal: its exit code, no traceback, one line on stderr."""
    proc = feedsync(*args, check=False)
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    if code == 1:
        assert proc.stderr.startswith("feedsync: ") and proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


def dead_letter(run_id: int | None, *, replayed: bool, age_days: float) -> int:
    ((dl_id,),) = sql(
        """INSERT INTO sync.dead_letters (message_id, queue_name, actor_name, run_id, message, error, attempts,
                                          created_at, replayed_at)
           VALUES (gen_random_uuid()::text, 'feedsync.transform', 'transform_chunk', %s, '{}', 'boom', 5,
                   now() - make_interval(secs => %s * 86400), CASE WHEN %s THEN now() END) RETURNING id""",
        (run_id, age_days, replayed),
    )
    return int(dl_id)


# Case 12 ----------------------------------------------------------------------------------------


def test_the_error_report_csv_neutralises_cells_a_spreadsheet_would_run_as_formulas(settings: Any) -> None:
    run_id = a_run(settings)
    payloads = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"]
    for p in payloads:
        row_error(run_id, "import/user/internal/a.csv", "not an e-mail address", p)
    row_error(run_id, '=HYPERLINK("http://x")', "-bad", "plain", column="=Email")

    out = feedsync("errors", str(run_id), "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    # (text mode reads the CR inside a quoted cell as a line break)
    assert sorted(r["value"] for r in rows if r["value"] != "plain") == sorted(
        "'" + p.replace("\r", "\n") for p in payloads
    )
    last = next(r for r in rows if r["value"] == "plain")
    assert (last["file"], last["message"], last["column_name"]) == ('\'=HYPERLINK("http://x")', "'-bad", "'=Email")
    assert (last["line"], last["column"]) == ("2", "1")  # numbers stay numbers
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values()), row


# Case 17 ----------------------------------------------------------------------------------------


def test_purging_dead_letters_refuses_negative_or_nan_ages_and_keeps_unreplayed_ones(settings: Any) -> None:
    old_replayed = dead_letter(None, replayed=True, age_days=40)
    old_unreplayed = dead_letter(None, replayed=False, age_days=40)
    new = dead_letter(None, replayed=True, age_days=0.5)

    for bad in ("-1", "nan", "inf", "-inf"):
        assert "--older-than" in refused("dlq", "purge", "--older-than", bad)
    assert sql("SELECT count(*) FROM sync.dead_letters") == [(3,)]

    out = feedsync("dlq", "purge", "--older-than", "30").stdout
    assert "purged 1 dead letters" in out and "kept 1 never replayed" in out and "--include-unreplayed" in out
    assert sorted(i for (i,) in sql("SELECT id FROM sync.dead_letters")) == [old_unreplayed, new]
    assert old_replayed not in [i for (i,) in sql("SELECT id FROM sync.dead_letters")]

    assert "purged 0" in feedsync("dlq", "purge", str(old_unreplayed)).stdout
    assert "purged 1" in feedsync("dlq", "purge", str(old_unreplayed), "--include-unreplayed").stdout
    assert [i for (i,) in sql("SELECT id FROM sync.dead_letters")] == [new]


# Case 18 ----------------------------------------------------------------------------------------


def test_a_missing_run_or_dead_letter_is_one_line_and_a_non_zero_exit(settings: Any) -> None:
    run_id = a_run(settings)
    letter = dead_letter(run_id, replayed=True, age_days=1)
    for args, says in [
        (("run", "999"), "no run 999"),
        (("errors", "999", "--csv"), "no run 999"),
        (("approve", "999"), "no run 999"),
        (("reject", "999"), "no run 999"),
        (("cancel", "999"), "no run 999"),
        (("dlq", "show", "999"), "no dead letter 999"),
        (("dlq", "replay", "999"), "no dead letter 999"),
        (("dlq", "replay", "--run", "999"), "no run 999"),
        (("dlq", "purge", "999", str(letter)), "no dead letter 999"),
    ]:
        assert says in refused(*args), args
    assert sql("SELECT count(*) FROM sync.dead_letters") == [(1,)]  # a mistyped id purged nothing


def test_numbers_that_cannot_be_are_refused_without_a_traceback(settings: Any) -> None:
    for args in (("history", "--limit", "-1"), ("history", "--limit", "0"), ("history", "--limit", "nan")):
        assert "--limit" in refused(*args, code=2)
    assert "--threads" in refused("worker", "--threads", "0", code=2)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'[[connections]]\nname = "hr"\x00\nkind = "users"\n', "not valid TOML"),
        (b"[[connections]]\nname = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
        (b'[[connections]]\nname = "hr"\nkind = "users"\npath = "import/\xff\xfe/*.csv"\n', "c.toml:4: column 16"),
        (b"x = " + b"{a = " * 3000 + b"1" + b"}" * 3000 + b"\n", "nested too deeply"),
    ],
)
def test_a_connections_file_that_is_not_toml_is_refused_in_a_sentence(
    settings: Any, tmp_path: Path, content: bytes, says: str
) -> None:
    conf = tmp_path / "c.toml"
    conf.write_bytes(content)
    proc = feedsync("connections", "apply", str(conf), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("feedsync: refused, nothing applied:") and says in proc.stderr, proc.stderr
    assert len(proc.stderr) < 1000
    assert sql("SELECT count(*) FROM sync.connections") == [(0,)]


@pytest.mark.parametrize(
    "path",
    [
        "./import/user/internal/*.csv",
        "/srv/feeds/import/*.csv",
        "import/../../etc/*.csv",
        "import//x/*.csv",
        "import/user/",
        "import\\user\\*.csv",
        "import/.hidden/*.csv",
    ],
)
def test_a_path_pattern_that_can_never_match_is_refused_at_apply_naming_its_line(
    settings: Any, tmp_path: Path, path: str
) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(USERS_TOML.replace('path = "import/user/internal/*.csv"', f"path = '{path}'"))
    line = conf.read_text().splitlines().index(f"path = '{path}'") + 1
    proc = feedsync("connections", "apply", str(conf), check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"c.toml:{line}: connections[0] path: path {path!r}" in proc.stderr, proc.stderr
    assert sql("SELECT count(*) FROM sync.connections") == [(0,)]


def test_file_names_with_control_characters_are_shown_escaped_in_every_listing(settings: Any) -> None:
    evil = "import/user/internal/\x1b[2J\x1b]0;pwned\x07a\u202egpj.csv"
    run_id = a_run(settings, evil)
    row_error(run_id, evil, "not an e-mail address", "\x1b[31mred")
    dead_letter(run_id, replayed=False, age_days=0)
    sql("UPDATE sync.dead_letters SET error = %s", (f"{evil}: \x9b31m broke",))
    sql("UPDATE sync.runs SET error = %s, note = %s", (f"{evil} was rejected", f"took {evil}"))

    outputs = {
        "run": feedsync("run", str(run_id)).stdout,
        "errors": feedsync("errors", str(run_id)).stdout,
        "history": feedsync("history").stdout,
        "dlq list": feedsync("dlq", "list").stdout,
        "run --json": feedsync("run", str(run_id), "--json").stdout,
        "errors --json": feedsync("errors", str(run_id), "--json").stdout,
        "dlq list --json": feedsync("dlq", "list", "--json").stdout,
    }
    for name, out in outputs.items():
        raw = [ch for ch in ("\x1b", "\x07", "\u202e", "\x9b") if ch in out]
        assert not raw, (name, raw, out)
    assert "\\x1b[2J\\x1b]0;pwned\\x07a\\u202egpj.csv" in outputs["run"]
    assert "\\x1b[2J" in outputs["errors"] and "\\x9b31m" in outputs["dlq list"]
    # JSON stays JSON, and means the same names.
    assert json.loads(outputs["run --json"])["files"][0]["file"] == evil
    assert json.loads(outputs["dlq list --json"])[0]["error"].endswith("\x9b31m broke")


def test_a_relative_drop_dir_is_resolved_once_and_shown_by_status(settings: Any, tmp_path: Path) -> None:
    env = {**os.environ, "FEEDSYNC_DROP_DIR": "var/drop", "FEEDSYNC_EXPORT_DIR": "../out"}
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "producers.cli", "status", "--json"],
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    shown = json.loads(proc.stdout)
    assert shown["drop_dir"] == str((work / "var/drop").resolve())
    assert shown["export_dir"] == str((tmp_path / "out").resolve())
    assert shown["runs"] == {"queued": 0, "in_progress": 0, "awaiting_approval": 0} and shown["dead_letters"] == 0
