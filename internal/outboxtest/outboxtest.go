// Package outboxtest is an Outbox over the memory backend, for the tests of
// what reads outboxes (package relay, natsjs) without a database: the
// pending list is kept in append order (so in stream order), updated in the
// same locked step as the append.
package outboxtest

import (
	"context"
	"iter"
	"slices"
	"sync"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// Backend is a memory backend with an Outbox. It is safe for concurrent
// use. Only the Backend and Outbox methods show through, not the memory
// backend's Feed, so a relay sees an outbox and nothing else.
type Backend struct {
	backend.Backend
	// Memory is the memory backend underneath, with its Feed.
	Memory *memory.Backend

	mu      sync.Mutex
	pending []backend.Commit
}

// New returns an empty Backend.
func New() *Backend {
	m := memory.NewBackend()
	return &Backend{Backend: m, Memory: m}
}

// Append stores the commit and, if it holds records, lists it as pending.
func (o *Backend) Append(ctx context.Context, c backend.Commit) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.Backend.Append(ctx, c); err != nil {
		return err
	}
	if len(c.Records) > 0 {
		o.pending = append(o.pending, c)
	}
	return nil
}

// Pending yields up to limit pending commits (all if limit <= 0), oldest
// first.
func (o *Backend) Pending(ctx context.Context, limit int) iter.Seq2[backend.Commit, error] {
	return func(yield func(backend.Commit, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(backend.Commit{}, err)
			return
		}
		o.mu.Lock()
		cs := slices.Clone(o.pending)
		o.mu.Unlock()
		if limit > 0 && len(cs) > limit {
			cs = cs[:limit]
		}
		for _, c := range cs {
			if !yield(c, nil) {
				return
			}
		}
	}
}

// MarkPublished removes the commits refs name from the pending list.
func (o *Backend) MarkPublished(ctx context.Context, refs []backend.CommitRef) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pending = slices.DeleteFunc(o.pending, func(c backend.Commit) bool {
		return slices.ContainsFunc(refs, func(r backend.CommitRef) bool { return r.ID == c.ID && r.Stream == c.Stream })
	})
	return nil
}

// Left returns the number of pending commits.
func (o *Backend) Left() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pending)
}
