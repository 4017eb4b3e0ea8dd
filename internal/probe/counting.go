package probe

import (
	"context"
	"iter"
	"sync/atomic"

	es "github.com/aggregatekit/eventsourcing"
)

// CountingBackend is a Backend that counts the records its loads yield, for
// tests and benchmarks of how much a load reads. It is safe for concurrent
// use if the Backend it wraps is.
type CountingBackend struct {
	es.Backend
	loaded atomic.Int64
}

// Load counts each record the wrapped backend's Load yields.
func (c *CountingBackend) Load(ctx context.Context, s es.StreamID, after int64) iter.Seq2[es.Record, error] {
	return func(yield func(es.Record, error) bool) {
		for rec, err := range c.Backend.Load(ctx, s, after) {
			if err == nil {
				c.loaded.Add(1)
			}
			if !yield(rec, err) {
				return
			}
		}
	}
}

// Loaded returns the number of records loaded so far.
func (c *CountingBackend) Loaded() int64 { return c.loaded.Load() }

// TakeLoaded returns the number of records loaded so far and resets it.
func (c *CountingBackend) TakeLoaded() int64 { return c.loaded.Swap(0) }
