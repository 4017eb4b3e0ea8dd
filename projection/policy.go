package projection

import (
	"time"

	es "github.com/aggregatekit/eventsourcing"
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

// retry is the policy's back-off as an eventsourcing.RetryPolicy, whose
// Wait sleeps between tries.
func (p Policy) retry() es.RetryPolicy {
	def := DefaultPolicy()
	return backoff(p.MinDelay, p.MaxDelay, def.MinDelay, def.MaxDelay)
}

// backoff returns the retry policy waiting from minD up to maxD, where 0
// selects defMin or defMax; a negative minD means no wait.
func backoff(minD, maxD, defMin, defMax time.Duration) es.RetryPolicy {
	if minD == 0 {
		minD = defMin
	}
	if maxD == 0 {
		maxD = max(defMax, minD)
	}
	return es.RetryPolicy{MinDelay: minD, MaxDelay: maxD}
}
