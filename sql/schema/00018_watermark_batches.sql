-- The read side rebuilds its answers when the watermark moves
-- (GetWatermark), so every committed batch must move it. Neither of its
-- first two parts is enough once a partition is applied out of order
-- across keys (the pipelined consumer): a batch of messages below the
-- partition's next offset moves no offset, and its updated_at (the
-- transaction's start) may be older than that of a batch that began after
-- it and committed first. A count of the batches that advanced each row
-- always moves: every batch writes its partitions' rows, and the row lock
-- it already takes orders the increments.

-- +goose Up
ALTER TABLE applied_offsets ADD COLUMN batches bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE applied_offsets DROP COLUMN batches;
