// Package publish is an eventsourcing middleware that hands committed events
// to a Publisher after each successful commit: the in-process Bus of this
// package, the NATS JetStream publisher of the natsjs sub-package, or your
// own. It is the low-latency, best-effort path; package relay is the one
// with delivery guarantees, and a stack may use both.
//
//	bus := publish.NewBus()
//	publish.On(bus, func(ctx context.Context, e OrderPlaced, rec es.Record) error {
//		return mailer.Confirm(ctx, rec.Stream.Key, e)
//	})
//	mw, err := publish.New(bus, publish.WithLogger(logger))
//	...
//	store := es.Wrap(backendStore, mw)
//
// # Delivery guarantee
//
// Publication is best effort: at most once. Events are published only after
// the commit that stored them succeeded, so nothing is ever published that
// was not stored; but the commit and the publication are two separate
// operations, and if the process dies between them, or the Publisher fails,
// or the commit's outcome is unknown (ErrUnknownOutcome), the committed
// events are not published and nothing here retries them. A failed
// publication does not fail the command: Commit returns nil, because the
// events are stored and a client that retried would duplicate them. The
// failure is reported instead, to the handler given with WithErrorHandler
// and to the logger given with WithLogger, with the events that were not
// published (an *Error).
//
// For delivery guarantees, run a relay (package relay) beside or instead of
// this middleware: it reads what the store committed (its Outbox, or its
// Feed from a saved checkpoint) and publishes it at least once, in stream
// order, with the commit ID as the de-duplication key; nothing committed is
// lost to a crash, a failed publication or a broker outage. With the NATS
// JetStream publisher of the natsjs sub-package as the Publisher here and
// as the relay's sink, JetStream holds each commit exactly once: this
// middleware publishes with low latency, and the relay publishes what it
// missed and skips what it already published.
//
// # Order
//
// Within one process, the events of a stream are published in stream order,
// each commit's events together and in commit order, even when several
// goroutines commit to the stream at once. To achieve this without holding a
// lock across the commit, a commit whose predecessor (an earlier commit to the
// same stream through the same middleware) is still being committed or
// published queues its events and returns; the goroutine that publishes the
// predecessor then publishes them. So Commit normally returns after its
// events were published, but not always; and a commit that never returns (a
// backend call that hangs without a deadline) delays the publication of
// later commits to its stream. Across processes there is no order: each
// process publishes its own commits.
//
// A Publisher may commit to the store it is published from (an in-process
// handler that issues another command): such a commit is queued behind the one
// being published and published when that is done, so it cannot deadlock.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/nilcheck"
)

// Message is one committed event as handed to a Publisher: the stored record
// (stream, sequence, event type name, encoded bytes, timestamp, metadata) and
// the decoded event, as the command handler raised it (a value or a pointer
// to one).
//
// Record.Data, Record.Metadata and Event are shared with the aggregate and
// with other subscribers: treat them as read-only. Record.Timestamp is the
// time the aggregate stamped on the commit; a backend that stores coarser
// timestamps (milliseconds, say) returns a truncated time on load.
type Message struct {
	Record es.Record
	Event  es.Event
}

// Publisher receives the events of each successful commit. The middleware
// calls Publish once per commit, with the commit's events in order (all of
// one stream); a Publisher used directly may be given events of several
// streams. Publish returns nil once every message is published.
//
// To report that only some messages failed, return an *Error listing the
// messages that were not published (possibly wrapping the cause); any other
// error means that none of msgs can be assumed published. Implementations
// must be safe for concurrent use: the middleware publishes commits to
// different streams concurrently.
type Publisher interface {
	Publish(ctx context.Context, msgs []Message) error
}

// PublisherFunc adapts a function to the Publisher interface.
type PublisherFunc func(ctx context.Context, msgs []Message) error

// Publish calls f(ctx, msgs).
func (f PublisherFunc) Publish(ctx context.Context, msgs []Message) error { return f(ctx, msgs) }

// ErrNotPublished is matched (with errors.Is) by every *Error: committed
// events that were not published.
var ErrNotPublished = errors.New("publish: committed events not published")

// ErrNilPublisher is returned by New when given no Publisher.
var ErrNilPublisher = errors.New("publish: nil publisher")

// Error reports committed events that were not published, or whose
// publication was not confirmed (some may have reached the broker: a broker
// that de-duplicates, like the NATS publisher's, makes republishing them
// safe). It matches ErrNotPublished and whatever Err matches.
type Error struct {
	Messages []Message // the events not published, in commit order
	Err      error     // the cause
}

