-- 'arrow': the worker read a clean block with pyarrow, validated, mapped and hashed it, and staged
-- its rows by COPY in the parse's own transaction: the chunk's transform has nothing left to do.
ALTER TABLE sync.chunks DROP CONSTRAINT IF EXISTS chunks_reader_check;
ALTER TABLE sync.chunks ADD CONSTRAINT chunks_reader_check CHECK (reader IN ('copy', 'python', 'arrow'));
