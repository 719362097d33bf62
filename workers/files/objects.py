"""The file store: where taken feed files (and exports, before their destination) live between stages.

Two implementations of one small interface, chosen by the settings:

- ``LocalStore`` (the default): the folder ``FEEDSYNC_STORE_DIR``, as before. Every process that runs
  a stage must see the same folder, so all workers run on one host (or share a filesystem).
- ``ObjectStore``: S3-compatible object storage, ``FEEDSYNC_STORE_URL=s3://bucket/prefix``. Endpoint,
  region and credentials come from the standard ``AWS_ENDPOINT_URL``, ``AWS_REGION``,
  ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (or the instance's role), never from feedsync's
  TOML. Workers on any number of hosts read the same objects; nothing a stage needs is on another
  process's disk.

The client is boto3 (measured against obstore on moto's server: see the README): puts larger than
``PART_BYTES`` go up as multipart uploads with each part's SHA-256 checked by the server
(``x-amz-checksum-sha256``) and the whole file's SHA-256 kept as the object's metadata; reads are
ranged GETs pinned to the object's ETag (``If-Match``), through ``RangedFile``, a seekable read-only
file object with a read-ahead buffer, so the readers that take a file object work unchanged and a
redelivered parse resumes at its byte offset without downloading the file again.

    FileStoreError (TransientError) .... the store did not answer or refused a request: retried
    BadFileError ....................... the object is missing or is not the bytes registered
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from urllib.parse import urlsplit

from workers import extras
from workers.errors import TransientError

if TYPE_CHECKING:
    from schemas.settings import Settings

#: Multipart part size for puts (S3's minimum part is 5 MiB).
PART_BYTES = 8 << 20
#: What one ranged GET fetches ahead of the reader: few requests, memory bounded whatever the file's size.
READ_AHEAD = 8 << 20
#: The SHA-256 the intake computed, kept with the object as user metadata.
SHA_KEY = "sha256"


class FileStoreError(TransientError):
    """The object store did not answer, or refused a request: retried like any outage."""


class Missing(Exception):
    """No object under that key."""


class Changed(Exception):
    """The object is not the bytes registered under that key."""


class FileStore(Protocol):
    remote: bool

    def describe(self) -> str:
        """Where files are, for ``feedsync status`` (never a secret)."""
        ...

    def put(self, key: str, source: Path, sha256: str) -> None:
        """Store ``source``'s bytes under ``key``; they must hash to ``sha256``."""
        ...

    def open(self, key: str, sha256: str) -> BinaryIO:
        """A seekable read-only file object over the bytes under ``key``. Raises ``Missing``, or
        ``Changed`` when what is stored is not the bytes registered as ``sha256``."""
        ...

    def verify(self, key: str, sha256: str) -> None:
        """Read the whole object and check its SHA-256 (``Missing``, ``Changed``)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; one already gone is fine."""
        ...

    def exists(self, key: str) -> bool: ...


def _sha256_of(f: BinaryIO) -> str:
    h = hashlib.sha256()
    while block := f.read(1 << 20):
        h.update(block)
    return h.hexdigest()


