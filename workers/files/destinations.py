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
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, cast

from workers.files.disk import fsync_dir
from workers.files.objects import FileStore


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


class StoredFirst:
    """An export written to the object store before its destination: the rows stream into a spool
    file of this message's own, go up to ``key`` in the store (SHA-256 checked), and are delivered
    from there, so what reached the destination is what the store holds for the run."""

    def __init__(self, inner: Destination, files: FileStore, key: str) -> None:
        self.inner, self.files, self.key = inner, files, key

    def describe(self) -> str:
        return self.inner.describe()

    @contextlib.contextmanager
    def write(self, name: str) -> Iterator[tuple[Sink, Written]]:
        spooled = Written(name)
        with tempfile.TemporaryDirectory(prefix="feedsync-export-") as tmp:
            spool = Path(tmp) / name
            with open(spool, "wb") as raw:
                yield _Counting(raw, spooled), spooled
            digest = spooled._hash.hexdigest()
            self.files.put(self.key, spool, digest)
        with self.files.open(self.key, digest) as stored, self.inner.write(name) as (sink, written):
            while block := stored.read(1 << 20):
                sink.write(block)
        spooled.name, spooled.bytes, spooled.sha256 = written.name, written.bytes, written.sha256
