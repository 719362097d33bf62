"""Which stored files of a connection hold people (names, e-mails): they are removed as soon as
their run has ended, whatever the connection's kind, unless the connection sets retention_days.
A users connection's files all do (``workers/retention.py`` gives the kind 0 days); in a
hierarchy bundle, its user file does, while its units and positions are kept like content feeds."""

from __future__ import annotations

from typing import Any


def names(kind: str, config: dict[str, Any]) -> list[str]:
    """The file names of the connection's people files, for a kind whose other files are kept."""
    if kind != "hierarchy":
        return []
    user = (config.get("files") or {}).get("user") or {}
    return [str(user.get("name") or "user.csv")] if "user" in (config.get("parts") or []) else []
