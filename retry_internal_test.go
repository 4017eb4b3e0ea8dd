package eventsourcing

import (
	"testing"
	"time"
)

func TestRetryDelayBounds(t *testing.T) {
	huge := time.Duration(1<<63 - 1)
	cases := []struct {
		p        RetryPolicy
		n        int
		min, max time.Duration
	}{
		{RetryPolicy{}, 1, 500 * time.Microsecond, time.Millisecond},                   // defaults
		{RetryPolicy{}, 30, 50 * time.Millisecond, 100 * time.Millisecond},             // capped
		{RetryPolicy{MinDelay: time.Millisecond, MaxDelay: huge}, 200, huge / 2, huge}, // no overflow
		{RetryPolicy{MinDelay: -1}, 5, 0, 0},                                           // at once
		{RetryPolicy{MinDelay: time.Second}, 1, 500 * time.Millisecond, time.Second},   // MaxDelay below MinDelay
	}
	for _, c := range cases {
		for i := 0; i < 50; i++ {
			if d := c.p.delay(c.n); d < c.min || d > c.max {
				t.Fatalf("%+v after attempt %d: delay %v outside [%v, %v]", c.p, c.n, d, c.min, c.max)
			}
		}
	}
}
