// Package memory provides in-process implementations of the store
// contracts of package backend: a Backend with a Feed and Checkpoints, and
// a SnapshotStore. They keep everything in memory, so they suit tests,
// examples and single-process tools; the data does not survive the process.
//
// The backend stores the same encoded bytes a database store would, through
// the same codec path, so a serialisation problem shows up in memory tests
// too, and it applies the same checks (backend.CheckAppend).
package memory

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/aggregatekit/eventsourcing/backend"
)

// Backend is a backend.Backend kept in memory, with a backend.Feed and
// backend.Checkpoints. It is safe for concurrent use: each stream has its
// own lock, so writers to different streams wait for each other only to take
// their place in the feed, and loads never block appends. The zero value is
// not usable; call NewBackend.
type Backend struct {
	mu      sync.RWMutex // guards streams and closed
	streams map[backend.StreamID]*stream
	closed  bool

	feedMu  sync.Mutex // guards feed, changed and checkpoints; taken after a stream's lock
	feed    []backend.Commit
	changed chan struct{} // closed and replaced on every append
	points  map[string]backend.Position
}

type stream struct {
	mu      sync.Mutex
	records []backend.Record // append-only; elements are never modified
}

// NewBackend returns an empty in-memory backend.
func NewBackend() *Backend {
	return &Backend{streams: map[backend.StreamID]*stream{}, changed: make(chan struct{}), points: map[string]backend.Position{}}
}

// Append stores the commit atomically if the stream's last sequence is
// c.Expected, and otherwise returns a *backend.ConflictError. It copies the
// records' bytes and metadata.
func (b *Backend) Append(ctx context.Context, c backend.Commit) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: append to %s: %w", c.Stream, err)
	}
	if err := backend.CheckAppend(c); err != nil {
		return err
	}
	if len(c.Records) == 0 {
		return nil
	}
	s, err := b.stream(c.Stream, true)
	if err != nil {
		return err
	}
	copies := make([]backend.Record, len(c.Records))
	for i, r := range c.Records {
		r.Data = slices.Clone(r.Data)
		if r.Data == nil {
			r.Data = []byte{}
		}
		r.Metadata = maps.Clone(r.Metadata)
		copies[i] = r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if head := int64(len(s.records)); head != c.Expected {
		return &backend.ConflictError{Stream: c.Stream, Expected: c.Expected, Head: head}
	}
	s.records = append(s.records, copies...)
	b.feedMu.Lock()
	b.feed = append(b.feed, backend.Commit{Stream: c.Stream, Expected: c.Expected, ID: c.ID, Records: copies})
	close(b.changed)
	b.changed = make(chan struct{})
	b.feedMu.Unlock()
	return nil
}

// Load yields the stream's records after the given sequence, in order. It
// iterates over the records present when it started; later appends are not
// seen. It stops with ctx's error as soon as ctx is done.
func (b *Backend) Load(ctx context.Context, id backend.StreamID, after int64) iter.Seq2[backend.Record, error] {
	return func(yield func(backend.Record, error) bool) {
		s, err := b.stream(id, false)
		if err != nil {
			yield(backend.Record{}, err)
			return
		}
		if err := ctx.Err(); err != nil {
			yield(backend.Record{}, fmt.Errorf("memory: load %s: %w", id, err))
			return
		}
		if s == nil {
			return
		}
		s.mu.Lock()
		recs := s.records[:len(s.records):len(s.records)]
		s.mu.Unlock()
		done := ctx.Done()
		for i := max(after, 0); i < int64(len(recs)); i++ {
			select {
			case <-done:
				yield(backend.Record{}, fmt.Errorf("memory: load %s: %w", id, ctx.Err()))
				return
			default:
			}
			if !yield(recs[i], nil) {
				return
			}
		}
	}
}

// Close discards every stream. Later calls return backend.ErrClosed.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.streams = nil
	b.feedMu.Lock()
	b.feed = nil
	close(b.changed)
	b.changed = make(chan struct{})
	b.feedMu.Unlock()
	return nil
}

func (b *Backend) stream(id backend.StreamID, create bool) (*stream, error) {
	b.mu.RLock()
	s, closed := b.streams[id], b.closed
	b.mu.RUnlock()
	if closed {
		return nil, backend.ErrClosed
	}
	if s != nil || !create {
		return s, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, backend.ErrClosed
	}
	if s = b.streams[id]; s == nil {
		s = &stream{}
		b.streams[id] = s
	}
	return s, nil
}

func (b *Backend) isClosed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.closed
}

// position encodes the feed index n (1-based) as a Position: 20 decimal
// digits, so that positions sort like the feed.
func position(n int) backend.Position {
	return backend.Position(fmt.Sprintf("%020d", n))
}

// index decodes a Position into the number of commits before it.
func index(p backend.Position) (int, error) {
	if p == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(string(p))
	if err != nil || len(p) != 20 || n < 0 {
		return 0, fmt.Errorf("%w: %q is not a memory feed position", backend.ErrInvalidPosition, p)
	}
	return n, nil
}

// ReadFeed yields every commit after the position after, in the order the
// backend accepted them (consistent with each stream's order), up to the
// last commit stored when it was called.
func (b *Backend) ReadFeed(ctx context.Context, after backend.Position) iter.Seq2[backend.FeedCommit, error] {
	return func(yield func(backend.FeedCommit, error) bool) {
		if b.isClosed() {
			yield(backend.FeedCommit{}, backend.ErrClosed)
			return
		}
		from, err := index(after)
		if err != nil {
			yield(backend.FeedCommit{}, err)
			return
		}
		b.feedMu.Lock()
		feed := b.feed[:len(b.feed):len(b.feed)]
		b.feedMu.Unlock()
		done := ctx.Done()
		for i := from; i < len(feed); i++ {
			select {
			case <-done:
				yield(backend.FeedCommit{}, fmt.Errorf("memory: read feed: %w", ctx.Err()))
				return
			default:
			}
			if !yield(backend.FeedCommit{Commit: feed[i], Position: position(i + 1)}, nil) {
				return
			}
		}
	}
}

// WaitFeed returns once a commit after the position after is stored, or
// when ctx is done.
func (b *Backend) WaitFeed(ctx context.Context, after backend.Position) error {
	from, err := index(after)
	if err != nil {
		return err
	}
	if b.isClosed() {
		return backend.ErrClosed
	}
	b.feedMu.Lock()
	n, changed := len(b.feed), b.changed
	b.feedMu.Unlock()
	if n > from {
		return nil
	}
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LoadCheckpoint returns the position saved under name, or "".
func (b *Backend) LoadCheckpoint(ctx context.Context, name string) (backend.Position, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if b.isClosed() {
		return "", backend.ErrClosed
	}
	b.feedMu.Lock()
	defer b.feedMu.Unlock()
	return b.points[name], nil
}

// SaveCheckpoint saves pos under name.
func (b *Backend) SaveCheckpoint(ctx context.Context, name string, pos backend.Position) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.isClosed() {
		return backend.ErrClosed
	}
	b.feedMu.Lock()
	defer b.feedMu.Unlock()
	b.points[name] = pos
	return nil
}

var (
	_ backend.Backend     = (*Backend)(nil)
	_ backend.Feed        = (*Backend)(nil)
	_ backend.Checkpoints = (*Backend)(nil)
)
