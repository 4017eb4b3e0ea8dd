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
	"hash/maphash"
	"iter"
	"sort"
	"strconv"
	"sync"

	"github.com/aggregatekit/eventsourcing/backend"
)

// Backend is a backend.Backend kept in memory, with a backend.Feed and
// backend.Checkpoints. It is safe for concurrent use: each stream has its
// own lock, so writers to different streams wait for each other only to take
// their place in the feed and, briefly, on the lock of the map of streams
// (read-locked by loads and by commits to a stream expected to exist,
// write-locked by commits expecting a new stream, Expected 0, which look
// the stream up and add it at once), and loads never block appends. Each
// stream keeps the record slices its appends were given (see Append), one
// per commit, and the feed keeps the commits in fixed-size chunks, so a
// long feed never moves in memory as it grows. The zero value is not
// usable; call NewBackend.
type Backend struct {
	mu      sync.RWMutex       // guards streams and closed
	streams map[uint64]*stream // by the hash of their ID (see create)
	seed    maphash.Seed       // of the hash
	closed  bool

	feedMu  sync.Mutex               // guards feed, changed and points; taken after a stream's lock
	feed    chunks[[]backend.Record] // each commit's records; the rest of a commit is in its first record
	changed chan struct{}            // closed on the next append; made by the first waiter
	points  map[string]backend.Position
}

// stream is one stream's commits, each the records its Append was given.
// The slice only grows: an element, once stored, is never written again, so
// a view taken with the lock held stays valid without it while later
// commits are appended.
type stream struct {
	mu      sync.Mutex
	head    int64               // the last sequence stored
	commits [][]backend.Record  // in order; commits[i][0].Sequence = 1 + records before it
	first   [1][]backend.Record // the first array of commits, so that a new stream is one allocation
	id      backend.StreamID
	next    *stream // the next stream whose ID has the same hash
}

// maxChunk is the size of the largest chunks; the first ones are smaller, so
// that a short stream stays small.
const maxChunk = 128

// chunks is an append-only sequence stored in arrays that never move: the
// first holds 4 elements, each next one twice as many, up to maxChunk. An
// element, once stored, is never written again, so a view taken with the
// lock held can be read without it while later elements are appended.
type chunks[T any] struct {
	all    [][]T // each allocated at full length
	n      int   // elements stored
	filled int   // elements stored in the last chunk
}

func (c *chunks[T]) push(v T) {
	if len(c.all) == 0 || c.filled == len(c.all[len(c.all)-1]) {
		c.all = append(c.all, make([]T, chunkSize(len(c.all))))
		c.filled = 0
	}
	c.all[len(c.all)-1][c.filled] = v
	c.filled++
	c.n++
}

// view returns the chunks and length as they are now.
func (c *chunks[T]) view() chunks[T] { return chunks[T]{all: c.all[:len(c.all):len(c.all)], n: c.n} }

// chunkSize returns the length of chunk k (see push).
func chunkSize(k int) int {
	if k < 8 {
		return min(4<<k, maxChunk)
	}
	return maxChunk
}

// locate returns the chunk holding element i and the index of that chunk's
// first element, in constant time.
func locate(i int) (k, base int) {
	for k = 0; chunkSize(k) < maxChunk; k++ {
		if i < base+chunkSize(k) {
			return k, base
		}
		base += chunkSize(k)
	}
	n := (i - base) / maxChunk
	return k + n, base + n*maxChunk
}

// from yields pointers to the elements of the view from index i on.
func (c chunks[T]) from(i int) iter.Seq[*T] {
	return func(yield func(*T) bool) {
		if i < 0 {
			i = 0
		}
		k, base := locate(i)
		for ; k < len(c.all); k++ {
			chunk := c.all[k]
			for j := max(i-base, 0); j < len(chunk); j++ {
				if base+j >= c.n || !yield(&chunk[j]) {
					return
				}
			}
			base += len(chunk)
		}
	}
}

// NewBackend returns an empty in-memory backend.
func NewBackend() *Backend {
	return &Backend{streams: map[uint64]*stream{}, seed: maphash.MakeSeed(), points: map[string]backend.Position{}}
}

