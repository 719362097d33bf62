"""Uploading files into a connection's drop folder (`feedsync upload`, the console's upload).

An upload is one delivery: every file is checked first, copied under a hidden temporary name next
to where it goes, and only then put in place (one rename each). Several files get a manifest
before the first rename (``producers.deliveries``), so the watcher takes them together and one run
imports them all. A failure before every file is in place removes what was placed: none lands. The console streams
a request's files into the same staged files (``Delivery``), each name admitted before its bytes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

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


class Delivery:
    """One upload as it is received: each file admitted by name before its bytes come, written
    under a hidden temporary name in the folder it lands in, and all placed by ``place()``, or
    none (``discard()``). The console streams a request's files into it; ``deliver`` copies files."""

    def __init__(self, settings: Settings, connection: dict[str, Any]) -> None:
        if connection["kind"] not in file_kinds():
            raise Refused(
                f"{connection['name']} is an export connection: it writes files and takes none; "
                "upload to an import connection"
            )
        self.settings = settings
        self.connection = connection
        self.target = registry.drop_target(settings, connection)
        self._seen: set[str] = set()
        self._copies: list[tuple[str, str]] = []  # (temporary path, the name it lands under)

    def admit(self, filename: str) -> None:
        """Refuse a name that could not land, before any of its bytes are written."""
        problem = name_problem(filename)
        if problem is not None:
            raise Refused(f"not uploaded: {problem}")
        if filename in self._seen:
            raise Refused(
                f"not uploaded: two files are named {safefile.escaped(filename)!r}; one upload holds a name once"
            )
        self._seen.add(filename)
        relative = PurePosixPath((self.target / filename).relative_to(self.settings.drop_dir).as_posix())
        why = takeable.problem(self.connection, relative)
        if why is not None:
            raise Refused(
                f"{safefile.escaped(filename)}: not uploaded: {self.connection['name']} would never take it: {why}"
            )

    def stage(self, filename: str) -> BinaryIO:
        """A new hidden temporary file for an admitted name: write its bytes, then ``finish`` it."""
        self.target.mkdir(parents=True, exist_ok=True)
        # A short temporary name: a name that fills the filesystem's limit leaves no room for affixes.
        fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=self.target)
        self._copies.append((tmp, filename))
        return os.fdopen(fd, "wb")

    @staticmethod
    def finish(out: BinaryIO) -> None:
        out.flush()
        os.fsync(out.fileno())
        out.close()

    @property
    def files(self) -> int:
        return len(self._copies)

    def place(self) -> list[Path]:
        """Every staged file in place, as one delivery (a manifest first when there are several)."""
        placed: list[Path] = []
        manifest: Path | None = None
        try:
            if len(self._copies) > 1:
                manifest = deliveries.write(self.target, [filename for _, filename in self._copies])
            for tmp, filename in self._copies:
                os.replace(tmp, self.target / filename)
                placed.append(self.target / filename)
                if settle.wants_marker(self.connection["config"]):
                    settle.marker_of(self.target / filename).touch()  # the file is complete: it may be taken now
        except OSError as exc:
            _undo(self._copies, placed, manifest, self.connection)
            raise self.folder_refused(exc) from None
        except BaseException:
            _undo(self._copies, placed, manifest, self.connection)
            raise
        self._copies = []
        return placed

    def discard(self) -> None:
        """Remove every staged file: nothing of this upload lands."""
        _undo(self._copies, [], None, self.connection)
        self._copies = []

    def folder_refused(self, exc: OSError) -> Refused:
        return Refused(
            f"not uploaded: the drop folder of {self.connection['name']} could not take the files ({exc.strerror}); "
            "nothing of this upload was placed: free space or fix the folder's permissions and upload again"
        )


def deliver(settings: Settings, connection: dict[str, Any], files: list[tuple[Path, str]]) -> list[Path]:
    """Put ``files`` (source, name it lands under) into the connection's drop folder as one delivery."""
    delivery = Delivery(settings, connection)
    for source, filename in files:
        problem = name_problem(filename)
        if problem is not None:
            raise Refused(f"not uploaded: {problem}")
        if not source.is_file():
            raise Refused(f"{safefile.escaped(filename)}: no such file")
        delivery.admit(filename)
    try:
        for source, filename in files:
            out = delivery.stage(filename)
            with out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
                delivery.finish(out)
    except OSError as exc:
        delivery.discard()
        raise delivery.folder_refused(exc) from None
    except BaseException:
        delivery.discard()
        raise
    return delivery.place()


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
