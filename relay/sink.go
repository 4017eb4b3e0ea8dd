package relay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/nilcheck"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
)

// Sink is where a Relay delivers commits: the NATS JetStream publisher of
// package middleware/publish/natsjs implements it, and ToPublisher adapts
// any publish.Publisher (such as the in-process publish.Bus).
//
// It is the smallest interface that serves both, because it speaks in the
// unit the relay moves and that a de-duplicating broker needs: whole
// commits, in bytes, each with its commit ID and sequences. A broker sink
// (JetStream) publishes the stored bytes and needs no decoding; a sink of
// decoded events (the Bus) decodes them itself, which ToPublisher does
// with an EventRegistry. The per-event publish.Publisher would force the
// relay to decode for sinks that do not want it, and a broker sink to
// reassemble commits that the relay already has.
//
// PublishCommits receives commits in the order the relay read them; the
// commits of one stream come in stream order (not necessarily adjacent).
// It returns nil once every commit is published (a commit the sink finds
// already published counts as published). To report that only some
// commits failed, it returns an *Error naming them; the relay then treats
// the others as published. Any other error means that none may be assumed
// published. Whatever it returns, the relay republishes what was not
// confirmed, so a sink must tolerate receiving a commit again (a broker
// de-duplicates on the commit ID; an in-process subscriber sees it again).
// A sink must not publish a commit of a stream after one of the same
// stream that failed in the same call. Implementations must be safe for
// concurrent use when several relays share them.
type Sink interface {
	PublishCommits(ctx context.Context, commits []backend.Commit) error
}

// SinkFunc adapts a function to the Sink interface.
type SinkFunc func(ctx context.Context, commits []backend.Commit) error

// PublishCommits calls f(ctx, commits).
func (f SinkFunc) PublishCommits(ctx context.Context, commits []backend.Commit) error {
	return f(ctx, commits)
}

// Error reports the commits of a Sink call that were not published (or
// whose publication is not confirmed). It matches publish.ErrNotPublished
// and whatever Err matches.
type Error struct {
	Commits []backend.CommitRef // the commits not published, in the order given
	Err     error               // the cause
}

// Error describes the commits not published and the cause.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("relay: ")
	b.WriteString(strconv.Itoa(len(e.Commits)))
	b.WriteString(" commits not published (")
	for i, c := range e.Commits {
		if i == 3 {
			b.WriteString(", ...")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d-%d", c.Stream, c.First, c.Last)
	}
	b.WriteString(")")
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Is reports whether target is publish.ErrNotPublished.
func (e *Error) Is(target error) bool { return target == publish.ErrNotPublished }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ToPublisher returns a Sink that hands each commit to p as one Publish
// call of publish.Messages, one per event, in order, like the after-commit
// publish middleware does. With a registry, each Message carries the event
// decoded into its registered Go type (as a value), which the typed
// subscriptions of a publish.Bus (publish.On) need; with a nil registry
// Message.Event is nil and only the records are delivered.
//
// A commit that cannot be decoded (an unknown event type, data the codec
// refuses) is not published and is reported with an error matching
// eventsourcing.ErrUnknownEventType or eventsourcing.ErrCorruptStream; the
// relay keeps retrying it, and later commits of its stream wait behind it,
// so register the type (or fix the codec) to unblock them. After a commit
// fails, the later commits of its stream in the same call are not
// published. ToPublisher returns nil if p is nil.
func ToPublisher(p publish.Publisher, reg es.EventRegistry) Sink {
	if nilcheck.IsNil(p) {
		return nil
	}
	if nilcheck.IsNil(reg) {
		reg = nil
	}
	return &publisherSink{p: p, reg: reg}
}

type publisherSink struct {
	p   publish.Publisher
	reg es.EventRegistry
}

func (s *publisherSink) PublishCommits(ctx context.Context, commits []backend.Commit) error {
	var failed []backend.CommitRef
	var errs []error
	var broken map[backend.StreamID]bool
	for _, c := range commits {
		if len(c.Records) == 0 {
			continue
		}
		if broken[c.Stream] {
			failed = append(failed, c.Ref())
			continue
		}
		err := ctx.Err()
		if err == nil {
			err = s.publish(ctx, c)
		}
		if err != nil {
			if broken == nil {
				broken = map[backend.StreamID]bool{}
			}
			broken[c.Stream] = true
			failed = append(failed, c.Ref())
			errs = append(errs, fmt.Errorf("%s %d-%d: %w", c.Stream, c.First(), c.Last(), err))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &Error{Commits: failed, Err: errors.Join(errs...)}
}

// publish decodes and publishes one commit; a panic in the codec or the
// publisher becomes an error.
func (s *publisherSink) publish(ctx context.Context, c backend.Commit) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("relay: publishing panicked: %v", r)
		}
	}()
	msgs, err := s.messages(c)
	if err != nil {
		return err
	}
	return s.p.Publish(ctx, msgs)
}

// messages decodes the commit's records.
func (s *publisherSink) messages(c backend.Commit) ([]publish.Message, error) {
	msgs := make([]publish.Message, len(c.Records))
	for i, rec := range c.Records {
		msgs[i].Record = rec
		if s.reg == nil {
			continue
		}
		e, err := es.DecodeEvent(s.reg, rec) // upcasts older forms
		if err != nil {
			return nil, err
		}
		msgs[i].Event = e
	}
	return msgs, nil
}
