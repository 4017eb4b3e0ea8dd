package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	es "github.com/aggregatekit/eventsourcing"
)

// Errors of the counter domain. The HTTP layer maps each to a status code.
var (
	// ErrMaxExceeded reports an increment that would take a counter above
	// its maximum. Nothing was stored.
	ErrMaxExceeded = errors.New("counter maximum exceeded")

	// ErrInvalidIncrement reports an increment smaller than 1.
	ErrInvalidIncrement = errors.New("invalid increment")

	// ErrCounterNotFound reports a counter that has no events yet.
	ErrCounterNotFound = errors.New("counter not found")
)

// Increment is the command that raises a counter by By (at least 1).
type Increment struct {
	By int64
}

// Incremented is the event stored when a counter was raised by By.
type Incremented struct {
	By int64 `json:"by"`
}

//go:generate go run github.com/aggregatekit/eventsourcing/cmd/esgen -types Counter

// Counter is an event-sourced counter that refuses to go above a maximum.
// Its state is Count; max is configuration: unexported, so snapshots leave
// it out and a reset before a reload keeps it. A Counter is not safe for
// concurrent use: Counters makes one per call.
type Counter struct {
	es.AggregateBase `json:"-"`
	Count            int64 `json:"count"`

	max int64
}

// HandleIncrement decides whether the counter may be raised by cmd.By. It is
// found by AutomaticWireup: the command type is the parameter's type. The
// generated esgen_dispatch.go calls it without reflection.
func (c *Counter) HandleIncrement(cmd Increment) ([]es.Event, error) {
	if cmd.By < 1 {
		return nil, fmt.Errorf("%w: %d (must be at least 1)", ErrInvalidIncrement, cmd.By)
	}
	if cmd.By > c.max-c.Count { // unlike c.Count+cmd.By, this cannot overflow
		return nil, fmt.Errorf("%w: %d + %d is more than %d", ErrMaxExceeded, c.Count, cmd.By, c.max)
	}
	//lint:ignore S1016 a command and its event evolve separately; do not tie their shapes with a conversion
	return []es.Event{Incremented{By: cmd.By}}, nil
}

// ReplayIncremented applies an Incremented event to the state. Replay
// methods only change state; every decision belongs to a handler.
func (c *Counter) ReplayIncremented(e Incremented) {
	c.Count += e.By
}

// CounterView is what the API returns for a counter.
type CounterView struct {
	Name     string `json:"name"`
	Count    int64  `json:"count"`
	Sequence int64  `json:"sequence"` // number of events stored for the counter
}

// NewRegistry returns the registry of the counter events.
func NewRegistry() (*es.StandardEventRegistry, error) {
	r := es.NewStandardEventRegistry("counter")
	return r, r.RegisterEvent(Incremented{})
}

// NewCounter returns the constructor of Counters whose count may not exceed
// max: the Factory of the repository, shared with the tests.
func NewCounter(max int64, retry es.RetryPolicy) es.Factory[*Counter] {
	return func(name string, registry es.EventRegistry, store es.EventStore) (*Counter, error) {
		c := &Counter{max: max}
		c.Initialize(name, registry, store, func() any { return c })
		c.SetAggregateType("Counter") // stable stream names even if the Go type is renamed
		c.SetRetryPolicy(retry)
		return c, c.AutomaticWireup(c)
	}
}

// Counters runs commands and queries against the counters kept in an event
// store. It is safe for concurrent use. It keeps the most recently used
// counters loaded (es.WithInstanceCache): a request loads only the events
// stored since the counter's last request, and requests for one counter in
// this process take turns on it rather than conflicting in the store.
// Other processes writing to the same store are seen on each request; their
// conflicts are retried from fresh state.
type Counters struct {
	counters *es.Repository[*Counter]
	list     counterList // nil: no list
}

// NewCounters returns a Counters over store whose counters may not exceed
// max (at least 1), keeping up to cached counters loaded (0: none). retry
// says how often a command that lost a concurrency conflict is run again;
// see exampleRetryPolicy.
func NewCounters(store es.EventStore, max int64, retry es.RetryPolicy, cached int) (*Counters, error) {
	if store == nil {
		return nil, fmt.Errorf("counter: nil store")
	}
	if max < 1 {
		return nil, fmt.Errorf("counter: maximum must be at least 1, not %d", max)
	}
	registry, err := NewRegistry()
	if err != nil {
		return nil, err
	}
	repo := es.NewRepository(registry, store, NewCounter(max, retry), es.WithInstanceCache(cached))
	return &Counters{counters: repo}, nil
}

// exampleRetryPolicy is the retry policy of the example server. Many
// clients hammering one counter is what the example invites (and what its
// tests do with 16 writers), so a conflict is expected: every writer that
// loaded the same head as the winner loses and must load the new events
// and try again. 50 attempts with short, jittered waits let such a burst
// drain instead of returning 409 to the unlucky clients.
func exampleRetryPolicy() es.RetryPolicy {
	return es.RetryPolicy{MaxAttempts: 50, MinDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond}
}

// Increment raises the named counter by by and returns its new state. A
// command ID on ctx (es.WithCommandID) makes it apply at most once.
func (s *Counters) Increment(ctx context.Context, name string, by int64) (CounterView, error) {
	var v CounterView
	err := s.counters.Do(ctx, name, func(ctx context.Context, c *Counter) error {
		if err := c.Handle(ctx, Increment{By: by}); err != nil {
			return err
		}
		v = view(c)
		return nil
	})
	return v, err
}

// Get returns the named counter's state, or an error matching
// ErrCounterNotFound if it has no events.
func (s *Counters) Get(ctx context.Context, name string) (CounterView, error) {
	var v CounterView
	err := s.counters.Do(ctx, name, func(ctx context.Context, c *Counter) error {
		if c.SequenceNumber() == 0 {
			return fmt.Errorf("%w: %q", ErrCounterNotFound, name)
		}
		v = view(c)
		return nil
	})
	return v, err
}

// withList returns s serving List from list, a read model of all counters.
func (s *Counters) withList(list counterList) *Counters {
	return &Counters{counters: s.counters, list: list}
}

// List returns up to limit counters whose names sort after after, in name
// order, from the read model given to withList; it fails with errNoList
// without one.
func (s *Counters) List(ctx context.Context, after string, limit int) ([]CounterView, error) {
	if s.list == nil {
		return nil, errNoList
	}
	return s.list.Page(ctx, after, limit)
}

// Health checks that the store answers a read, within ctx.
func (s *Counters) Health(ctx context.Context) error {
	c, err := s.counters.New(ctx, "probe")
	if err != nil {
		return err
	}
	c.SetAggregateType("Health") // never a counter's stream
	return c.Refresh(ctx)
}

func view(c *Counter) CounterView {
	return CounterView{Name: c.Key(), Count: c.Count, Sequence: c.SequenceNumber()}
}