// Append stores the commit atomically if the stream's last sequence is
// c.Expected, and otherwise returns a *backend.ConflictError. As the
// backend.Backend contract allows, it keeps c.Records, their data and
// metadata, without copying them: the caller must not modify them after
// the call (an aggregate never does).
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
	var s *stream
	var err error
	if c.Expected == 0 {
		s, err = b.create(c.Stream) // usually a new stream: no lookup under the read lock first
	} else {
		s, err = b.stream(c.Stream)
	}
	if err != nil {
		return err
	}
	if s == nil { // and c.Expected > 0
		return &backend.ConflictError{Stream: c.Stream, Expected: c.Expected, Head: 0}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head != c.Expected {
		return &backend.ConflictError{Stream: c.Stream, Expected: c.Expected, Head: s.head}
	}
	recs := c.Records[:len(c.Records):len(c.Records)]
	s.commits = append(s.commits, recs)
	s.head += int64(len(recs))
	b.feedMu.Lock()
	b.feed.push(recs)
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	b.feedMu.Unlock()
	return nil
}

// Load yields the stream's records after the given sequence, in order. It
// iterates over the records present when it started; later appends are not
// seen. It stops with ctx's error as soon as ctx is done.
func (b *Backend) Load(ctx context.Context, id backend.StreamID, after int64) iter.Seq2[backend.Record, error] {
	if ctx.Err() == nil && !b.hasAfter(id, after) {
		return noRecords // the common case of an aggregate that is up to date
	}
	return func(yield func(backend.Record, error) bool) {
		s, err := b.stream(id)
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
		commits, head := s.commits, s.head
		s.mu.Unlock()
		if after >= head {
			return
		}
		// The first commit holding a record after the given sequence.
		from := sort.Search(len(commits), func(i int) bool {
			c := commits[i]
			return c[len(c)-1].Sequence > after
		})
		done := ctx.Done()
		for _, c := range commits[from:] {
			for i := range c {
				if c[i].Sequence <= after {
					continue
				}
				select {
				case <-done:
					yield(backend.Record{}, fmt.Errorf("memory: load %s: %w", id, ctx.Err()))
					return
				default:
				}
				if !yield(c[i], nil) {
					return
				}
			}
		}
	}
}

// noRecords yields nothing.
func noRecords(func(backend.Record, error) bool) {}

// hasAfter reports whether stream id holds records after the given
// sequence, or whether Load has an error to report.
func (b *Backend) hasAfter(id backend.StreamID, after int64) bool {
	s, err := b.stream(id)
	if err != nil {
		return true
	}
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head > after
}

// Close discards every stream. Later calls return backend.ErrClosed.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.streams = nil
	b.feedMu.Lock()
	b.feed = chunks[[]backend.Record]{}
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	b.feedMu.Unlock()
	return nil
}

// stream returns stream id, or nil if it is missing. It looks it up under
// the read lock.
func (b *Backend) stream(id backend.StreamID) (*stream, error) {
	h := maphash.Comparable(b.seed, id)
	b.mu.RLock()
	s, closed := b.streams[h], b.closed
	for s != nil && s.id != id {
		s = s.next
	}
	b.mu.RUnlock()
	if closed {
		return nil, backend.ErrClosed
	}
	return s, nil
}

// create returns stream id, adding it, empty, if it is missing. It takes
// the write lock, and looks the stream up once.
//
// The map of streams is keyed by a seeded 64-bit hash of the stream ID
// rather than by the ID: the two strings are hashed once per call, outside
// the lock, and the map's own hashing and growth are those of a uint64 key
// (a growth does not hash every ID again). Streams whose IDs collide share
// the entry, in a chain.
func (b *Backend) create(id backend.StreamID) (*stream, error) {
	h := maphash.Comparable(b.seed, id)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, backend.ErrClosed
	}
	first := b.streams[h]
	for s := first; s != nil; s = s.next {
		if s.id == id {
			return s, nil
		}
	}
	s := &stream{id: id, next: first}
	s.commits = s.first[:0]
	b.streams[h] = s
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
	var b [20]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return backend.Position(b[:])
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
		feed := b.feed.view()
		b.feedMu.Unlock()
		done := ctx.Done()
		i := from
		for c := range feed.from(from) {
			select {
			case <-done:
				yield(backend.FeedCommit{}, fmt.Errorf("memory: read feed: %w", ctx.Err()))
				return
			default:
			}
			i++
			first := &(*c)[0] // CheckAppend made every record agree with its commit
			commit := backend.Commit{Stream: first.Stream, Expected: first.Sequence - 1, ID: first.CommitID, Records: *c}
			if !yield(backend.FeedCommit{Commit: commit, Position: position(i)}, nil) {
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
	if b.feed.n > from {
		b.feedMu.Unlock()
		return nil
	}
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	changed := b.changed
	b.feedMu.Unlock()
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
