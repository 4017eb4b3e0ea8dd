// Package memory provides in-process implementations of the eventsourcing
// store contracts: a Backend (and EventStore) and a SnapshotStore. They keep
// everything in memory, so they suit tests, examples and single-process
// tools; the data does not survive the process.
//
// The backend stores the same encoded bytes a database store would, through
// the same codec path, so a serialisation problem shows up in memory tests
// too.
package memory

import (
	"context"
	"iter"
	"maps"
	"slices"
	"sync"

	es "github.com/aggregatekit/eventsourcing"
)

// NewStore returns a ready, empty EventStore kept in memory: NewBackend
// adapted by eventsourcing.NewStore.
func NewStore() es.EventStore { return es.NewStore(NewBackend()) }

// Backend is an eventsourcing.Backend kept in memory. It is safe for
// concurrent use: each stream has its own lock, so writers to different
// streams do not wait for each other, and loads never block appends. The
// zero value is not usable; call NewBackend.
type Backend struct {
	mu      sync.RWMutex // guards streams and closed
	streams map[es.StreamID]*stream
	closed  bool
}

type stream struct {
	mu      sync.Mutex
	records []es.Record // append-only; elements are never modified
}

// NewBackend returns an empty in-memory backend.
func NewBackend() *Backend {
	return &Backend{streams: map[es.StreamID]*stream{}}
}

// Append stores records atomically if the stream's last sequence is
// expected, and otherwise returns an error matching eventsourcing.ErrConcurrency.
// The records' bytes and metadata are copied.
func (b *Backend) Append(ctx context.Context, id es.StreamID, expected int64, records []es.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := es.CheckAppend(id, expected, records); err != nil {
		return err
	}
	if len(records) == 0 {
		return nil
	}
	s, err := b.stream(id, true)
	if err != nil {
		return err
	}
	copies := make([]es.Record, len(records))
	for i, r := range records {
		r.Data = slices.Clone(r.Data)
		r.Metadata = maps.Clone(r.Metadata)
		r.Timestamp = r.Timestamp.UTC()
		copies[i] = r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if head := int64(len(s.records)); head != expected {
		return &conflictError{stream: id, expected: expected, head: head}
	}
	s.records = append(s.records, copies...)
	return nil
}

// Load yields the stream's records after the given sequence, in order. It
// iterates over the records present when it started; later appends are not
// seen.
func (b *Backend) Load(ctx context.Context, id es.StreamID, after int64) iter.Seq2[es.Record, error] {
	return func(yield func(es.Record, error) bool) {
		s, err := b.stream(id, false)
		if err != nil {
			yield(es.Record{}, err)
			return
		}
		if s == nil {
			return
		}
		s.mu.Lock()
		recs := s.records[:len(s.records):len(s.records)]
		s.mu.Unlock()
		if after < 0 {
			after = 0
		}
		for i := after; i < int64(len(recs)); i++ {
			if i%256 == 0 {
				if err := ctx.Err(); err != nil {
					yield(es.Record{}, err)
					return
				}
			}
			if !yield(recs[i], nil) {
				return
			}
		}
	}
}

// Close discards every stream. Later calls return eventsourcing.ErrClosed.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.streams = nil
	return nil
}

func (b *Backend) stream(id es.StreamID, create bool) (*stream, error) {
	b.mu.RLock()
	s, closed := b.streams[id], b.closed
	b.mu.RUnlock()
	if closed {
		return nil, es.ErrClosed
	}
	if s != nil || !create {
		return s, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, es.ErrClosed
	}
	if s = b.streams[id]; s == nil {
		s = &stream{}
		b.streams[id] = s
	}
	return s, nil
}

type conflictError struct {
	stream         es.StreamID
	expected, head int64
}

func (e *conflictError) Error() string {
	return "memory: stream " + e.stream.String() + " has moved: " + es.ErrConcurrency.Error()
}

func (e *conflictError) Is(target error) bool { return target == es.ErrConcurrency }
