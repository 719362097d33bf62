"""Config as code stays the truth: a console change is written into the connections file first.

A connection applied from a file gets its changes written into that file's ``[[connections]]``
entry, keeping every comment and the layout (tomlkit); a connection set up in the console goes to
the console's own file (``FEEDSYNC_CONSOLE_CONNECTIONS_FILE``). The whole file is then validated as
``connections apply`` validates it, written (atomically), the connection applied and the change
recorded (``producers.console_changes``), and the page shows the diff. A connection whose file is
unknown (applied before files were recorded) is changed in the database only, and the page says so.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from psycopg import sql
from tomlkit.items import AoT, Comment, Table, Whitespace

from producers import console_changes
from producers.commands import CommandError, apply_connections
from schemas.connections import ConfigError, load_connections_toml, validate_entry
from schemas.kinds import KindConfig, connection_from_json
from schemas.settings import Settings
from workers import store

CONSOLE_FILE_NAME = "console.connections.toml"
_HEADER = (
    "# Connections set up in the feedsync console. Review and keep this file in git like the others:\n"
    "# `feedsync connections apply` of a file that lacks a console change refuses to undo it.\n"
)


@dataclass(frozen=True)
class Saved:
    name: str
    outcome: str  # created | updated | unchanged
    file: Path | None  # None: the connection's file is unknown; changed in the database only
    diff: str
    change_id: int | None  # the sync.console_changes row (None: nothing changed)


def console_file(settings: Settings) -> Path:
    """Where connections created in the console are written."""
    if settings.console_connections_file is not None:
        return settings.console_connections_file.resolve()
    with store.connect() as conn:
        row = store.fetch_one(
            conn,
            sql.SQL(
                """SELECT source_file FROM sync.connections WHERE source_file IS NOT NULL
                   ORDER BY updated_at DESC, id DESC LIMIT 1"""
            ),
        )
    folder = Path(row["source_file"]).parent if row else Path.cwd()
    return (folder / CONSOLE_FILE_NAME).resolve()


def _stored(name: str) -> dict[str, Any] | None:
    with store.connect() as conn:
        return store.fetch_one(
            conn,
            sql.SQL("SELECT config, source_file FROM sync.connections WHERE name = %s AND deleted_at IS NULL"),
            (name,),
        )


def _entry(doc: tomlkit.TOMLDocument, name: str) -> Table | None:
    entries = doc.get("connections")
    if not isinstance(entries, AoT):
        return None
    return next((e for e in entries if e.get("name") == name), None)


def _table(values: dict[str, Any]) -> Table:
    t = tomlkit.table()
    t.update(values)
    t.add(tomlkit.nl())
    return t


def _add_table(entry: Table, key: str, values: dict[str, Any]) -> None:
    """A new sub-table at the end of ``entry``. The comments and blank lines that end the entry
    introduce what follows it in the file (the next connection): they move below the new table."""
    tables = [v for k, v in entry.value.body if isinstance(v, Table)]
    body = (tables[-1] if tables else entry).value.body
    trailing: list[Any] = []
    while body and body[-1][0] is None and isinstance(body[-1][1], Comment | Whitespace):
        trailing.insert(0, body.pop())
    t = tomlkit.table()
    t.update(values)
    entry[key] = t
    if trailing:
        t.value.body.extend(trailing)
    else:
        t.add(tomlkit.nl())


def _set(entry: Table, key: str, value: Any) -> None:
    """One key of an entry: a table is changed key by key (its comments stay), None removes."""
    if value is None:
        entry.pop(key, None)
        return
    current = entry.get(key)
    if isinstance(value, dict) and isinstance(current, Table):
        for sub in [k for k in current if k not in value]:
            del current[sub]
        for sub, v in value.items():
            if current.get(sub) != v:
                current[sub] = v
    elif isinstance(value, dict):
        _add_table(entry, key, value)
    elif current != value:
        entry[key] = value


def _validated(text: str, file: Path, name: str) -> KindConfig:
    try:
        parsed = load_connections_toml(text, str(file))
    except ConfigError as exc:
        raise CommandError(f"refused, nothing written:\n{exc}") from None
    return next(c for c in parsed if c.name == name)


def _write(file: Path, text: str) -> None:
    """Replace ``file`` by ``text`` atomically (a temporary file beside it, renamed), keeping its mode."""
    file.parent.mkdir(parents=True, exist_ok=True)
    mode = file.stat().st_mode & 0o777 if file.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, file)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _diff(file: Path, before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), str(file), str(file) + " (console)"
        )
    )


def _commit(file: Path | None, before: str, after: str, c: KindConfig, by: str) -> Saved:
    """Write the file, apply the connection from it, record the change; the file goes back if the apply fails."""
    if file is not None and after != before:
        try:
            _write(file, after)
        except OSError as exc:
            raise CommandError(
                f"{file} could not be written ({exc.strerror}); nothing changed: let the console's user write "
                "it (or, for new connections, set FEEDSYNC_CONSOLE_CONNECTIONS_FILE to a file it may write)"
            ) from None
    diff = "" if file is None else _diff(file, before, after)
    try:
        outcome = apply_connections(
            [c], source_file=None if file is None else str(file), console=console_changes.Change(by, diff)
        )[0][1]
    except BaseException:
        if file is not None and after != before:
            _write(file, before)
        raise
    changed = outcome != "unchanged"
    return Saved(c.name, outcome, file, diff, console_changes.latest(c.name, by) if changed else None)


def change(name: str, update: dict[str, Any], by: str) -> Saved:
    """Set (or, for None, remove) top-level keys of connection ``name``, in its file when known."""
    row = _stored(name)
    if row is None:
        raise CommandError(f"no connection named {name!r}")
    file = Path(row["source_file"]) if row["source_file"] else None
    if file is not None and file.is_file():
        before = file.read_text(encoding="utf-8")
        doc = tomlkit.parse(before)
        entry = _entry(doc, name)
        if entry is not None:
            for key, value in update.items():
                _set(entry, key, value)
            after = tomlkit.dumps(doc)
            return _commit(file, before, after, _validated(after, file, name), by)
    # The file is unknown, gone, or no longer declares it: the database only, validated the same way.
    base = connection_from_json(dict(row["config"])).model_dump(mode="python", exclude_defaults=True)
    base.update({"name": name, "kind": row["config"]["kind"]})
    for key, value in update.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    config, problems = validate_entry(base)
    if config is None:
        raise CommandError("; ".join(f"{'.'.join(p.loc) or 'connection'}: {p.message}" for p in problems))
    return _commit(None, "", "", config, by)


def create(settings: Settings, entry: dict[str, Any], by: str) -> Saved:
    """Add a new connection (``entry``: already checked with ``validate_entry``) to the console's file."""
    name = str(entry["name"])
    if _stored(name) is not None:
        raise CommandError(f"a connection named {name!r} exists already: choose another name")
    file = console_file(settings)
    before = file.read_text(encoding="utf-8") if file.is_file() else ""
    doc = tomlkit.parse(before or _HEADER)
    entries = doc.get("connections")
    if _entry(doc, name) is not None:
        raise CommandError(f"{file} declares a connection named {name!r} already: apply it, or choose another name")
    table = tomlkit.table()
    for key, value in entry.items():
        table[key] = _table(value) if isinstance(value, dict) else value
    if isinstance(entries, AoT):
        entries.append(table)
    else:
        doc.add(tomlkit.nl())
        doc["connections"] = tomlkit.aot()
        doc["connections"].append(table)
    after = tomlkit.dumps(doc)
    return _commit(file, before, after, _validated(after, file, name), by)
