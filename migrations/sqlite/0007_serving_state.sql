-- Per-customer serving state: every record written for a customer, appended in the same
-- transaction as the record itself, in one compact row, so a customer is scored after one
-- indexed read instead of a read of every table. `records` is a protobuf message whose
-- appended encodings merge into one; `format` is the encoding's version; `complete` says the
-- row holds the customer's whole history (a customer stored before this table existed
-- gets a row that is completed from the tables online); `revision` counts appends, so a
-- completion can tell whether a write came in while it read.
CREATE TABLE serving_state (
    customer_id TEXT PRIMARY KEY NOT NULL,
    format      INTEGER NOT NULL,
    complete    BOOLEAN NOT NULL,
    revision    INTEGER NOT NULL,
    records     BLOB NOT NULL
);
