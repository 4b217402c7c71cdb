-- name: AdvanceOffsets :exec
-- Moves each partition's next offset forward (never back: a redelivered
-- older message must not rewind it) and counts the batch (the watermark's
-- batches), in the transaction's stripe (00019): concurrent batches of
-- one partition do not wait on each other. A stripe's first row counts
-- its batch too: its offset may move nothing (below the partition's), so
-- only the count is sure to move the watermark. Partitions must be
-- distinct.
INSERT INTO applied_offsets AS t (topic, partition, stripe, next_offset, updated_at, last_event_at, batches)
SELECT @topic::text, p.partition, @stripe::smallint, p.next_offset, now(), p.last_event_at, 1
FROM (SELECT unnest(@partitions::integer[]) AS partition, unnest(@next_offsets::bigint[]) AS next_offset,
             -- Go's zero time (sqlc's time.Time cannot be NULL): unknown.
             nullif(unnest(@last_event_ats::timestamptz[]), '0001-01-01 00:00:00+00') AS last_event_at) p
ORDER BY p.partition
ON CONFLICT (topic, partition, stripe) DO UPDATE
SET next_offset = GREATEST(t.next_offset, excluded.next_offset), updated_at = excluded.updated_at,
    batches = t.batches + 1,
    last_event_at = GREATEST(t.last_event_at, excluded.last_event_at);

-- name: ListAppliedOffsets :many
SELECT topic, partition, next_offset, updated_at, last_event_at
FROM applied_offsets_merged
WHERE topic = ANY(@topics::text[])
ORDER BY topic, partition;

-- name: RecordDeadLetter :exec
INSERT INTO dead_letters (topic, partition, "offset", reason, payload)
VALUES (@topic, @partition, @message_offset, @reason, @payload)
ON CONFLICT (topic, partition, "offset") DO NOTHING;
