"""Several files uploaded together are one delivery: they are taken together or not at all.

An upload of several files writes a hidden manifest naming them next to where they land
(``.feedsync-delivery-<token>.json``) before the first one is renamed into place. The registry
takes no file a manifest names until every file it names is there, and then registers them all in
one transaction, so the run that claims one of them claims them all: a full feed sent as two parts
is never imported as two runs that each deactivate the other's people. A manifest goes once its
files are registered; one left by an upload that died part-way holds its files back (they show in
`connections list` as waiting) until the upload is repeated or the manifest is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import tempfile
from pathlib import Path

from producers import safefile

PREFIX = ".feedsync-delivery-"
SUFFIX = ".json"
#: A manifest names at most this many bytes of names: anything bigger is not one of ours.
_MAX_MANIFEST_BYTES = 1 << 20


def write(folder: Path, names: list[str]) -> Path:
    """The manifest of a delivery of ``names`` into ``folder``, in place atomically."""
    fd, tmp = tempfile.mkstemp(prefix=PREFIX, suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"files": names}, out)
            out.flush()
            os.fsync(out.fileno())
        path = folder / f"{PREFIX}{secrets.token_hex(8)}{SUFFIX}"
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _names(manifest: os.DirEntry[str]) -> list[str] | None:
    try:
        if not manifest.is_file(follow_symlinks=False):
            return None
        if manifest.stat(follow_symlinks=False).st_size > _MAX_MANIFEST_BYTES:
            return None
        data = json.loads(Path(manifest.path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # gone meanwhile, or not one of ours: it names nothing
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or not all(isinstance(n, str) and _plain(n) for n in files):
        return None
    return files


def _plain(name: str) -> bool:
    # An upload names only visible files of its own folder (producers.uploads.name_problem); a
    # manifest naming anything else was not written by one, and must not reach past the folder or
    # take a hidden file (another upload's temporary, another manifest).
    return bool(name) and not name.startswith(".") and not any(c in name for c in "/\\\0")


def of(path: Path) -> tuple[Path, list[str]] | None:
    """The delivery ``path`` belongs to: the newest manifest in its folder naming it, with the
    names it lists; None for a file dropped on its own."""
    found: tuple[int, Path, list[str]] | None = None
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return None
    for entry in entries:
        if not (entry.name.startswith(PREFIX) and entry.name.endswith(SUFFIX)):
            continue
        names = _names(entry)
        if names is None or path.name not in names:
            continue
        with contextlib.suppress(OSError):
            mtime = entry.stat(follow_symlinks=False).st_mtime_ns
            if found is None or mtime > found[0]:
                found = (mtime, Path(entry.path), names)
    return None if found is None else (found[1], found[2])


def members(path: Path, checked: os.stat_result, names: list[str]) -> list[tuple[Path, os.stat_result]] | None:
    """Every file of the delivery with its lstat(), or None while one has not arrived yet.

    Raises ``safefile.Refused`` when one of them is not a plain file (nothing of it is taken)."""
    found = []
    for name in names:
        member = path.with_name(name)
        if member == path:
            found.append((member, checked))
            continue
        try:
            st = os.lstat(member)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            raise safefile.Refused(f"{safefile.escaped(name)}, a file of the same upload, is not a regular file")
        found.append((member, st))
    return found


def done(manifest: Path) -> None:
    """Its files are registered: the manifest has done its job."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(manifest)


def superseded(folder: Path, taken: list[str]) -> None:
    """Files of ``taken`` were registered: an older manifest naming one of them (an upload that died
    part-way, then was repeated) can never see its delivery whole again, and left in place it would
    hold back the next file dropped under one of its names."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(PREFIX) and entry.name.endswith(SUFFIX) and set(taken) & set(_names(entry) or ()):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
