package projection

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"maps"
	"reflect"
	"slices"
	"sync"

	es "github.com/aggregatekit/eventsourcing"
)

// Store keeps a projection's progress: its checkpoint (the position in the
// source up to which every commit is applied), the last sequence applied
// per stream, and its parked events, each per ID; and which version of a
// projection readers should use. To make a batch's effects and its
// progress one atomic change, keep them in the same database as the read
// model: an SQLStore in the read model's database, a MemoryStore beside an
// in-memory read model. Implementations must be safe for concurrent use.
type Store interface {
	// HandleType is the type of Tx.Handle's result, what projection
	// methods take as their transaction; nil if the store has none.
	HandleType() reflect.Type
	// Begin starts a unit of work for id. The runner calls Checkpoint
	// first, then applies events, then commits or rolls back.
	Begin(ctx context.Context, id ID) (Tx, error)
	// Parked yields id's parked events, in source order.
	Parked(ctx context.Context, id ID) iter.Seq2[Parked, error]
	// Active returns the version of the projection name that readers
	// should use ("" if none was activated).
	Active(ctx context.Context, name string) (string, error)
	// Activate makes id.Version the active version of id.Name.
	Activate(ctx context.Context, id ID) error
	// Delete removes id's checkpoint, sequences and parked events (after a
	// switch to a newer version, or to rebuild in place).
	Delete(ctx context.Context, id ID) error
}

// Tx is one unit of work of a runner: the events applied through Handle,
// the per-stream sequences noted with Applied, parked events and the new
// checkpoint, committed together.
//
// Checkpoint returns the stored checkpoint and keeps other units of work
// of the same ID from committing until this one ends (a row lock, a
// mutex), so two runners of one projection serialise rather than apply a
// batch twice. Sequences returns the last sequence applied for each of the
// streams asked (missing: none applied). Applied notes that seq is now the
// last applied sequence of stream. Park stores a parked event; Unpark
// removes one and returns it (an error matching ErrNotParked if there is
// none). Commit stores the noted sequences and parked events and moves the
// checkpoint to pos, atomically with what the handler wrote through
// Handle; Rollback discards what the store can discard (see MemoryStore
// for a store that cannot). After either, the Tx is done.
type Tx interface {
	Handle() any
	Checkpoint(ctx context.Context) (Position, error)
	Sequences(ctx context.Context, streams []es.StreamID) (map[es.StreamID]int64, error)
	Applied(stream es.StreamID, seq int64)
	Park(ctx context.Context, p Parked) error
	Unpark(ctx context.Context, stream es.StreamID, seq int64) (Parked, error)
	Commit(ctx context.Context, pos Position) error
	Rollback() error
}

// MemoryStore keeps progress in memory, for read models kept in memory:
// both live and die with the process, so a restarted process rebuilds
// them from the beginning. An in-memory read model cannot be rolled back,
// so a MemoryStore does not buffer: Applied, Park and Unpark take effect at
// once, keeping the progress in step with what the handler already
// changed; Commit moves the checkpoint and Rollback only ends the unit of
// work. The runner relies on this: after a failed batch it goes on from
// the sequences, never applying an event twice. It is safe for concurrent
// use; a unit of work holds its ID's lock from Begin to Commit or
// Rollback. The zero value is not usable; call NewMemoryStore.
type MemoryStore struct {
	mu       sync.Mutex
	progress map[ID]*memProgress
	active   map[string]string
}

type memProgress struct {
	lock   chan struct{} // held by the open Tx
	pos    Position
	seqs   map[es.StreamID]int64
	parked map[parkKey]Parked
}

type parkKey struct {
	stream es.StreamID
	seq    int64
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{progress: map[ID]*memProgress{}, active: map[string]string{}}
}

func (s *MemoryStore) entry(id ID) *memProgress {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.progress[id]
	if p == nil {
		p = &memProgress{lock: make(chan struct{}, 1), seqs: map[es.StreamID]int64{}, parked: map[parkKey]Parked{}}
		s.progress[id] = p
	}
	return p
}

// HandleType returns nil: the handle of a MemoryStore's Tx is nil.
func (s *MemoryStore) HandleType() reflect.Type { return nil }

