// Package nats is a publish.Publisher that publishes committed events to NATS
// JetStream, using the jetstream package of github.com/nats-io/nats.go.
//
// Each event becomes one message:
//
//   - subject: "events.<AggregateType>.<Key>" by default, with both parts
//     escaped by EscapeToken; WithSubjectPrefix replaces "events", and
//     WithSubject replaces the whole scheme. A JetStream stream must capture
//     the subjects (for example "events.>", or "events.Order.>" for one
//     aggregate type) or publication fails.
//   - payload: the event's encoded bytes (Record.Data), as stored.
//   - headers: Nats-Msg-Id (see MsgID) and the Header* constants of this
//     package: event type, aggregate type, key, sequence, timestamp and
//     metadata. Header values are ASCII, as NATS requires: names are escaped
//     with EscapeToken and metadata is JSON with non-ASCII characters
//     written as \u escapes.
//
// # Delivery
//
// The message ID is derived from the event's stream and sequence, so the
// server drops a second publication of the same event within the JetStream
// stream's duplicate window (StreamConfig.Duplicates, two minutes by
// default): republishing the events of a *publish.Error, or a retried
// publication, cannot duplicate them. Publication as a whole is at most once
// (see the publish package); a reader that tails the store and republishes
// from its last confirmed sequence gets at least once, and with the message
// IDs, exactly once within the window.
//
// Publish returns once the server has acknowledged (stored) every message,
// or reports the messages it did not acknowledge. By default the messages of
// a call are pipelined (sent without waiting, then every acknowledgement
// awaited: one round trip per commit, whatever its size); the server stores
// them in order, but if one fails, later ones may still be stored, leaving a
// gap that the returned error names. WithSequential sends one message at a
// time and stops at the first failure (one round trip per event, never a
// gap). Either way, order within one call is kept, and the publish
// middleware keeps the order of a stream's commits.
//
// A pipelined Publish that gives up waiting (its context is done) leaves
// the acknowledgements it did not receive pending in the jetstream
// publisher; give the JetStream context an acknowledgement timeout
// (jetstream.WithPublishAsyncTimeout) so that lost ones are forgotten.
package nats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
)

// Headers set on every message, besides jetstream.MsgIDHeader.
const (
	HeaderEventType     = "Eventsourcing-Event-Type"     // Record.EventType, escaped with EscapeToken
	HeaderAggregateType = "Eventsourcing-Aggregate-Type" // escaped with EscapeToken
	HeaderKey           = "Eventsourcing-Key"            // escaped with EscapeToken
	HeaderSequence      = "Eventsourcing-Sequence"       // decimal
	HeaderTimestamp     = "Eventsourcing-Timestamp"      // RFC 3339 with nanoseconds, UTC
	HeaderMetadata      = "Eventsourcing-Metadata"       // a JSON object of strings; absent if no metadata
)

// DefaultSubjectPrefix is the first token of the default subjects.
const DefaultSubjectPrefix = "events"

// MaxSubjectLen bounds the length of a subject. Longer subjects are
// refused before anything is sent: the server closes a connection whose
// protocol line exceeds its max_control_line (4 KiB by default).
const MaxSubjectLen = 2048

// maxToken is the longest escaped token the default subject scheme uses as
// is; longer ones are shortened (see EscapeToken).
const maxToken = 256

// ErrInvalidSubject reports a subject prefix or a subject (from WithSubject)
// that NATS cannot publish to: empty, too long, containing an empty token,
// whitespace, or a wildcard.
var ErrInvalidSubject = errors.New("nats: invalid subject")

// ErrNilJetStream is returned by New when given no JetStream publisher.
var ErrNilJetStream = errors.New("nats: nil JetStream publisher")

// Option configures New.
type Option func(*config)

type config struct {
	prefix     string
	subject    func(es.Record) string
	stream     string
	idPrefix   string
	timeout    time.Duration
	sequential bool
}

// WithSubjectPrefix replaces "events" in the default subjects
// "<prefix>.<AggregateType>.<Key>". The prefix may hold several tokens
// ("acme.orders.events").
func WithSubjectPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// WithSubject sets the function that names each event's subject, replacing
// the default scheme. It must return a valid subject (no wildcards, empty
// tokens or whitespace, at most MaxSubjectLen bytes); EscapeToken helps build
// one. An event whose subject is invalid is not published (nor are the later
// events of the call) and is reported with ErrInvalidSubject.
func WithSubject(f func(rec es.Record) string) Option { return func(c *config) { c.subject = f } }

// WithStream makes the server reject messages whose subject is not captured
// by the named JetStream stream (the Nats-Expected-Stream header), so that a
// misconfiguration fails loudly instead of storing events elsewhere.
func WithStream(name string) Option { return func(c *config) { c.stream = name } }

// WithMsgIDPrefix puts prefix before every message ID. Use it when events of
// several event stores, whose streams may share identities, are published
// into one JetStream stream: otherwise the server would drop one store's
// events as duplicates of the other's.
func WithMsgIDPrefix(prefix string) Option { return func(c *config) { c.idPrefix = prefix } }