// Error describes the streams and sequences that were not published.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("publish: ")
	b.WriteString(strconv.Itoa(len(e.Messages)))
	b.WriteString(" committed events not published (")
	b.WriteString(describe(e.Messages))
	b.WriteString(")")
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Is reports whether target is ErrNotPublished.
func (e *Error) Is(target error) bool { return target == ErrNotPublished }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Sequences returns the sequences of the unpublished events of stream, in
// the order of Messages.
func (e *Error) Sequences(stream es.StreamID) []int64 {
	var seqs []int64
	for _, m := range e.Messages {
		if m.Record.Stream == stream {
			seqs = append(seqs, m.Record.Sequence)
		}
	}
	return seqs
}

// describe summarises messages as "Type/Key sequences 3-5, Other/K 7": one
// entry per stream, contiguous sequences as ranges.
func describe(msgs []Message) string {
	var b strings.Builder
	for i := 0; i < len(msgs); {
		stream := msgs[i].Record.Stream
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(stream.String())
		b.WriteString(" sequence ")
		for first := true; i < len(msgs) && msgs[i].Record.Stream == stream; first = false {
			start := msgs[i].Record.Sequence
			end := start
			for i++; i < len(msgs) && msgs[i].Record.Stream == stream && msgs[i].Record.Sequence == end+1; i++ {
				end++
			}
			if !first {
				b.WriteString(",")
			}
			b.WriteString(strconv.FormatInt(start, 10))
			if end != start {
				b.WriteString("-")
				b.WriteString(strconv.FormatInt(end, 10))
			}
		}
	}
	return b.String()
}

// ErrorHandler is called with every publication failure. It runs on the
// goroutine that published, after the commit succeeded; it must not block
// for long, as it delays the publication of later commits to the stream. A
// panic in it is recovered and ignored. It may be called concurrently for
// different streams.
type ErrorHandler func(ctx context.Context, err *Error)

// Option configures New.
type Option func(*config)

type config struct {
	onError ErrorHandler
	logger  *slog.Logger
	timeout time.Duration
}

// WithErrorHandler sets a function to call with each publication failure.
func WithErrorHandler(h ErrorHandler) Option { return func(c *config) { c.onError = h } }

// WithLogger logs each publication failure at Error level on l, with the
// fields "aggregate_type", "key", "sequences" (the sequences not published)
// and "error". Without WithLogger or WithErrorHandler, failures are
// discarded.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithTimeout bounds each call to Publisher.Publish. The default is no
// bound beyond the Publisher's own (see New for the context a Publisher
// receives).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// New returns a Middleware that publishes the events of every successful
// commit to p, in order, and then returns the commit's result. Refresh and
// Close are passed through; Close does not close p, which the caller owns.
//
// p receives a context that carries the committing context's values
// (metadata, trace spans) but not its cancellation or deadline: the events
// are already stored, and a caller that gives up after the commit must not
// cause them to go unpublished. Bound publication with WithTimeout or in the
// Publisher itself. Panics in p are recovered and reported as failures.
//
// The middleware is safe for concurrent use if p is. It fails with
// ErrNilPublisher if p is nil.
func New(p Publisher, opts ...Option) (es.Middleware, error) {
	if nilcheck.IsNil(p) {
		return nil, ErrNilPublisher
	}
	var cfg config
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return func(next es.EventStore) es.EventStore {
		return &store{next: next, pub: p, cfg: cfg, queues: map[es.StreamID]*queue{}}
	}, nil
}

type store struct {
	next es.EventStore
	pub  Publisher
	cfg  config

	mu     sync.Mutex // guards queues and the slots and queues in it
	queues map[es.StreamID]*queue
}

// queue holds, in the order they entered Commit, the commits to one stream
// whose publication is not done.
type queue struct {
	slots    []*slot
	draining bool // a goroutine is publishing this queue's slots
}

type slotState uint8

const (
	pending slotState = iota // the commit has not returned
	ready                    // committed: publish msgs
	dropped                  // the commit failed: nothing to publish
)

type slot struct {
	state slotState
	ctx   context.Context
	msgs  []Message
}

func (s *store) Refresh(ctx context.Context, l es.Loader) error { return s.next.Refresh(ctx, l) }

// Unwrap returns the wrapped store (see eventsourcing.BackendOf).
func (s *store) Unwrap() es.EventStore { return s.next }

func (s *store) Close() error { return s.next.Close() }

