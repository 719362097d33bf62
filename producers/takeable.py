"""Will a file be taken? ``upload`` refuses a file no connection would ever take (it would sit in
the drop dir in silence), and ``connections list`` shows the files sitting in a connection's
folder: those waiting to be taken and those ignored, with why."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from producers import registry, safefile, settle
from schemas import pathpattern
from schemas.kinds import connection_from_json
from schemas.providers import FileNameProblem
from schemas.settings import Settings
from workers.connectors import import_kind

#: Containers and workbooks a CSV kind never reads: refused at upload rather than rejected later.
_NOT_CSV = (".zip", ".gz", ".7z", ".rar", ".xlsx", ".xlsm", ".xls", ".ods")


def problem(connection: dict[str, Any], rel: PurePosixPath) -> str | None:
    """Why ``connection`` will never take the file at ``rel`` (relative to the drop dir), or None."""
    config = connection["config"]
    if not registry.is_candidate_name(rel):
        return "its name starts with '.' or ends with a temporary suffix (.part, .tmp ...), which are never taken"
    if not pathpattern.matches(config["path"], rel.as_posix()):
        return f"it does not match the connection's path {config['path']!r}"
    try:
        spec = import_kind(connection["kind"]).file_spec(connection_from_json(config), rel.name)
    except FileNameProblem as exc:
        return str(exc)
    if spec.format == "csv" and rel.name.lower().endswith(_NOT_CSV):
        return f"a {connection['kind']} connection reads CSV files, and {rel.name!r} is not one"
    return None


def files_in_folder(settings: Settings, connection: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, Any]:
    """The files sitting in the connection's upload folder (and below, for a ``**`` path) that no
    other connection takes: waiting to be taken (settling, or for their marker) or ignored."""
    folder = registry.drop_target(settings, connection)
    deep = pathpattern.ANY_DEPTH in connection["config"]["path"]
    waiting, ignored = [], []
    for root, dirs, files in os.walk(folder) if folder.is_dir() else ():
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if deep else []
        for name in sorted(files):
            rel = PurePosixPath(Path(root, name).relative_to(settings.drop_dir).as_posix())
            if not registry.is_candidate_name(rel) or settle.is_marker(Path(root, name)):
                continue  # being written, or a marker: not a feed
            if any(o["name"] != connection["name"] and registry.match_connections(rel, [o]) for o in others):
                continue  # another connection's file
            if pathpattern.matches(connection["config"]["path"], rel.as_posix()):
                waiting.append(safefile.escaped(rel.as_posix()))  # a name the kind refuses is rejected in its run
            else:
                ignored.append(
                    {
                        "file": safefile.escaped(rel.as_posix()),
                        "why": f"it does not match the connection's path {connection['config']['path']!r}",
                    }
                )
    return {"waiting": waiting, "ignored": ignored}
