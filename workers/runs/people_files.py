"""Which stored files of a connection hold people (names, e-mails): they are removed as soon as
their run has ended, whatever the connection's kind, unless the connection sets retention_days.
A users connection's files all do (``workers/runs/retention.py`` gives the kind 0 days); each kind declares
which of its files do (``ImportKind.people_files``: in a hierarchy bundle, its user file)."""

from __future__ import annotations

from typing import Any

from workers.connectors import kind_of


def names(kind: str, config: dict[str, Any]) -> list[str]:
    """The file names of the connection's people files, for a kind whose other files are kept."""
    found = kind_of(kind)
    return [] if found.EXPORT else found.people_files(config)