// Begin waits for id's lock (or ctx) and returns a unit of work.
func (s *MemoryStore) Begin(ctx context.Context, id ID) (Tx, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	p := s.entry(id)
	select {
	case p.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("projection %s: begin: %w", id, ctx.Err())
	}
	return &memTx{s: s, p: p}, nil
}

// Parked yields id's parked events in source order.
func (s *MemoryStore) Parked(ctx context.Context, id ID) iter.Seq2[Parked, error] {
	return func(yield func(Parked, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(Parked{}, err)
			return
		}
		p := s.entry(id)
		s.mu.Lock()
		list := slices.Collect(maps.Values(p.parked))
		s.mu.Unlock()
		sortParked(list)
		for _, pk := range list {
			if !yield(pk, nil) {
				return
			}
		}
	}
}

func sortParked(list []Parked) {
	slices.SortFunc(list, func(a, b Parked) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.Stream.AggregateType, b.Stream.AggregateType),
			cmp.Compare(a.Stream.Key, b.Stream.Key), cmp.Compare(a.Sequence, b.Sequence))
	})
}

// Active returns the active version of name.
func (s *MemoryStore) Active(ctx context.Context, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active[name], nil
}

// Activate makes id.Version the active version of id.Name.
func (s *MemoryStore) Activate(ctx context.Context, id ID) error {
	if err := id.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active[id.Name] = id.Version
	return nil
}

// Delete forgets id's progress. It waits for id's open unit of work.
func (s *MemoryStore) Delete(ctx context.Context, id ID) error {
	tx, err := s.Begin(ctx, id)
	if err != nil {
		return err
	}
	t := tx.(*memTx)
	s.mu.Lock()
	t.p.pos, t.p.seqs, t.p.parked = "", map[es.StreamID]int64{}, map[parkKey]Parked{}
	s.mu.Unlock()
	return tx.Rollback()
}

type memTx struct {
	s    *MemoryStore
	p    *memProgress
	done bool
}

func (t *memTx) Handle() any { return nil }

func (t *memTx) Checkpoint(ctx context.Context) (Position, error) {
	if t.done {
		return "", ErrTxDone
	}
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return t.p.pos, nil
}

func (t *memTx) Sequences(ctx context.Context, streams []es.StreamID) (map[es.StreamID]int64, error) {
	if t.done {
		return nil, ErrTxDone
	}
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	out := make(map[es.StreamID]int64, len(streams))
	for _, st := range streams {
		if seq, ok := t.p.seqs[st]; ok {
			out[st] = seq
		}
	}
	return out, nil
}

func (t *memTx) Applied(stream es.StreamID, seq int64) {
	if t.done {
		return
	}
	t.s.mu.Lock()
	t.p.seqs[stream] = seq
	t.s.mu.Unlock()
}

func (t *memTx) Park(ctx context.Context, p Parked) error {
	if t.done {
		return ErrTxDone
	}
	p.Data = slices.Clone(p.Data)
	p.Metadata = maps.Clone(p.Metadata)
	t.s.mu.Lock()
	t.p.parked[parkKey{p.Stream, p.Sequence}] = p
	t.s.mu.Unlock()
	return nil
}

func (t *memTx) Unpark(ctx context.Context, stream es.StreamID, seq int64) (Parked, error) {
	if t.done {
		return Parked{}, ErrTxDone
	}
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	k := parkKey{stream, seq}
	p, ok := t.p.parked[k]
	if !ok {
		return Parked{}, fmt.Errorf("%w: %s at sequence %d", ErrNotParked, stream, seq)
	}
	delete(t.p.parked, k)
	return p, nil
}

func (t *memTx) Commit(ctx context.Context, pos Position) error {
	if t.done {
		return ErrTxDone
	}
	t.s.mu.Lock()
	t.p.pos = pos
	t.s.mu.Unlock()
	t.end()
	return nil
}

func (t *memTx) Rollback() error {
	if t.done {
		return ErrTxDone
	}
	t.end()
	return nil
}

func (t *memTx) end() {
	t.done = true
	<-t.p.lock
}
