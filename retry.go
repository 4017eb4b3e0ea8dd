package eventsourcing

import (
	"context"
	"math/rand/v2"
	"time"
)

// RetryPolicy bounds how Handle and Run retry a command that lost a
// concurrency conflict. Each retry reloads the aggregate from the store and
// runs the handler again, so no effect of the failed attempt survives.
// Between attempts it waits a random time between half and all of
// MinDelay*2^(attempt-1), capped at MaxDelay (exponential back-off with
// jitter), or until the context ends.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, the first included.
	// 1 disables retrying; 0 or less means DefaultRetryPolicy's value.
	MaxAttempts int
	// MinDelay is the wait before the first retry (before jitter). Zero
	// means DefaultRetryPolicy's value; negative, retry at once.
	MinDelay time.Duration
	// MaxDelay caps the wait between attempts. Zero means
	// DefaultRetryPolicy's value (or MinDelay, if that is larger).
	MaxDelay time.Duration
}

// DefaultRetryPolicy is the policy of a freshly initialized aggregate: up to
// 10 attempts, waiting from 1 ms up to 100 ms between them.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 10, MinDelay: time.Millisecond, MaxDelay: 100 * time.Millisecond}
}

func (p RetryPolicy) attempts() int {
	if p.MaxAttempts <= 0 {
		return DefaultRetryPolicy().MaxAttempts
	}
	return p.MaxAttempts
}

// delay returns the jittered wait after failed attempt n (1-based).
func (p RetryPolicy) delay(n int) time.Duration {
	def := DefaultRetryPolicy()
	d, maxD := p.MinDelay, p.MaxDelay
	if d == 0 {
		d = def.MinDelay
	}
	if d < 0 {
		return 0
	}
	if maxD == 0 {
		maxD = max(def.MaxDelay, d)
	}
	maxD = max(maxD, d)
	for i := 1; i < n && d < maxD; i++ {
		if d > maxD/2 { // doubling would pass the cap (or overflow)
			d = maxD
			break
		}
		d *= 2
	}
	d = min(d, maxD)
	half := d / 2
	return half + rand.N(d-half+1)
}

// Wait sleeps the policy's jittered back-off after failed attempt n
// (1-based: the wait before the second attempt is Wait(ctx, 1)), or returns
// the context's error if it ends first. It is what Handle waits between
// attempts, for callers with retry loops of their own (a consumer
// redelivering a message, say). A policy whose MinDelay is negative does not
// wait.
func (p RetryPolicy) Wait(ctx context.Context, n int) error {
	d := p.delay(n)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