// WithTimeout bounds a Publish call whose context has no deadline (default
// 5 seconds, like the jetstream package's API timeout). A context deadline
// takes precedence.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithSequential publishes the messages of a call one at a time, each
// awaiting its acknowledgement, and stops at the first failure, so that the
// JetStream stream never holds an event after one that failed. It costs a
// round trip per event instead of one per call.
func WithSequential() Option { return func(c *config) { c.sequential = true } }

// Publisher publishes events to NATS JetStream. It implements
// publish.Publisher. It is safe for concurrent use, as the jetstream
// publisher it wraps is.
type Publisher struct {
	js  jetstream.Publisher
	cfg config
}

// New returns a Publisher that publishes through js (a jetstream.JetStream,
// or anything implementing its Publisher part). The caller keeps ownership of
// the NATS connection. New fails with ErrNilJetStream if js is nil, and with
// ErrInvalidSubject if the subject prefix is not a valid subject.
func New(js jetstream.Publisher, opts ...Option) (*Publisher, error) {
	if js == nil {
		return nil, ErrNilJetStream
	}
	cfg := config{prefix: DefaultSubjectPrefix, timeout: 5 * time.Second}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.subject == nil {
		if err := checkSubject(cfg.prefix); err != nil {
			return nil, fmt.Errorf("subject prefix: %w", err)
		}
		if len(cfg.prefix) > MaxSubjectLen/2 {
			return nil, fmt.Errorf("%w: prefix longer than %d bytes", ErrInvalidSubject, MaxSubjectLen/2)
		}
	}
	return &Publisher{js: js, cfg: cfg}, nil
}

// Subject returns the subject of rec's message.
func (p *Publisher) Subject(rec es.Record) string {
	if p.cfg.subject != nil {
		return p.cfg.subject(rec)
	}
	return p.cfg.prefix + "." + shorten(EscapeToken(rec.Stream.AggregateType)) + "." + shorten(EscapeToken(rec.Stream.Key))
}

// MsgID returns the Nats-Msg-Id of the event at sequence of stream:
// "<AggregateType>.<Key>.<sequence>", the names escaped with EscapeToken.
// A Publisher with WithMsgIDPrefix puts its prefix before it.
func MsgID(stream es.StreamID, sequence int64) string {
	return EscapeToken(stream.AggregateType) + "." + EscapeToken(stream.Key) + "." + strconv.FormatInt(sequence, 10)
}

// EscapeToken makes s usable as one token of a NATS subject, reversibly. NATS
// tokens are separated by '.', and may not contain whitespace or the
// wildcards '*' and '>'; NATS also recommends printable ASCII. EscapeToken
// keeps every printable ASCII byte except '.', '*', '>', '%' and '~', and
// writes each other byte (of the UTF-8 encoding) as '%' and two upper-case
// hex digits: "order 7.1" becomes "order%207%2E1", "Straße" "Stra%C3%9Fe".
// UnescapeToken reverses it. An empty s stays empty (not a valid token).
//
// The default subject scheme uses the escaped names as tokens, except that a
// token longer than 256 bytes is shortened to its first bytes, '~' and a hash
// of the whole name ('~' never appears in an escaped name). The headers
// always carry the exact names.
func EscapeToken(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !plain(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexdigits = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plain(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hexdigits[c>>4], hexdigits[c&15])
		}
	}
	return string(b)
}

// UnescapeToken reverses EscapeToken. It fails if s holds a malformed
// escape.
func UnescapeToken(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("nats: truncated escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("nats: bad escape in %q", s)
		}
		b = append(b, byte(v))
		i += 2
	}
	return string(b), nil
}

// plain reports whether EscapeToken keeps c as is.
func plain(c byte) bool {
	return c > ' ' && c < 0x7f && c != '.' && c != '*' && c != '>' && c != '%' && c != '~'
}

// shorten bounds an escaped token's length: a long one keeps its first
// bytes (not splitting an escape), then '~' and 32 hex digits of the SHA-256
// of the whole token.
func shorten(tok string) string {
	if len(tok) <= maxToken {
		return tok
	}
	keep := maxToken - 33
	if i := strings.LastIndexByte(tok[:keep], '%'); i >= keep-2 {
		keep = i // do not cut "%XX" in two
	}
	sum := sha256.Sum256([]byte(tok))
	return tok[:keep] + "~" + hex.EncodeToString(sum[:16])
}

// checkSubject reports whether NATS can publish to subject.
func checkSubject(subject string) error {
	switch {
	case subject == "":
		return fmt.Errorf("%w: empty", ErrInvalidSubject)
	case len(subject) > MaxSubjectLen:
		return fmt.Errorf("%w: %d bytes, over %d", ErrInvalidSubject, len(subject), MaxSubjectLen)
	}
	for _, tok := range strings.Split(subject, ".") {
		switch {
		case tok == "":
			return fmt.Errorf("%w: %q has an empty token", ErrInvalidSubject, subject)
		case tok == "*" || tok == ">":
			return fmt.Errorf("%w: %q has a wildcard", ErrInvalidSubject, subject)
		case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			return fmt.Errorf("%w: %q has whitespace or a control character", ErrInvalidSubject, subject)
		}
	}
	return nil
}