class LocalStore:
    """The store folder on this host (``FEEDSYNC_STORE_DIR``); the intake moves files into it itself."""

    remote = False

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def describe(self) -> str:
        return str(self._settings.store_dir)

    def path(self, key: str) -> Path:
        return self._settings.stored_file(key)

    def put(self, key: str, source: Path, sha256: str) -> None:
        target = self.path(key)
        if target == source:
            return  # the intake moved it into place already
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        with open(source, "rb") as src, open(part, "wb") as dst:
            h = hashlib.sha256()
            while block := src.read(1 << 20):
                h.update(block)
                dst.write(block)
            dst.flush()
            os.fsync(dst.fileno())
        if h.hexdigest() != sha256:
            part.unlink()
            raise Changed(key)
        os.replace(part, target)

    def open(self, key: str, sha256: str) -> BinaryIO:
        try:
            fd = os.open(self.path(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise Missing(key) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise Missing(key)
        return os.fdopen(fd, "rb")

    def verify(self, key: str, sha256: str) -> None:
        with self.open(key, sha256) as f:
            if _sha256_of(f) != sha256:
                raise Changed(key)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(key))

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()


class ObjectStore:
    """S3-compatible object storage through boto3 (the ``[s3]`` extra)."""

    remote = True

    def __init__(self, url: str) -> None:
        with extras.needs("s3", f"the object store {url}"):
            import boto3
            import boto3.exceptions
            import botocore.exceptions
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
        self._errors = botocore.exceptions
        self._upload_failed = boto3.exceptions.S3UploadFailedError
        self._url = url
        parsed = urlsplit(url)
        self._bucket, self._prefix = parsed.netloc, parsed.path.strip("/")
        # Endpoint, region and credentials: boto3's own chain (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, …,
        # the instance role); AWS_REGION is read here too. One client per process, shared by threads.
        self._s3 = boto3.session.Session().client(
            "s3",
            region_name=os.environ.get("AWS_REGION") or None,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=16),
        )
        self._transfer = TransferConfig(
            multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES, max_concurrency=4
        )

    def describe(self) -> str:
        return self._url

    def _key(self, key: str) -> str:
        return f"{self._prefix}/{key}" if self._prefix else key

    def _call(self, key: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(Bucket=self._bucket, Key=self._key(key), **kwargs)
        except self._errors.ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in {"404", "NoSuchKey", "NotFound"}:
                raise Missing(key) from None
            if code in {"412", "PreconditionFailed"}:
                raise Changed(key) from None
            raise FileStoreError(f"the object store {self._url} refused a request: {code}") from exc
        except (self._errors.BotoCoreError, OSError) as exc:
            raise FileStoreError(f"the object store {self._url} did not answer: {type(exc).__name__}") from exc

    def put(self, key: str, source: Path, sha256: str) -> None:
        # Multipart above PART_BYTES; each part's SHA-256 is sent and checked by the server.
        extra = {"ChecksumAlgorithm": "SHA256", "Metadata": {SHA_KEY: sha256}}
        try:
            self._s3.upload_file(str(source), self._bucket, self._key(key), ExtraArgs=extra, Config=self._transfer)
        except (self._upload_failed, self._errors.BotoCoreError, self._errors.ClientError, OSError) as exc:
            raise FileStoreError(f"the object store {self._url} did not take {key}: {type(exc).__name__}") from exc

    def _pinned(self, key: str, sha256: str) -> tuple[str, int]:
        """ETag and size of the object, after checking it carries the SHA-256 the intake recorded."""
        head = self._call(key, self._s3.head_object)
        if head.get("Metadata", {}).get(SHA_KEY) != sha256:
            raise Changed(key)
        return str(head["ETag"]), int(head["ContentLength"])

    def open(self, key: str, sha256: str) -> BinaryIO:
        etag, size = self._pinned(key, sha256)
        return io.BufferedReader(_RangedRaw(self, key, etag, size), buffer_size=READ_AHEAD)

    def read_range(self, key: str, etag: str, start: int, end: int) -> bytes:
        got = self._call(key, self._s3.get_object, Range=f"bytes={start}-{end - 1}", IfMatch=etag)
        data: bytes = got["Body"].read()
        return data

    def verify(self, key: str, sha256: str) -> None:
        etag, _ = self._pinned(key, sha256)
        h = hashlib.sha256()
        got = self._call(key, self._s3.get_object, IfMatch=etag)
        try:
            for chunk in got["Body"].iter_chunks(1 << 20):
                h.update(chunk)
        except (self._errors.BotoCoreError, OSError) as exc:
            raise FileStoreError(f"the object store {self._url} did not answer: {type(exc).__name__}") from exc
        if h.hexdigest() != sha256:
            raise Changed(key)

    def delete(self, key: str) -> None:
        with contextlib.suppress(Missing):
            self._call(key, self._s3.delete_object)

    def exists(self, key: str) -> bool:
        try:
            self._call(key, self._s3.head_object)
        except Missing:
            return False
        return True


class _RangedRaw(io.RawIOBase):
    """The raw side of ``ObjectStore.open``: each ``readinto`` is one ranged GET of the buffer's size."""

    def __init__(self, owner: ObjectStore, key: str, etag: str, size: int) -> None:
        self._owner, self._key, self._etag, self._size = owner, key, etag, size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        end = min(self._size, self._pos + len(view))
        if end <= self._pos:
            return 0
        data = self._owner.read_range(self._key, self._etag, self._pos, end)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


def file_store(settings: Settings) -> FileStore:
    """The store the settings name: the object store of ``FEEDSYNC_STORE_URL``, else the folder."""
    if settings.store_url:
        return _object_store(settings.store_url)
    return LocalStore(settings)


@lru_cache(maxsize=4)
def _object_store(url: str) -> ObjectStore:
    # One client per process and URL: it holds the connection pool (thread-safe, no per-message state).
    return ObjectStore(url)
