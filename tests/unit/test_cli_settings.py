"""A bad FEEDSYNC_ setting stops every `feedsync` command with one sentence naming the variable and
what it takes: never a traceback, never the value (it may be a secret pasted into the wrong place)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import feedsync

PASTED = "hunter2-pasted-here"  # a value that must never be echoed back


@pytest.mark.parametrize(
    ("variable", "value", "takes"),
    [
        ("FEEDSYNC_WEB_TRUSTED_PROXIES", f"127.0.0.1,{PASTED}", "takes IP addresses or networks"),
        ("FEEDSYNC_CHUNK_ROWS", PASTED, "takes a whole number"),
        ("FEEDSYNC_SMTP_TLS", PASTED, "takes one of 'starttls', 'ssl' or 'none'"),
    ],
)
@pytest.mark.parametrize("command", [["status"], ["web", "--bind", "127.0.0.1:0"]])
def test_a_bad_setting_is_one_sentence_naming_the_variable_never_its_value(
    variable: str, value: str, takes: str, command: list[str]
) -> None:
    proc = feedsync(*command, env={**os.environ, variable: value}, check=False, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"feedsync: {variable} {takes}")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert PASTED not in proc.stderr + proc.stdout
