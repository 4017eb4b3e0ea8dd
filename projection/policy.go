package projection

import (
	"context"
	"math/rand/v2"
	"time"
)

// Action is what a runner does with an event that still fails after the
// attempts of its Policy.
type Action int

const (
	// Stop ends Run with a *PoisonError (matching ErrPoison); everything
	// before the event is stored, and the next Run tries it again. Nothing
	// is skipped, but nothing after it is applied until it succeeds.
	Stop Action = iota
	// Park stores the event with its error among the projection's parked
	// events (Runner.Parked), counts it as applied and goes on. The read
	// model then lacks its effect until Runner.Replay applies it.
	Park
)

// String returns "stop" or "park".
func (a Action) String() string {
	if a == Park {
		return "park"
	}
	return "stop"
}

// Policy says how a runner treats an event whose handler fails (returns an
// error or panics) or that does not decode: it tries the event up to
// Attempts times, waiting between tries a random time between half and
// all of MinDelay*2^(try-1), capped at MaxDelay, then Stops or Parks. Each
// try is a unit of work of its own, rolled back when it fails. An event
// that does not decode is not tried again (decoding would fail the same
// way). Failures of the store or the source are not the event's fault:
// they never count as attempts and never park anything (the runner backs
// off and goes on from its checkpoint).
type Policy struct {
	// Attempts is the number of tries, the first included; 0 or less
	// means DefaultPolicy's.
	Attempts int
	// MinDelay is the wait before the second try (before jitter); 0 means
	// DefaultPolicy's, negative no wait.
	MinDelay time.Duration
	// MaxDelay caps the wait; 0 means DefaultPolicy's (or MinDelay if
	// larger).
	MaxDelay time.Duration
	// Then is what happens after the last try: Stop (the zero value) or
	// Park.
	Then Action
}

// DefaultPolicy is the policy of a runner made without WithPolicy: 3
// attempts, waiting from 10 ms up to 1 s between them, then Stop.
func DefaultPolicy() Policy {
	return Policy{Attempts: 3, MinDelay: 10 * time.Millisecond, MaxDelay: time.Second, Then: Stop}
}

func (p Policy) attempts() int {
	if p.Attempts <= 0 {
		return DefaultPolicy().Attempts
	}
	return p.Attempts
}

func (p Policy) delay(n int) time.Duration {
	def := DefaultPolicy()
	return backoff(p.MinDelay, p.MaxDelay, def.MinDelay, def.MaxDelay, n)
}

// backoff returns the jittered wait after failure n (1-based).
func backoff(minD, maxD, defMin, defMax time.Duration, n int) time.Duration {
	if minD == 0 {
		minD = defMin
	}
	if minD < 0 {
		return 0
	}
	if maxD == 0 {
		maxD = max(defMax, minD)
	}
	maxD = max(maxD, minD)
	d := minD
	for i := 1; i < n && d < maxD; i++ {
		if d > maxD/2 {
			d = maxD
			break
		}
		d *= 2
	}
	d = min(d, maxD)
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
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