// message builds the NATS message of m.
func (p *Publisher) message(m publish.Message) (*natsgo.Msg, string, error) {
	r := m.Record
	if err := r.Stream.Validate(); err != nil {
		return nil, "", err
	}
	if err := es.ValidEventName(r.EventType); err != nil {
		return nil, "", err
	}
	subject := p.Subject(r)
	if err := checkSubject(subject); err != nil {
		return nil, "", err
	}
	h := natsgo.Header{
		HeaderEventType:     {EscapeToken(r.EventType)},
		HeaderAggregateType: {EscapeToken(r.Stream.AggregateType)},
		HeaderKey:           {EscapeToken(r.Stream.Key)},
		HeaderSequence:      {strconv.FormatInt(r.Sequence, 10)},
		HeaderTimestamp:     {r.Timestamp.UTC().Format(time.RFC3339Nano)},
	}
	if len(r.Metadata) > 0 {
		md, err := json.Marshal(r.Metadata)
		if err != nil {
			return nil, "", fmt.Errorf("nats: metadata: %w", err)
		}
		h[HeaderMetadata] = []string{asciiJSON(md)}
	}
	return &natsgo.Msg{Subject: subject, Header: h, Data: r.Data}, p.cfg.idPrefix + MsgID(r.Stream, r.Sequence), nil
}

// asciiJSON rewrites the non-ASCII characters of a JSON text (which can only
// occur in strings) as \u escapes.
func asciiJSON(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if r < utf8.RuneSelf {
			sb.WriteRune(r)
			continue
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			fmt.Fprintf(&sb, `\u%04x\u%04x`, r1, r2)
		} else {
			fmt.Fprintf(&sb, `\u%04x`, r)
		}
	}
	return sb.String()
}

func (p *Publisher) pubOpts(id string) []jetstream.PublishOpt {
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(id)}
	if p.cfg.stream != "" {
		opts = append(opts, jetstream.WithExpectStream(p.cfg.stream))
	}
	return opts
}

// Publish publishes msgs in order and waits for the server to acknowledge
// them. A message the server reports as a duplicate (already stored under
// its message ID) counts as published. On failure it returns a
// *publish.Error listing the messages whose publication is not confirmed;
// with pipelining (the default), some of them may have been stored.
func (p *Publisher) Publish(ctx context.Context, msgs []publish.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok && p.cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.timeout)
		defer cancel()
	}
	// Build every message first: a message that cannot be published stops
	// the call there, before anything after it is sent.
	out := make([]*natsgo.Msg, 0, len(msgs))
	ids := make([]string, 0, len(msgs))
	var buildErr error
	for _, m := range msgs {
		nm, id, err := p.message(m)
		if err != nil {
			buildErr = fmt.Errorf("nats: %s sequence %d: %w", m.Record.Stream, m.Record.Sequence, err)
			break
		}
		out = append(out, nm)
		ids = append(ids, id)
	}
	var failed []int // indexes into msgs, ascending
	var cause error
	if p.cfg.sequential {
		failed, cause = p.sequential(ctx, out, ids)
	} else {
		failed, cause = p.pipelined(ctx, out, ids)
	}
	if buildErr != nil {
		for i := len(out); i < len(msgs); i++ {
			failed = append(failed, i)
		}
		cause = errors.Join(cause, buildErr)
	}
	if len(failed) == 0 {
		return nil
	}
	perr := &publish.Error{Messages: make([]publish.Message, len(failed)), Err: cause}
	for i, idx := range failed {
		perr.Messages[i] = msgs[idx]
	}
	return perr
}

func (p *Publisher) sequential(ctx context.Context, out []*natsgo.Msg, ids []string) ([]int, error) {
	for i, m := range out {
		if _, err := p.js.PublishMsg(ctx, m, p.pubOpts(ids[i])...); err != nil {
			failed := make([]int, 0, len(out)-i)
			for j := i; j < len(out); j++ {
				failed = append(failed, j)
			}
			return failed, fmt.Errorf("nats: publishing %s: %w", ids[i], err)
		}
	}
	return nil, nil
}

func (p *Publisher) pipelined(ctx context.Context, out []*natsgo.Msg, ids []string) ([]int, error) {
	futures := make([]jetstream.PubAckFuture, len(out))
	var failed []int
	var first error
	fail := func(i int, err error) {
		failed = append(failed, i)
		if first == nil {
			first = fmt.Errorf("nats: publishing %s: %w", ids[i], err)
		}
	}
	for i, m := range out {
		// No retries by the client: a retried message could be stored after
		// the ones sent after it.
		f, err := p.js.PublishMsgAsync(m, append(p.pubOpts(ids[i]), jetstream.WithRetryAttempts(0))...)
		if err != nil {
			fail(i, err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			fail(i, err)
		case <-ctx.Done():
			fail(i, fmt.Errorf("no acknowledgement: %w", ctx.Err()))
		}
	}
	slices.Sort(failed)
	if len(failed) > 1 {
		first = fmt.Errorf("%d of %d messages not confirmed, first: %w", len(failed), len(out), first)
	}
	return failed, first
}
