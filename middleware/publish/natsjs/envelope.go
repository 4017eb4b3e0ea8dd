package natsjs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aggregatekit/eventsourcing/backend"
)

// Headers set on every message, besides jetstream.MsgIDHeader (the commit
// ID) and the server's expectation headers. Values are ASCII: names are
// escaped with EscapeToken.
const (
	HeaderEnvelope      = "Eventsourcing-Envelope"       // the envelope's version: EnvelopeVersion
	HeaderAggregateType = "Eventsourcing-Aggregate-Type" // escaped with EscapeToken
	HeaderKey           = "Eventsourcing-Key"            // escaped with EscapeToken
	HeaderFirstSequence = "Eventsourcing-First-Sequence" // decimal
	HeaderLastSequence  = "Eventsourcing-Last-Sequence"  // decimal
	HeaderCommitID      = "Eventsourcing-Commit-Id"      // as stored; absent for a commit stored without ID
	HeaderEventTypes    = "Eventsourcing-Event-Types"    // each event's type, escaped, separated by one space
)

// EnvelopeVersion is the version of the payload layout this package
// writes, in HeaderEnvelope and in the payload's "v".
const EnvelopeVersion = 1

// ErrMalformed is matched by every error DecodeCommit returns: the message
// is not a commit this package published, or it was damaged.
var ErrMalformed = errors.New("natsjs: malformed commit message")

// envelope is the payload: a JSON object
//
//	{"v": 1, "aggregate_type": "Order", "key": "o-1", "commit_id": "0190...",
//	 "events": [{"sequence": 3, "type": "LineAdded", "time": "2026-01-02T03:04:05.123456789Z",
//	             "metadata": {"correlation_id": "r-7"}, "data": "eyJTS1UiOiJ0ZWEifQ=="}]}
//
// "commit_id" is omitted for a commit stored without ID, "metadata" when
// empty; "data" is the stored bytes in standard base64; "time" is RFC 3339
// with nanoseconds, in UTC.
type envelope struct {
	Version       int             `json:"v"`
	AggregateType string          `json:"aggregate_type"`
	Key           string          `json:"key"`
	CommitID      string          `json:"commit_id,omitempty"`
	Events        []envelopeEvent `json:"events"`
}

