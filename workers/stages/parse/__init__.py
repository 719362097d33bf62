"""Parse: stream one file into per-chunk staging tables, chunk by chunk.

stage.py ..... the actor: the stored bytes checked, the header against the mapping, then the chunks;
               a bad file rejected on its own; the fan-in after the last file
chunks.py .... the chunk loop: claim a chunk, stage it by one of the readers, record its lines,
               row errors and transform message in one transaction
copyblock.py . COPY of a block of whole lines as it is (PostgreSQL parses the CSV)
blocks.py .... a kind's block stager (xapi: pyarrow), preparing the next block while one is written
records.py ... the Python reader's records: every block COPY refuses or could read differently,
               and every workbook
"""

from workers.stages.parse.stage import parse_file

__all__ = ["parse_file"]
