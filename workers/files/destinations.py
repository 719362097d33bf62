"""Where an export's file goes. A destination takes the bytes as they stream and makes them appear
under the final name only once they are all there and durable; on any failure nothing is left under
the final name (and no ``.part`` either).

``Folder`` writes ``<FEEDSYNC_EXPORT_DIR>/export/<location>/<name>.part``, fsyncs it, renames it into
place and fsyncs the folder (ALM: Home/export/<location>). An SFTP destination plugs in by
implementing ``Destination`` the same way (upload ``name.part``, check, rename):
``workers/files/sftp_destination.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, cast

from workers.files.disk import fsync_dir


@dataclass
class Written:
    """What was delivered: the final name, and the size and SHA-256 of the file's bytes."""

    name: str
    bytes: int = 0
    sha256: str = ""
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)


class Sink(Protocol):
    def write(self, data: bytes | bytearray | memoryview, /) -> int: ...


class Destination(Protocol):
    def describe(self) -> str:
        """Where files go, for the history (never a secret)."""
        ...

    def write(self, name: str) -> contextlib.AbstractContextManager[tuple[Sink, Written]]:
        """A stream for the file's content; on a clean exit the file is in place as ``name``."""
        ...


class _Counting:
    """Passes writes through, counting and hashing the bytes that reach the file."""

    def __init__(self, raw: IO[bytes], written: Written) -> None:
        self._raw, self._written = raw, written

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._raw.write(data)
        self._written.bytes += len(data)
        self._written._hash.update(data)
        return len(data)

    def flush(self) -> None:
        self._raw.flush()


class Folder:
    def __init__(self, root: Path, location: str, *, zipped: bool = False) -> None:
        self.folder = root / "export" / location
        self.zipped = zipped

    def describe(self) -> str:
        return str(self.folder)

    @contextlib.contextmanager
    def write(self, name: str) -> Iterator[tuple[Sink, Written]]:
        final_name = name.removesuffix(".csv") + ".zip" if self.zipped else name
        written = Written(final_name)
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / final_name
        part = self.folder / f"{final_name}.part"
        try:
            with open(part, "wb") as raw:
                counted = _Counting(raw, written)
                if self.zipped:
                    with (
                        zipfile.ZipFile(cast(IO[bytes], counted), "w", zipfile.ZIP_DEFLATED) as zf,
                        zf.open(name, "w", force_zip64=True) as inner,
                    ):
                        yield inner, written
                else:
                    yield counted, written
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(part, final)
            fsync_dir(self.folder)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        written.sha256 = written._hash.hexdigest()
