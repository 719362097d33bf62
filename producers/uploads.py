"""Uploading files into a connection's drop folder (`feedsync upload`, the console's upload).

An upload is one delivery: every file is checked first, copied under a hidden temporary name next
to where it goes, and only then put in place (one rename each). Several files get a manifest
before the first rename (``producers.deliveries``), so the watcher takes them together and one run
imports them all. A failure before every file is in place removes what was placed: none lands.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from producers import deliveries, registry, safefile, settle, takeable
from schemas.kinds import file_kinds
from schemas.settings import Settings

#: The longest file name (in bytes, UTF-8) Linux filesystems hold.
NAME_MAX = 255


class Refused(Exception):
    """An upload refused, with one sentence saying why and how to fix it."""


def name_problem(name: str) -> str | None:
    """Why a file cannot be uploaded under ``name``, or None."""
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        return "a file name must not be empty or hold a folder; upload the file itself"
    if name.startswith("."):
        return f"{safefile.escaped(name)!r} starts with '.', and such files are never taken; rename it"
    problem = safefile.name_problem(name)
    if problem is not None:
        return f"{safefile.escaped(name)!r}: {problem}; rename it"
    size = len(name.encode("utf-8"))
    if size > NAME_MAX:
        return (
            f"the name {safefile.escaped(name)[:40]!r}... is {size} bytes long (UTF-8), more than the {NAME_MAX} "
            "a file name may have; shorten it"
        )
    return None


def deliver(settings: Settings, connection: dict[str, Any], files: list[tuple[Path, str]]) -> list[Path]:
    """Put ``files`` (source, name it lands under) into the connection's drop folder as one delivery."""
    name = connection["name"]
    if connection["kind"] not in file_kinds():
        raise Refused(f"{name} is an export connection: it writes files and takes none; upload to an import connection")
    target = registry.drop_target(settings, connection)
    seen: set[str] = set()
    for source, filename in files:
        problem = name_problem(filename)
        if problem is not None:
            raise Refused(f"not uploaded: {problem}")
        if not source.is_file():
            raise Refused(f"{safefile.escaped(filename)}: no such file")
        if filename in seen:
            raise Refused(
                f"not uploaded: two files are named {safefile.escaped(filename)!r}; one upload holds a name once"
            )
        seen.add(filename)
        why = takeable.problem(connection, PurePosixPath((target / filename).relative_to(settings.drop_dir).as_posix()))
        if why is not None:
            raise Refused(f"{safefile.escaped(filename)}: not uploaded: {name} would never take it: {why}")
    target.mkdir(parents=True, exist_ok=True)
    copies: list[tuple[str, str]] = []
    placed: list[Path] = []
    manifest: Path | None = None
    try:
        for source, filename in files:
            copies.append((_copy(source, target), filename))
        if len(files) > 1:
            manifest = deliveries.write(target, [filename for _, filename in files])
        for tmp, filename in copies:
            os.replace(tmp, target / filename)
            placed.append(target / filename)
            if settle.wants_marker(connection["config"]):
                settle.marker_of(target / filename).touch()  # the file is complete: it may be taken now
    except OSError as exc:
        _undo(copies, placed, manifest, connection)
        raise Refused(
            f"not uploaded: the drop folder of {name} could not take the files ({exc.strerror}); nothing of this "
            "upload was placed: free space or fix the folder's permissions and upload again"
        ) from None
    except BaseException:
        _undo(copies, placed, manifest, connection)
        raise
    return placed


def _copy(source: Path, target: Path) -> str:
    # A short temporary name: a name that fills the filesystem's limit leaves no room for affixes.
    fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=target)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def _undo(copies: list[tuple[str, str]], placed: list[Path], manifest: Path | None, connection: dict[str, Any]) -> None:
    """Remove what a failed upload left: none of it lands (a file not yet complete is never taken:
    its delivery's manifest holds it back until the manifest goes, last)."""
    for path in [*(Path(tmp) for tmp, _ in copies), *placed]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        if settle.wants_marker(connection["config"]):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(settle.marker_of(path))
    if manifest is not None:
        deliveries.done(manifest)
