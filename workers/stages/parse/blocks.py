"""The block stager's chunk source, for kinds that stage a clean block themselves (``BlockStager``,
e.g. xapi: pyarrow): each block is read, prepared (validated, mapped, hashed) and screened against
the store (on a second connection) in a thread while the block before it is written by COPY, so the
worker's work, the store's probes and the COPY overlap. A block prepared ahead is used only if the
parse asks for the place it starts at; after a block read another way it is dropped. A block the
stager does not prepare, or whose values PostgreSQL refuses, goes to COPY (``CopySource``) and on
from there as any other block."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
import structlog

from schemas.kinds import KindConfig
from schemas.messages import ParseFile
from workers import store
from workers.connectors.checks import Chunk
from workers.connectors.contract import BlockStager, RawBlock
from workers.files.feedreader import Block, FeedReader, Header
from workers.stages.parse.copyblock import CopySource
from workers.stages.parse.records import RecordSource
from workers.stages.parse.source import Staged

log = structlog.get_logger(__name__)


class Blocks:
    def __init__(
        self,
        reader: FeedReader,
        header: Header,
        stager: BlockStager,
        config: KindConfig,
        chunk: Chunk,
        chunk_rows: int,
    ) -> None:
        self.reader, self.header, self.stager, self.config = reader, header, stager, config
        self.chunk, self.chunk_rows = chunk, chunk_rows
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="block-ahead")
        self._ahead: tuple[int, int, Future[tuple[Block | None, Any]]] | None = None

    def _prepare(self, offset: int, line_no: int) -> tuple[Block | None, Any]:
        block = self.reader.block(offset, line_no, self.chunk_rows)
        if block is None or block.lines == 0:
            return block, None
        raw = RawBlock(
            block.data,
            block.first_line,
            block.lines,
            len(self.header.columns),
            dict(self.header.positions),
            self.reader.encoding,
            self.reader.delimiter,
        )
        prepared = self.stager.prepare_block(self.chunk, self.config, raw)
        if prepared is not None:
            with store.connect() as conn:
                prepared = self.stager.screen_block(conn, self.chunk, self.config, prepared)
        return block, prepared

    def get(self, offset: int, line_no: int) -> tuple[Block | None, Any]:
        """The block at (offset, line_no), as ``FeedReader.block`` gives it, and what the kind
        prepared of it (None: the block is for COPY and the SQL transform)."""
        if self._ahead is not None and self._ahead[:2] == (offset, line_no):
            future = self._ahead[2]
        else:
            if self._ahead is not None:
                self._ahead[2].cancel()
            future = self._pool.submit(self._prepare, offset, line_no)
        self._ahead = None
        block, prepared = future.result()
        if block is not None and block.lines == self.chunk_rows:
            nxt = (block.end, line_no + block.lines)
            self._ahead = (*nxt, self._pool.submit(self._prepare, *nxt))
        return block, prepared

    def write(self, conn: psycopg.Connection[Any], chunk_no: int, prepared: Any) -> dict[str, int] | None:
        """Stage a prepared block in the chunk's transaction; None, with nothing left behind, when
        PostgreSQL refuses a value (the SQL path then reports it on its row)."""
        chunk = Chunk(self.chunk.run_id, self.chunk.file_id, chunk_no, self.chunk.file_name, self.chunk.columns)
        try:
            with conn.transaction():
                return self.stager.write_block(conn, chunk, prepared)
        except psycopg.errors.DataError as exc:
            log.info("block left to the SQL transform", chunk_no=chunk_no, reason=type(exc).__name__)
            return None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class BlockSource(CopySource):
    def __init__(
        self,
        msg: ParseFile,
        reader: FeedReader,
        header: Header,
        chunk_rows: int,
        records: RecordSource,
        blocks: Blocks,
    ) -> None:
        super().__init__(msg, reader, header, chunk_rows, records)
        self.blocks = blocks

    def _read(self) -> tuple[Block | None, Any]:
        # The block before is staged: let it go before the next is awaited, or the worker holds two
        # prepared blocks while the thread finishes the next (issue #32).
        self._block = self._prepared = None
        return self.blocks.get(*self._at)

    def stage(self, conn: psycopg.Connection[Any], chunk_no: int) -> Staged:
        block, prepared = self._block, self._prepared
        if block is not None and prepared is not None and self.blocks.write(conn, chunk_no, prepared) is not None:
            return self._staged(block, "arrow")
        return super().stage(conn, chunk_no)  # COPY, and the Python reader after it

    def close(self) -> None:
        try:
            self.blocks.close()
        finally:
            super().close()