// Commit commits through next and, if that succeeds, publishes.
//
// Order: a commit takes its place in the stream's queue before calling next.
// If two commits X and Y from this process both succeed and X took its place
// first, X was also stored first. X's expected sequence was read before X
// entered Commit, hence before Y did and before Y was stored; had Y been
// stored first, the stream's head would have moved past X's expected
// sequence and X would have conflicted. Publishing the queue in order
// therefore publishes in stream order.
func (s *store) Commit(ctx context.Context, c es.Commit) (err error) {
	if len(c.Records) == 0 {
		return s.next.Commit(ctx, c)
	}
	stream := c.Stream
	sl := s.enqueue(stream)
	resolved := false
	defer func() {
		if !resolved { // next.Commit panicked: keep the queue moving
			s.resolve(stream, sl, dropped, nil, nil)
		}
	}()
	err = s.next.Commit(ctx, c)
	if err != nil {
		resolved = true
		s.resolve(stream, sl, dropped, nil, nil)
		if errors.Is(err, es.ErrUnknownOutcome) {
			// The events may be stored: say so, since nothing here will
			// publish them (a relay reading the store's outbox or feed will).
			s.report(context.WithoutCancel(ctx), &Error{Messages: messages(c), Err: err})
		}
		return err
	}
	msgs := messages(c)
	resolved = true
	s.resolve(stream, sl, ready, ctx, msgs)
	return nil
}

// messages pairs the commit's records with its events.
func messages(c es.Commit) []Message {
	recs, events := c.Records, c.Events
	msgs := make([]Message, len(recs))
	for i, r := range recs {
		msgs[i].Record = r
		if i < len(events) {
			msgs[i].Event = events[i]
		}
	}
	return msgs
}

func (s *store) enqueue(stream es.StreamID) *slot {
	sl := &slot{}
	s.mu.Lock()
	q := s.queues[stream]
	if q == nil {
		q = &queue{}
		s.queues[stream] = q
	}
	q.slots = append(q.slots, sl)
	s.mu.Unlock()
	return sl
}

// resolve records the outcome of sl's commit and, unless another goroutine
// is already publishing the stream's queue, publishes every resolved commit
// at the head of the queue.
func (s *store) resolve(stream es.StreamID, sl *slot, state slotState, ctx context.Context, msgs []Message) {
	s.mu.Lock()
	sl.state, sl.ctx, sl.msgs = state, ctx, msgs
	q := s.queues[stream]
	if q.draining {
		s.mu.Unlock()
		return
	}
	q.draining = true
	defer func() {
		// publish recovers the Publisher's panics; if anything else panics
		// (a logger), leave the queue for the stream's next commit to drain.
		if r := recover(); r != nil {
			s.mu.Lock()
			q.draining = false
			if len(q.slots) == 0 {
				delete(s.queues, stream)
			}
			s.mu.Unlock()
			panic(r)
		}
	}()
	for {
		if len(q.slots) == 0 {
			delete(s.queues, stream)
			s.mu.Unlock()
			return
		}
		head := q.slots[0]
		if head.state == pending {
			q.draining = false // its committer will resume
			s.mu.Unlock()
			return
		}
		q.slots[0] = nil
		q.slots = q.slots[1:]
		s.mu.Unlock()
		if head.state == ready {
			s.publish(head.ctx, head.msgs)
		}
		s.mu.Lock()
	}
}

// publish publishes one commit's messages and reports a failure.
func (s *store) publish(ctx context.Context, msgs []Message) {
	ctx = context.WithoutCancel(ctx)
	if s.cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.timeout)
		defer cancel()
	}
	err := s.call(ctx, msgs)
	if err == nil {
		return
	}
	var perr *Error
	if !errors.As(err, &perr) {
		perr = &Error{Messages: msgs, Err: err}
	}
	if len(perr.Messages) == 0 {
		return // the publisher reports nothing missing
	}
	s.report(ctx, perr)
}

func (s *store) call(ctx context.Context, msgs []Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("publish: publisher panicked: %v", r)
		}
	}()
	return s.pub.Publish(ctx, msgs)
}

func (s *store) report(ctx context.Context, perr *Error) {
	if h := s.cfg.onError; h != nil {
		func() {
			defer func() { _ = recover() }() // a broken hook must not break publication
			h(ctx, perr)
		}()
	}
	if l := s.cfg.logger; l != nil {
		// Group per stream, so each line names one stream.
		msgs := perr.Messages
		for i := 0; i < len(msgs); {
			stream := msgs[i].Record.Stream
			var seqs []int64
			for ; i < len(msgs) && msgs[i].Record.Stream == stream; i++ {
				seqs = append(seqs, msgs[i].Record.Sequence)
			}
			l.LogAttrs(ctx, slog.LevelError, "eventsourcing: committed events not published",
				slog.String("aggregate_type", stream.AggregateType),
				slog.String("key", stream.Key),
				slog.Any("sequences", slices.Clip(seqs)),
				slog.Any("error", perr.Err))
		}
	}
}
