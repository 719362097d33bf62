"""The chunk source interface: what the chunk loop (``chunks``) needs of a reader. The loop
chooses a file's source once (``chunks.chunk_source``) and then only drives it.

    ChunkSource ........... seek (where it starts, or resumes on a redelivery), next_chunk (read
    │                       ahead outside any transaction), stage (in the chunk's transaction), close
    ├── RecordSource ...... records.py: the Python reader, every bad row on its own line and column
    └── CopySource ........ copyblock.py: COPY of a block of whole lines as it is; the lines COPY
        │                   could read differently or refuses go to its RecordSource
        └── BlockSource ... blocks.py: the kind's block stager (xapi: pyarrow), prepared ahead in a
                            thread; a block it does not prepare, or PostgreSQL refuses, goes to COPY

A source reports what it staged as ``Staged``; ``Staged.reader`` is the value of ``sync.chunks.reader``
("python", "copy", "arrow").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import psycopg

from workers.files.feedreader import RowError


@dataclass(frozen=True, slots=True)
class Staged:
    """One staged chunk: its first line (None: it had no row), its good rows and row errors, the
    (byte offset, line) just past it, whether the file ended in it, and which reader staged it."""

    first_line: int | None
    good: int
    errors: list[RowError]
    end: tuple[int, int]
    exhausted: bool
    reader: str


class ChunkSource(ABC):
    """A file's rows, chunk by chunk. The loop calls ``seek`` once, then for each chunk
    ``next_chunk`` and, in the chunk's transaction after its key is claimed, ``stage``; ``close``
    at the end, whatever happened."""

    @abstractmethod
    def seek(self, offset: int, line_no: int) -> None:
        """Read on from ``offset``, just past line ``line_no``: the first data line, or where the
        last committed chunk ended when a redelivered parse resumes."""

    @abstractmethod
    def next_chunk(self) -> bool:
        """Read the next chunk's start ahead, outside any transaction. False: the file has ended
        (``stage`` then stages a chunk with no row, which the loop reports for a file's first chunk)."""

    @abstractmethod
    def stage(self, conn: psycopg.Connection[Any], chunk_no: int) -> Staged:
        """Stage the chunk ``next_chunk`` read ahead into its raw table, in the caller's transaction."""

    def close(self) -> None:  # noqa: B027 -- most sources hold nothing to release
        """Release what the source holds (a thread, an open file)."""
