-- Serving states become an append-only log: each ingest transaction inserts one small row
-- per customer it wrote to (`records`: the encoding of what it wrote), instead of rewriting
-- the customer's whole state row, so writing costs the same however long the history is.
-- A customer's state is the concatenation of their rows, read with one indexed range scan;
-- a reader compacts a customer read in many rows into one. `serving_state` keeps the
-- per-customer head: the encoding's format, whether the log holds the whole history, and
-- the revision a rebuild from the tables compares against.
CREATE TABLE serving_log (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY,
    customer_id TEXT NOT NULL,
    records     BYTEA NOT NULL
);
CREATE UNIQUE INDEX serving_log_by_customer ON serving_log (customer_id, seq);
INSERT INTO serving_log (customer_id, records) SELECT customer_id, records FROM serving_state;
ALTER TABLE serving_state DROP COLUMN records;
