"""Reading a dropped file without being led outside the drop dir.

Anyone who can write to the drop dir can rename a symbolic link over a file after it was checked,
or hard-link a file from elsewhere into it. So a file is opened once, without following a link,
and what was opened is checked (a regular file, the very inode that was checked, one link,
really inside the drop dir); then the hash is taken from that descriptor and the move into the
store is verified to have moved that same inode.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
import unicodedata
from pathlib import Path

from workers.files.disk import BLOCK


class Refused(Exception):
    """A dropped file feedsync will not read; ``str()`` says why, in words for the admin."""


def open_checked(path: Path, checked: os.stat_result, drop_dir: Path) -> int:
    """Open ``path`` read-only and return the descriptor, or raise Refused. ``checked`` is the
    lstat() the caller decided on: the opened file must be that inode."""
    try:
        # O_NONBLOCK: a FIFO renamed into place must not hang the watcher waiting for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Refused("it is a symbolic link") from None
        raise
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise Refused("it is not a regular file")
        if (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino):
            raise Refused("it was replaced by another file while it was being checked")
        if opened.st_nlink != 1:
            raise Refused("it has more than one hard link (a hard link can point outside the drop dir)")
        real = _opened_path(fd)
        if real is not None and not real.is_relative_to(drop_dir.resolve()):
            raise Refused("it is outside the drop dir")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _opened_path(fd: int) -> Path | None:
    """Where the opened file really is (Linux), whatever links its path went through."""
    with contextlib.suppress(OSError):
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    return None


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def move_opened(fd: int, src: Path, dst: Path) -> None:
    """Move the file opened as ``fd`` from ``src`` to ``dst``. A rename moves whatever ``src``
    names now, so the result is checked, and anything else put back; across filesystems the
    store gets a copy of what was opened, synced before ``src`` is unlinked."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    opened = os.fstat(fd)
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_opened(fd, dst)
        with contextlib.suppress(FileNotFoundError):
            if same_file(os.lstat(src), opened):
                os.unlink(src)
        return
    if not same_file(os.lstat(dst), opened):
        os.replace(dst, src)
        raise Refused("it was replaced by another file while it was being taken")


def _copy_opened(fd: int, dst: Path) -> None:
    tmp_fd, tmp = tempfile.mkstemp(prefix=".incoming.", suffix=".part", dir=dst.parent)
    try:
        with os.fdopen(tmp_fd, "wb") as out:
            offset = 0
            while block := os.pread(fd, BLOCK, offset):
                out.write(block)
                offset += len(block)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def name_problem(name: str) -> str | None:
    """Why a file name cannot be taken (it would break logs, the database or a terminal), or None."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return "its name contains control characters"
    return None


def escaped(name: str) -> str:
    """A file name fit for one log line: undecodable bytes and control characters escaped."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def move_back(src: Path, dst: Path) -> None:
    """Return a stored file to the drop dir (an intake that did not commit); works across filesystems."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(src, dst)
