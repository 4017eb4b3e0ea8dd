package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/nilcheck"
	"github.com/aggregatekit/eventsourcing/projection"
)

// Source is a projection.Source over the commits a Publisher (fed by a
// relay) holds in a JetStream stream: the read side for any store,
// MongoDB and DynamoDB included. Each projection version reads through a
// durable pull consumer of its own, filtered on the Publisher's subjects,
// that acknowledges all messages up to one at once (AckAll).
//
// Positions are JetStream stream sequences, in 20 decimal digits. Because
// the Publisher keeps each stream's commits once and in stream order on
// the stream's subject, and the consumer delivers in stream sequence
// order, the runner sees each stream's commits in order.
//
// The checkpoint the runner stores with the read model is the authority;
// the consumer follows it. Open reuses the durable consumer only when its
// state is exactly the checkpoint (every delivered message acknowledged,
// the acknowledgement floor at the checkpoint); otherwise it deletes the
// consumer and creates it again to deliver from the message after the
// checkpoint. Within a subscription every delivery is checked against the
// consumer's delivery sequence: a delivery the subscription did not
// receive (a pull request that expired as a message was sent, a second
// runner on the same consumer) makes Read fail, so the runner starts
// again from its checkpoint, rather than acknowledge past a message it
// never applied. So run one runner per projection version on a Source;
// a second one is safe, but the two keep resetting the shared consumer.
//
// Limits of the JetStream stream (MaxAge, MaxMsgs, MaxBytes) that remove
// messages a projection has not read make the runner stop with a
// *projection.GapError for each stream that lost a commit; a projection
// built after such a removal starts mid-stream and stops the same way. A
// message that is not a commit of this package stops the runner with an
// error matching ErrMalformed and backend.ErrCorruptStream.
//
// Tested against nats-server v2.15.2 (a single server, file storage).
type Source struct {
	js      jetstream.JetStream
	stream  string
	filter  string
	ackWait time.Duration
	durable func(projection.ID) string

	mu     sync.Mutex
	handle jetstream.Stream
}

// SourceOption configures NewSource.
type SourceOption func(*Source)

// WithSourcePrefix sets the subject prefix the Publisher publishes under
// (default DefaultSubjectPrefix): the consumer reads "<prefix>.>".
func WithSourcePrefix(prefix string) SourceOption {
	return func(s *Source) { s.filter = prefix + ".>" }
}

// WithAckWait sets how long the server waits for the acknowledgement of a
// delivered message before it delivers it again (default 30 s). Make it
// longer than a unit of work of the runner takes.
func WithAckWait(d time.Duration) SourceOption {
	return func(s *Source) {
		if d > 0 {
			s.ackWait = d
		}
	}
}

// WithDurableName sets how a projection's consumer is named (default
// DurableName).
func WithDurableName(name func(projection.ID) string) SourceOption {
	return func(s *Source) {
		if name != nil {
			s.durable = name
		}
	}
}

// DurableName is the default consumer name of a projection version:
// "projection_<len(name)>_<name>_<version>", which no two IDs share.
func DurableName(id projection.ID) string {
	return "projection_" + strconv.Itoa(len(id.Name)) + "_" + id.Name + "_" + id.Version
}

// NewSource returns a Source reading the JetStream stream named stream
// through js. The stream must exist when a runner opens the Source.
func NewSource(js jetstream.JetStream, stream string, opts ...SourceOption) (*Source, error) {
	if nilcheck.IsNil(js) {
		return nil, ErrNilJetStream
	}
	if stream == "" || containsAny(stream, " \t\r\n.*>/\\") {
		return nil, fmt.Errorf("%w: %q", ErrInvalidStreamName, stream)
	}
	s := &Source{js: js, stream: stream, filter: DefaultSubjectPrefix + ".>", ackWait: 30 * time.Second, durable: DurableName}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	if err := checkSubject(s.filter[:len(s.filter)-2]); err != nil {
		return nil, fmt.Errorf("subject prefix: %w", err)
	}
	return s, nil
}

func containsAny(s, chars string) bool {
	for i := 0; i < len(s); i++ {
		for j := 0; j < len(chars); j++ {
			if s[i] == chars[j] {
				return true
			}
		}
	}
	return false
}

// jsPosition encodes a stream sequence as a Position.
func jsPosition(seq uint64) projection.Position {
	return projection.Position(fmt.Sprintf("%020d", seq))
}

// jsSequence decodes a Position into a stream sequence.
func jsSequence(p projection.Position) (uint64, error) {
	if p == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(string(p), 10, 64)
	if err != nil || len(p) != 20 {
		return 0, fmt.Errorf("%w: %q is not a JetStream stream sequence", backend.ErrInvalidPosition, p)
	}
	return n, nil
}

func (s *Source) streamHandle(ctx context.Context) (jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handle != nil {
		return s.handle, nil
	}
	h, err := s.js.Stream(ctx, s.stream)
	if err != nil {
		return nil, fmt.Errorf("natsjs: stream %s: %w", s.stream, err)
	}
	s.handle = h
	return h, nil
}

