"""Transform: map, validate and hash one chunk in SQL; bad rows become row errors. The last
chunk of the run to finish queues the load (fan-in in PostgreSQL)."""

from __future__ import annotations

from schemas.kinds import connection_from_json
from schemas.messages import TransformChunk
from schemas.settings import get_settings
from workers import failpoints, store
from workers.connectors import import_kind
from workers.connectors.checks import Chunk
from workers.runs import route
from workers.runs.stage import StageTx, run_stage
from workers.stages import stage_actor


@stage_actor(TransformChunk)
def transform_chunk(msg: TransformChunk) -> None:
    def body(tx: StageTx) -> None:
        ctx = store.fetch_one(
            tx.conn,
            # FOR SHARE: a parse rejecting this file waits for this transform, and a transform
            # that starts after the rejection sees it; the load drops what was staged before it.
            """SELECT r.kind, r.config, f.original_path, rf.columns, rf.status,
                      (SELECT c.reader FROM sync.chunks c
                       WHERE c.run_id = rf.run_id AND c.file_id = rf.file_id AND c.chunk_no = %s) AS reader
               FROM sync.run_files rf JOIN sync.runs r ON r.id = rf.run_id JOIN sync.feed_files f ON f.id = rf.file_id
               WHERE rf.run_id = %s AND rf.file_id = %s FOR SHARE OF rf""",
            (msg.chunk_no, msg.run_id, msg.file_id),
        )
        assert ctx is not None
        if ctx["status"] == "rejected":
            tx.counts = {"skipped_rejected_file": 1}
            return
        failpoints.hit("transform.start")
        # The chunk's skip of unchanged rows joins what it set aside back to the chunk: with the
        # default 4 MB that join sorted to disk for every 50,000-row chunk of a changed day.
        tx.conn.execute("SELECT set_config('work_mem', %s, true)", (get_settings().load_work_mem,))
        if ctx["reader"] == "arrow":
            # Validated and staged by the parse, in the chunk's own transaction: only the fan-in is left.
            tx.counts = {"staged_by_parse": 1}
        else:
            chunk = Chunk(msg.run_id, msg.file_id, msg.chunk_no, ctx["original_path"], ctx["columns"] or {})
            config = connection_from_json(ctx["config"])
            tx.counts = import_kind(ctx["kind"]).transform_chunk(tx.conn, chunk, config)
        tx.after_success.append(lambda t: route.advance_if_ready(t.conn, msg.run_id, t.outbox))

    run_stage(msg, body)
