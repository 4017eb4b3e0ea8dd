package projection

import (
	"context"
	"errors"
	"fmt"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
)

// Source is where a Runner reads commits: a store's Feed (FromStore,
// FromFeed) or a JetStream durable consumer fed by the relay (package
// middleware/publish/natsjs). Implementations must be safe for concurrent
// use; each Subscription is used by one goroutine at a time.
type Source interface {
	// Open starts reading, for the projection id, the commits after the
	// position after ("" for the beginning), in source order.
	Open(ctx context.Context, id ID, after Position) (Subscription, error)
}

// Subscription is one reader of a Source.
//
// Read returns up to max commits after the last one it returned, in
// source order, each with its position; it returns none, and no error,
// when nothing more is readable now. It never skips a commit (a commit of
// a stream never comes before an earlier one of the same stream), but it
// may deliver a commit again (at least once): the runner skips what it has
// applied. Wait blocks until more may be readable or ctx is done (then it
// returns ctx's error); it may return early. Ack tells the source that
// everything up to and including pos is stored with the read model, so a
// source that keeps its own position (a durable consumer) may move it;
// the runner calls it after each committed batch. Close releases the
// subscription.
type Subscription interface {
	Read(ctx context.Context, max int) ([]backend.FeedCommit, error)
	Wait(ctx context.Context) error
	Ack(ctx context.Context, pos Position) error
	Close() error
}

// Pender may be implemented by a Subscription that knows how many commits
// remain to be read after the last Read (a JetStream consumer does). The
// runner reports it as Status.Pending.
type Pender interface {
	Pending() (n int64, ok bool)
}

// ErrNoFeed reports a store whose backend has no Feed (MongoDB, DynamoDB:
// read them through the relay and JetStream instead).
var ErrNoFeed = errors.New("projection: the store has no feed")

// FromStore returns a Source over the Feed of the backend under store
// (through middleware, see eventsourcing.BackendOf). It fails with
// ErrNoFeed if there is none.
func FromStore(store es.EventStore) (Source, error) {
	b := es.BackendOf(store)
	f, ok := b.(backend.Feed)
	if !ok {
		return nil, fmt.Errorf("%w (backend %T)", ErrNoFeed, b)
	}
	return FromFeed(f), nil
}

// FromFeed returns a Source over f. It keeps no position of its own: the
// checkpoint the runner stores with the read model is the only one, so a
// feed can be read by any number of projections.
func FromFeed(f backend.Feed) Source { return feedSource{f} }

type feedSource struct{ f backend.Feed }

func (s feedSource) Open(ctx context.Context, id ID, after Position) (Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &feedSub{f: s.f, after: after}, nil
}

type feedSub struct {
	f     backend.Feed
	after Position

	// The state of one Read, for yield: made once per subscription, so
	// that a Read allocates only the batch it returns.
	yield func(backend.FeedCommit, error) bool
	out   []backend.FeedCommit
	max   int
	err   error
}

func (s *feedSub) Read(ctx context.Context, max int) ([]backend.FeedCommit, error) {
	if s.yield == nil {
		s.yield = func(c backend.FeedCommit, err error) bool {
			if err != nil {
				s.err = err
				return false
			}
			s.out = append(s.out, c)
			return len(s.out) < s.max
		}
	}
	s.out, s.max, s.err = nil, max, nil
	from := s.after
	s.f.ReadFeed(ctx, from)(s.yield)
	out, err := s.out, s.err
	s.out, s.err = nil, nil
	if err != nil {
		return nil, fmt.Errorf("read feed after %q: %w", from, err)
	}
	if len(out) > 0 {
		s.after = out[len(out)-1].Position
	}
	return out, nil
}

func (s *feedSub) Wait(ctx context.Context) error {
	if err := s.f.WaitFeed(ctx, s.after); err != nil {
		return fmt.Errorf("wait for the feed after %q: %w", s.after, err)
	}
	return nil
}

func (s *feedSub) Ack(context.Context, Position) error { return nil }
func (s *feedSub) Close() error                        { return nil }
