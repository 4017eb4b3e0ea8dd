package memory

import (
	"context"
	"slices"
	"sync"

	es "github.com/aggregatekit/eventsourcing"
)

// SnapshotStore is an eventsourcing.SnapshotStore kept in memory. It is safe
// for concurrent use. The zero value is not usable; call NewSnapshotStore.
type SnapshotStore struct {
	mu    sync.RWMutex
	snaps map[es.StreamID]es.Snapshot
}

// NewSnapshotStore returns an empty in-memory snapshot store.
func NewSnapshotStore() *SnapshotStore {
	return &SnapshotStore{snaps: map[es.StreamID]es.Snapshot{}}
}

// Get returns a copy of the stream's snapshot, or an error matching
// eventsourcing.ErrSnapshotNotFound.
func (s *SnapshotStore) Get(ctx context.Context, stream es.StreamID) (es.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return es.Snapshot{}, err
	}
	s.mu.RLock()
	snap, ok := s.snaps[stream]
	s.mu.RUnlock()
	if !ok {
		return es.Snapshot{}, es.ErrSnapshotNotFound
	}
	snap.State = slices.Clone(snap.State)
	return snap, nil
}

// Put stores a copy of snap unless a snapshot at a later sequence is held.
func (s *SnapshotStore) Put(ctx context.Context, snap es.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := snap.Stream.Validate(); err != nil {
		return err
	}
	snap.State = slices.Clone(snap.State)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.snaps[snap.Stream]; ok && cur.Sequence > snap.Sequence {
		return nil
	}
	s.snaps[snap.Stream] = snap
	return nil
}

// Delete removes the stream's snapshot, if any.
func (s *SnapshotStore) Delete(ctx context.Context, stream es.StreamID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.snaps, stream)
	s.mu.Unlock()
	return nil
}
