-- Which reader parsed a chunk: 'copy' (PostgreSQL's COPY read the lines as they are) or 'python'
-- (the streaming reader, for lines COPY could read differently; it reports each bad row).
ALTER TABLE sync.chunks ADD COLUMN reader text CHECK (reader IN ('copy', 'python'));
