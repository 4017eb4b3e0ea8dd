package memory

import (
	"context"
	"slices"
	"sync"

	"github.com/aggregatekit/eventsourcing/backend"
)

// SnapshotStore is a backend.SnapshotStore kept in memory. It is safe for
// concurrent use. The zero value is not usable; call NewSnapshotStore.
type SnapshotStore struct {
	mu    sync.RWMutex
	snaps map[backend.StreamID]backend.Snapshot
}

// NewSnapshotStore returns an empty in-memory snapshot store.
func NewSnapshotStore() *SnapshotStore {
	return &SnapshotStore{snaps: map[backend.StreamID]backend.Snapshot{}}
}

// Get returns a copy of the stream's snapshot, or an error matching
// backend.ErrSnapshotNotFound.
func (s *SnapshotStore) Get(ctx context.Context, stream backend.StreamID) (backend.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return backend.Snapshot{}, err
	}
	s.mu.RLock()
	snap, ok := s.snaps[stream]
	s.mu.RUnlock()
	if !ok {
		return backend.Snapshot{}, backend.ErrSnapshotNotFound
	}
	snap.State = slices.Clone(snap.State)
	return snap, nil
}

// Put stores a copy of snap unless a snapshot at a later sequence is held.
// It refuses a snapshot backend.CheckSnapshot refuses.
func (s *SnapshotStore) Put(ctx context.Context, snap backend.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := backend.CheckSnapshot(snap); err != nil {
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
func (s *SnapshotStore) Delete(ctx context.Context, stream backend.StreamID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.snaps, stream)
	s.mu.Unlock()
	return nil
}
