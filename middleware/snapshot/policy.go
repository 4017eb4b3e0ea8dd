package snapshot

import (
	"fmt"

	es "github.com/aggregatekit/eventsourcing"
)

// Policy decides after which commits a snapshot is written. Build one with
// EveryN or Predicate; the zero Policy is invalid and rejected by New. A
// Policy is an immutable value, safe for concurrent use (a Predicate's
// function must be too).
//
// A policy sees each successful, non-empty commit as the stream's sequence
// before it and after it (after = before + number of events committed). The
// snapshot then written covers exactly the sequence after.
type Policy struct {
	every int64
	fn    func(stream es.StreamID, before, after int64) bool
	err   error
}

// EveryN returns a policy that snapshots whenever a commit crosses a
// multiple of n: a commit taking the stream from before to after is due when
// after/n > before/n. With n = 100, a commit from 98 to 103 crosses 100 and
// snapshots at 103; a commit from 100 to 101 does not. Multi-event commits
// therefore never skip a boundary, and a snapshot is at most n-1 events
// behind the head after any commit that crossed one.
//
// n must be at least 1 (EveryN(1) snapshots after every commit); otherwise New
// fails with an error matching ErrInvalidConfig.
func EveryN(n int) Policy {
	if n < 1 {
		return Policy{err: fmt.Errorf("%w: EveryN(%d): n must be at least 1", ErrInvalidConfig, n)}
	}
	return Policy{every: int64(n)}
}

// Predicate returns a policy that snapshots when fn returns true for a commit
// taking stream from sequence before to sequence after (after > before). fn
// is called synchronously after each successful commit, possibly from many
// goroutines at once, so it must be safe for concurrent use and quick. A nil
// fn makes New fail with an error matching ErrInvalidConfig.
func Predicate(fn func(stream es.StreamID, before, after int64) bool) Policy {
	if fn == nil {
		return Policy{err: fmt.Errorf("%w: nil Predicate function", ErrInvalidConfig)}
	}
	return Policy{fn: fn}
}

// validate reports why p cannot be used, if it cannot.
func (p Policy) validate() error {
	switch {
	case p.err != nil:
		return p.err
	case p.every < 1 && p.fn == nil:
		return fmt.Errorf("%w: zero Policy; use EveryN or Predicate", ErrInvalidConfig)
	}
	return nil
}

// Due reports whether a commit taking stream from sequence before to
// sequence after calls for a snapshot under p. It returns false for an
// invalid policy and for a commit that adds nothing (after <= before).
func (p Policy) Due(stream es.StreamID, before, after int64) bool {
	switch {
	case after <= before || p.err != nil:
		return false
	case p.fn != nil:
		return p.fn(stream, before, after)
	case p.every > 0:
		return after/p.every > before/p.every
	}
	return false
}
