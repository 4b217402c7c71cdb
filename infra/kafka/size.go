package kafka

import "context"

// Size returns how many messages topic holds: the sum over its partitions
// of high minus low watermark.
func (l *Log) Size(ctx context.Context, topic string) (int64, error) {
	hi, err := l.HighWatermarks(ctx, topic)
	if err != nil {
		return 0, err
	}
	lo, err := l.LowWatermarks(ctx, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for p, h := range hi {
		n += h - lo[p]
	}
	return n, nil
}
