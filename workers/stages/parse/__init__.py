"""Parse: stream one file into per-chunk staging tables, chunk by chunk.

stage.py ..... the actor: the stored bytes checked, the header against the mapping, then the chunks;
               a bad file rejected on its own; the fan-in after the last file
chunks.py .... the file's chunk source, chosen once (chunk_source), and the chunk loop that drives
               it: claim a chunk, stage it, record its lines, row errors and transform message in
               one transaction
source.py .... the chunk source interface (ChunkSource: seek, next_chunk, stage, close) and Staged
records.py ... RecordSource: the Python reader, every bad row on its own; every workbook
copyblock.py . CopySource: COPY of a block of whole lines as it is (PostgreSQL parses the CSV),
               the lines COPY could read differently or refuses through its RecordSource
blocks.py .... BlockSource: a kind's block stager (xapi: pyarrow), preparing the next block while
               one is written; a block it leaves goes to COPY
"""

from workers.stages.parse.stage import parse_file

__all__ = ["parse_file"]