// Open returns a subscription to the commits after the position after,
// through id's durable consumer, reconciled with after as the type's doc
// says.
func (s *Source) Open(ctx context.Context, id projection.ID, after projection.Position) (projection.Subscription, error) {
	seq, err := jsSequence(after)
	if err != nil {
		return nil, err
	}
	st, err := s.streamHandle(ctx)
	if err != nil {
		return nil, err
	}
	name := s.durable(id)
	cons, err := st.Consumer(ctx, name)
	switch {
	case err == nil:
		info := cons.CachedInfo()
		if info.NumAckPending == 0 && info.AckFloor.Stream == seq && info.Delivered.Stream == seq &&
			info.Config.FilterSubject == s.filter && info.Config.AckPolicy == jetstream.AckAllPolicy {
			return &jsSub{s: s, cons: cons, lastDelivery: info.Delivered.Consumer, pending: -1}, nil
		}
		if err := st.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("natsjs: reset consumer %s to %q: %w", name, after, err)
		}
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("natsjs: consumer %s: %w", name, err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "eventsourcing projection " + id.String(),
		FilterSubject: s.filter,
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       s.ackWait,
		MaxDeliver:    -1,
		MaxAckPending: 20000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if seq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, seq+1
	}
	cons, err = st.CreateConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("natsjs: create consumer %s at %q: %w", name, after, err)
	}
	return &jsSub{s: s, cons: cons, pending: -1}, nil
}

// jsSub is one subscription: it is used by one goroutine at a time.
type jsSub struct {
	s            *Source
	cons         jetstream.Consumer
	lastDelivery uint64          // the consumer sequence of the last delivery received
	stash        []jetstream.Msg // received by Wait, not yet returned by Read
	unacked      []unackedMsg    // returned by Read, not yet acknowledged
	pending      int64
}

type unackedMsg struct {
	pos projection.Position
	msg jetstream.Msg
}

// errMissedDelivery reports a delivery the subscription did not receive.
var errMissedDelivery = errors.New("natsjs: the consumer delivered a message this subscription did not receive")

// take checks a received message and decodes it.
func (u *jsSub) take(m jetstream.Msg) (backend.FeedCommit, error) {
	meta, err := m.Metadata()
	if err != nil {
		return backend.FeedCommit{}, fmt.Errorf("natsjs: message metadata: %w", err)
	}
	if meta.Sequence.Consumer != u.lastDelivery+1 {
		return backend.FeedCommit{}, fmt.Errorf("%w (delivery %d after %d)", errMissedDelivery, meta.Sequence.Consumer, u.lastDelivery)
	}
	u.lastDelivery = meta.Sequence.Consumer
	u.pending = int64(meta.NumPending)
	c, err := DecodeCommit(m.Headers(), m.Data())
	if err != nil {
		return backend.FeedCommit{}, &corruptMessage{seq: meta.Sequence.Stream, subject: m.Subject(), err: err}
	}
	pos := jsPosition(meta.Sequence.Stream)
	u.unacked = append(u.unacked, unackedMsg{pos: pos, msg: m})
	return backend.FeedCommit{Commit: c, Position: pos}, nil
}

// corruptMessage is a message DecodeCommit refused: it matches ErrMalformed
// and backend.ErrCorruptStream, which stops the runner.
type corruptMessage struct {
	seq     uint64
	subject string
	err     error
}

func (e *corruptMessage) Error() string {
	return fmt.Sprintf("natsjs: message %d on %s: %v", e.seq, e.subject, e.err)
}

func (e *corruptMessage) Is(target error) bool { return target == backend.ErrCorruptStream }

func (e *corruptMessage) Unwrap() error { return e.err }

// Read returns up to max commits available now.
func (u *jsSub) Read(ctx context.Context, max int) ([]backend.FeedCommit, error) {
	out := make([]backend.FeedCommit, 0, min(max, 64))
	for len(u.stash) > 0 && len(out) < max {
		c, err := u.take(u.stash[0])
		u.stash = u.stash[1:]
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) >= max {
		return out, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	batch, err := u.cons.FetchNoWait(max - len(out))
	if err != nil {
		return nil, fmt.Errorf("natsjs: fetch: %w", err)
	}
	for m := range batch.Messages() {
		c, err := u.take(m)
		if err != nil {
			for range batch.Messages() { // drain
			}
			return nil, err
		}
		out = append(out, c)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, natsgo.ErrTimeout) {
		return nil, fmt.Errorf("natsjs: fetch: %w", err)
	}
	return out, nil
}

// Wait waits up to a second for the next message, and keeps it for Read.
func (u *jsSub) Wait(ctx context.Context) error {
	if len(u.stash) > 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	batch, err := u.cons.Fetch(1, jetstream.FetchContext(wctx))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("natsjs: fetch: %w", err)
	}
	for m := range batch.Messages() {
		u.stash = append(u.stash, m)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, natsgo.ErrTimeout) &&
		!errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("natsjs: fetch: %w", err)
	}
	return nil
}

// Ack acknowledges every message up to pos with one acknowledgement of
// the last of them, and waits for the server to confirm it.
func (u *jsSub) Ack(ctx context.Context, pos projection.Position) error {
	n := 0
	for n < len(u.unacked) && u.unacked[n].pos <= pos {
		n++
	}
	if n == 0 {
		return nil
	}
	if err := u.unacked[n-1].msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("natsjs: acknowledge %q: %w", pos, err)
	}
	u.unacked = u.unacked[n:]
	return nil
}

// Pending returns the number of messages the consumer had not delivered
// when the last one was received.
func (u *jsSub) Pending() (int64, bool) { return u.pending, u.pending >= 0 }

// Close forgets the subscription; the durable consumer stays.
func (u *jsSub) Close() error {
	u.stash, u.unacked = nil, nil
	return nil
}

var (
	_ projection.Source = (*Source)(nil)
	_ projection.Pender = (*jsSub)(nil)
)