type envelopeEvent struct {
	Sequence int64             `json:"sequence"`
	Type     string            `json:"type"`
	Time     time.Time         `json:"time"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Data     []byte            `json:"data"`
}

// check validates a commit as backend.CheckAppend does, accepting a commit
// stored without ID. It also refuses a commit of no events.
func check(c backend.Commit) error {
	if len(c.Records) == 0 {
		return fmt.Errorf("%w: commit of %s has no events", backend.ErrInvalidAppend, c.Stream)
	}
	if c.ID == "" { // stored before commit IDs: check the rest
		recs := make([]backend.Record, len(c.Records))
		for i, r := range c.Records {
			if r.CommitID != "" {
				return fmt.Errorf("%w: %s record %d has commit ID %q, the commit none", backend.ErrInvalidAppend, c.Stream, i, r.CommitID)
			}
			r.CommitID = "-"
			recs[i] = r
		}
		c.ID, c.Records = "-", recs
	}
	return backend.CheckAppend(c)
}

// encode builds the headers and payload of c's message, without the
// message ID and expectations.
func encode(c backend.Commit) (natsgo.Header, []byte, error) {
	env := envelope{
		Version:       EnvelopeVersion,
		AggregateType: c.Stream.AggregateType,
		Key:           c.Stream.Key,
		CommitID:      c.ID,
		Events:        make([]envelopeEvent, len(c.Records)),
	}
	var types strings.Builder
	for i, r := range c.Records {
		data := r.Data
		if data == nil {
			data = []byte{}
		}
		env.Events[i] = envelopeEvent{Sequence: r.Sequence, Type: r.EventType, Time: r.Timestamp.UTC(), Metadata: r.Metadata, Data: data}
		if i > 0 {
			types.WriteByte(' ')
		}
		types.WriteString(EscapeToken(r.EventType))
	}
	payload, err := json.Marshal(env)
	if err != nil {
		return nil, nil, fmt.Errorf("natsjs: encode commit of %s: %w", c.Stream, err)
	}
	h := natsgo.Header{
		HeaderEnvelope:      {strconv.Itoa(EnvelopeVersion)},
		HeaderAggregateType: {EscapeToken(c.Stream.AggregateType)},
		HeaderKey:           {EscapeToken(c.Stream.Key)},
		HeaderFirstSequence: {strconv.FormatInt(c.First(), 10)},
		HeaderLastSequence:  {strconv.FormatInt(c.Last(), 10)},
		HeaderEventTypes:    {types.String()},
	}
	if c.ID != "" {
		h[HeaderCommitID] = []string{c.ID}
	}
	return h, payload, nil
}

// DecodeCommit returns the commit carried by a message this package
// published, from its headers and payload: for a JetStream consumer's
// message m, DecodeCommit(m.Headers(), m.Data()); for a *nats.Msg or a
// *jetstream.RawStreamMsg, its Header and Data fields. The commit comes
// back as the store holds it (stream, expected sequence, commit ID, and per
// event the sequence, type, timestamp in UTC, metadata and data bytes),
// ready for a read side to apply.
//
// It refuses, with an error matching ErrMalformed and never a panic, a
// message that is not a commit of a known envelope version, whose payload
// does not decode, whose events are not numbered contiguously or carry an
// invalid stream, type, time, metadata or commit ID (as
// backend.CheckAppend defines them), or whose headers disagree with its
// payload. A message ID header, when present, must be the commit ID (or,
// for a commit stored without ID, the derived ID, which it does not check).
func DecodeCommit(h natsgo.Header, data []byte) (backend.Commit, error) {
	bad := func(format string, args ...any) (backend.Commit, error) {
		return backend.Commit{}, fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	if v := h.Get(HeaderEnvelope); v != strconv.Itoa(EnvelopeVersion) {
		return bad("envelope version header %q, want %d", v, EnvelopeVersion)
	}
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return bad("payload: %v", err)
	}
	if env.Version != EnvelopeVersion {
		return bad("payload version %d, want %d", env.Version, EnvelopeVersion)
	}
	if len(env.Events) == 0 {
		return bad("no events")
	}
	stream := backend.StreamID{AggregateType: env.AggregateType, Key: env.Key}
	if err := stream.Validate(); err != nil {
		return bad("%v", err)
	}
	first := env.Events[0].Sequence
	if first < 1 {
		return bad("%s: first sequence %d", stream, first)
	}
	c := backend.Commit{Stream: stream, Expected: first - 1, ID: env.CommitID, Records: make([]backend.Record, len(env.Events))}
	for i, e := range env.Events {
		if e.Sequence != first+int64(i) {
			return bad("%s: event %d has sequence %d, want %d", stream, i, e.Sequence, first+int64(i))
		}
		data := e.Data
		if data == nil {
			data = []byte{}
		}
		var md backend.Metadata
		if len(e.Metadata) > 0 {
			md = backend.Metadata(e.Metadata)
		}
		c.Records[i] = backend.Record{Stream: stream, Sequence: e.Sequence, EventType: e.Type, Data: data,
			Timestamp: e.Time.UTC(), Metadata: md, CommitID: env.CommitID}
	}
	if err := check(c); err != nil {
		return bad("%v", err)
	}
	// The headers must agree with the payload.
	if v := h.Get(HeaderAggregateType); v != EscapeToken(stream.AggregateType) {
		return bad("aggregate type header %q disagrees with the payload's %q", v, stream.AggregateType)
	}
	if v := h.Get(HeaderKey); v != EscapeToken(stream.Key) {
		return bad("key header %q disagrees with the payload's %q", v, stream.Key)
	}
	if v := h.Get(HeaderFirstSequence); v != strconv.FormatInt(c.First(), 10) {
		return bad("%s: first sequence header %q, payload %d", stream, v, c.First())
	}
	if v := h.Get(HeaderLastSequence); v != strconv.FormatInt(c.Last(), 10) {
		return bad("%s: last sequence header %q, payload %d", stream, v, c.Last())
	}
	if v := h.Get(HeaderCommitID); v != c.ID {
		return bad("%s: commit ID header %q, payload %q", stream, v, c.ID)
	}
	if id := h.Get(jetstream.MsgIDHeader); id != "" && c.ID != "" && id != c.ID {
		return bad("%s: message ID %q is not the commit ID %q", stream, id, c.ID)
	}
	types := strings.Split(h.Get(HeaderEventTypes), " ")
	if len(types) != len(c.Records) {
		return bad("%s: %d event types in the header, %d events", stream, len(types), len(c.Records))
	}
	for i, t := range types {
		if t != EscapeToken(c.Records[i].EventType) {
			return bad("%s: event type header %q disagrees with the payload's %q", stream, t, c.Records[i].EventType)
		}
	}
	return c, nil
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
// of the whole name ('~' never appears in an escaped name). The headers and
// the payload always carry the exact names.
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
// escape or a byte EscapeToken would have escaped.
func UnescapeToken(s string) (string, error) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			if !plain(c) {
				return "", fmt.Errorf("natsjs: unescaped byte %#x in %q", c, s)
			}
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("natsjs: truncated escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("natsjs: bad escape in %q", s)
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

// maxToken is the longest escaped token the subject scheme uses as is;
// longer ones are shortened (see EscapeToken).
const maxToken = 256

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
