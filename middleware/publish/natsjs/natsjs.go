// Package natsjs publishes commits to NATS JetStream, using the jetstream
// package of github.com/nats-io/nats.go. Its Publisher serves both paths
// of the toolkit with the same messages: it is a publish.Publisher for the
// after-commit publish middleware (low latency, best effort) and a
// relay.Sink for package relay (at least once from the store, exactly once
// into JetStream). A stack may use both; JetStream then holds each commit
// once.
//
// # Messages
//
// Each commit becomes one message:
//
//   - subject: "<prefix>.<AggregateType>.<Key>" ("events" by default, see
//     WithSubjectPrefix), both names escaped by EscapeToken: one subject per
//     stream. The JetStream stream named in New must capture the subjects
//     (for example "events.>").
//   - Nats-Msg-Id: the commit ID, unique across the store and, being a
//     UUIDv7 or a caller's command ID, across stores: two stores publishing
//     to one server never collide. A commit stored before commit IDs
//     existed gets "<subject>:<first>-<last>" instead.
//   - headers: the Header* constants: envelope version, aggregate type and
//     key (escaped), first and last sequence, commit ID, event types.
//   - payload: a JSON envelope of the commit's events, each with its
//     sequence, type, timestamp (RFC 3339 with nanoseconds, UTC), metadata
//     and data bytes exactly (standard base64), as below.
//
// The envelope ("commit_id" is absent for a commit stored without ID,
// "metadata" when empty):
//
//	{"v":1,"aggregate_type":"Order","key":"o-1","commit_id":"0190c3...",
//	 "events":[{"sequence":3,"type":"LineAdded","time":"2026-01-02T03:04:05.123456789Z",
//	            "metadata":{"correlation_id":"r-7"},"data":"eyJTS1UiOiJ0ZWEifQ=="}]}
//
// DecodeCommit turns a message back into the commit, for a read side
// consuming JetStream.
//
// # Exactly once, in order, without relying on the duplicate window
//
// JetStream drops a message whose Nats-Msg-Id it has seen, but only within
// the stream's duplicate window (StreamConfig.Duplicates, two minutes by
// default): after a longer outage, a relay that republishes a commit whose
// acknowledgement it lost would store it twice. So the Publisher does not
// rely on the window. It keeps, per subject, this invariant: the subject
// holds its stream's commits in stream order, without a gap (from
// wherever the JetStream stream's limits let the subject start). Before
// publishing a commit of sequences first..last it looks at the subject's
// last message (cached per subject, read from the server on a miss):
//
//   - it holds sequence last or later: the commit is already there; it is
//     not published again (it counts as published);
//   - it ends at first-1: the commit is published with the subject's
//     expected last sequence (Nats-Expected-Last-Subject-Sequence), so the
//     server refuses it if anything was appended to the subject meanwhile
//     (another relay, another process); the Publisher then reads the
//     subject again and decides again;
//   - it ends before first-1: the commit's predecessor is not there; the
//     commit is not published (ErrGap): it would leave a gap that nothing
//     could fill in order. The relay publishes the predecessor first.
//
// An empty subject is the one difference between the two paths. The relay
// (PublishCommits) hands over a stream's commits in order, each after the
// previous one was confirmed, so for it an empty subject means the earlier
// ones were removed by the JetStream stream's limits: it publishes. The
// after-commit path (Publish) cannot know that an earlier commit of the
// stream was published: it publishes into an empty subject only a
// stream's first commit, and otherwise leaves the commit to the relay
// (ErrGap). That is what makes the combination safe: the after-commit path
// never puts a commit before one it skipped, so "the subject holds a later
// sequence" always means "the commit is there".
//
// Every decision is checked by the server, so any number of relays and
// processes may publish the same commits at once. The costs: one round
// trip per commit when the subject is cached (the publication), two when
// it is not or when another publisher appended first (a read, then the
// publication), none for a commit found already there in the cache. A
// relay's batch is published stream by stream, one commit of a stream at
// a time, with up to WithConcurrency streams in flight at once.
//
// What this needs from the JetStream stream: it must keep the last message
// of each subject until a newer one replaces it. Limits retention does
// (MaxMsgsPerSubject of 1 or more is fine; MaxAge, MaxMsgs or MaxBytes
// may empty a subject, after which the relay publishes the stream's next
// commit, and the after-commit path leaves it to the relay). WorkQueue and
// Interest retention, which delete consumed messages, do not: a relay
// would republish what was consumed. Each store needs subjects of its own
// (its own prefix): two stores sharing subjects would each take the
// other's commits for their own. The Publisher reports what it can detect
// of that (ErrSubjectConflict), not all of it.
//
// Tested against nats-server v2.15.2, a single server with file storage;
// a clustered stream (R3) answers a failed expectation with an equivalent
// error code, which the Publisher also recognises, and may serve the
// subject's last message from a replica that lags (with AllowDirect),
// which costs a retry, not correctness.
package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/nilcheck"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/relay"
)

// DefaultSubjectPrefix is the first token of the default subjects.
const DefaultSubjectPrefix = "events"

// MaxSubjectLen bounds the length of a subject. Longer subjects are
// refused before anything is sent: the server closes a connection whose
// protocol line exceeds its max_control_line (4 KiB by default).
const MaxSubjectLen = 2048

// Errors of this package. Publication errors name the stream and the
// commit's sequences and wrap these or the jetstream package's errors.
var (
	// ErrNilJetStream is returned by New when given no JetStream.
	ErrNilJetStream = errors.New("natsjs: nil JetStream")
	// ErrInvalidStreamName is returned by New for an empty JetStream
	// stream name or one NATS refuses (whitespace, '.', '*', '>').
	ErrInvalidStreamName = errors.New("natsjs: invalid JetStream stream name")
	// ErrInvalidSubject reports a subject prefix, or a subject, that NATS
	// cannot publish to: empty, too long, with an empty token,
	// whitespace, or a wildcard.
	ErrInvalidSubject = errors.New("natsjs: invalid subject")
	// ErrGap reports a commit that was not published because the subject
	// does not hold its stream's previous commit (see the package doc).
	// The relay publishes it once the previous one is there.
	ErrGap = errors.New("natsjs: the subject does not hold the stream's previous commit")
	// ErrSubjectConflict reports a subject whose last message is not
	// consistent with the commit: a different commit at the same
	// sequence, a commit whose sequences overlap this one's, or a message
	// that this package did not publish. Usually two stores, or another
	// producer, publish to the same subjects.
	ErrSubjectConflict = errors.New("natsjs: the subject holds a conflicting message")
	// ErrTooLarge reports a commit whose message exceeds the server's
	// maximum payload (max_payload, 1 MiB by default). Nothing is sent;
	// raise the server's limit, since a commit cannot be split.
	ErrTooLarge = errors.New("natsjs: commit larger than the server's maximum payload")
)

// Option configures New.
type Option func(*config)

type config struct {
	prefix      string
	timeout     time.Duration
	allowGaps   bool
	concurrency int
	cacheSize   int
}

// WithSubjectPrefix replaces "events" in the subjects
// "<prefix>.<AggregateType>.<Key>". The prefix may hold several tokens
// ("acme.orders.events"). Give every store its own prefix.
func WithSubjectPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// WithTimeout bounds a call whose context has no deadline (default 5
// seconds). A context deadline takes precedence.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithConcurrency bounds how many streams of one PublishCommits call are
// published at once (default 32).
func WithConcurrency(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.concurrency = n
		}
	}
}

// WithCacheSize bounds how many subjects' last messages the Publisher
// remembers (default 4096). A subject it does not remember costs one read
// before its next publication.
func WithCacheSize(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.cacheSize = n
		}
	}
}

// AllowGaps makes Publish (the after-commit path) publish every commit at
// once, with its message ID but without consulting or guarding the
// subject: the old behaviour, for a stack that runs no relay. It costs one
// round trip and no read, and de-duplicates only within the duplicate
// window; across processes, or after a failed publication, a subject may
// then hold a stream's commits out of order or with gaps. Never use it
// with a relay publishing to the same subjects: the relay would take a
// commit that such a publisher skipped for one already published.
// PublishCommits ignores it.
func AllowGaps() Option { return func(c *config) { c.allowGaps = true } }

// Stats counts what a Publisher did since New.
type Stats struct {
	Published   int64 // commits the server stored
	AlreadyHeld int64 // commits found already in the stream, not stored again
	Retries     int64 // publications refused because another publisher appended to the subject first
	Reads       int64 // reads of a subject's last message
	Failed      int64 // commits not published (errors, gaps, conflicts)
}

// Publisher publishes commits to one JetStream stream. It implements
// publish.Publisher and relay.Sink; it is safe for concurrent use, by any
// number of goroutines, middleware stacks and relays at once. The caller
// keeps ownership of the NATS connection.
type Publisher struct {
	js     jetstream.JetStream
	stream string
	cfg    config

	handleMu sync.Mutex
	handle   jetstream.Stream // the stream, looked up on first use

	mu   sync.Mutex
	last map[string]held // subject -> its last message, as last seen

	published, alreadyHeld, retries, reads, failed atomic.Int64
}

// held describes the last message of a subject.
type held struct {
	empty bool   // the subject holds nothing
	seq   uint64 // its JetStream sequence
	first int64  // the commit's first and last sequence
	last  int64
	id    string // its message ID
}

// New returns a Publisher that publishes through js to the JetStream
// stream named stream, which must exist when publishing starts and
// capture the subjects. It fails with ErrNilJetStream, ErrInvalidStreamName
// or ErrInvalidSubject (a bad prefix).
func New(js jetstream.JetStream, stream string, opts ...Option) (*Publisher, error) {
	if nilcheck.IsNil(js) {
		return nil, ErrNilJetStream
	}
	if stream == "" || strings.ContainsAny(stream, " \t\r\n.*>/\\") {
		return nil, fmt.Errorf("%w: %q", ErrInvalidStreamName, stream)
	}
	cfg := config{prefix: DefaultSubjectPrefix, timeout: 5 * time.Second, concurrency: 32, cacheSize: 4096}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if err := checkSubject(cfg.prefix); err != nil {
		return nil, fmt.Errorf("subject prefix: %w", err)
	}
	if len(cfg.prefix) > MaxSubjectLen/2 {
		return nil, fmt.Errorf("%w: prefix longer than %d bytes", ErrInvalidSubject, MaxSubjectLen/2)
	}
	return &Publisher{js: js, stream: stream, cfg: cfg, last: map[string]held{}}, nil
}

// Subject returns the subject of stream's messages.
func (p *Publisher) Subject(stream backend.StreamID) string {
	return p.cfg.prefix + "." + shorten(EscapeToken(stream.AggregateType)) + "." + shorten(EscapeToken(stream.Key))
}

// MsgID returns the Nats-Msg-Id of c's message: its commit ID, or for a
// commit stored without ID, "<subject>:<first>-<last>".
func (p *Publisher) MsgID(c backend.Commit) string {
	if c.ID != "" {
		return c.ID
	}
	return p.Subject(c.Stream) + ":" + strconv.FormatInt(c.First(), 10) + "-" + strconv.FormatInt(c.Last(), 10)
}

// Stats returns the Publisher's counters.
func (p *Publisher) Stats() Stats {
	return Stats{
		Published:   p.published.Load(),
		AlreadyHeld: p.alreadyHeld.Load(),
		Retries:     p.retries.Load(),
		Reads:       p.reads.Load(),
		Failed:      p.failed.Load(),
	}
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

// mode is how a commit is published.
type mode uint8

const (
	afterCommit mode = iota // Publish: into an empty subject only a first commit
	relayed                 // PublishCommits: predecessors were confirmed
	unguarded               // Publish with AllowGaps
)

// Publish publishes the commits of msgs (consecutive messages of one
// stream and commit ID form one commit; the publish middleware passes one
// commit per call) and returns once the server has stored them, or found
// them already stored. It implements publish.Publisher for the
// after-commit path: see the package doc for what it publishes and what it
// leaves to a relay (ErrGap). On failure it returns a *publish.Error
// listing the messages of the commits not published; after one commit of a
// stream fails, the later ones of that stream in the call are not
// published either.
func (p *Publisher) Publish(ctx context.Context, msgs []publish.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	var commits []backend.Commit
	var spans [][2]int // message index range of each commit
	for i := 0; i < len(msgs); {
		r := msgs[i].Record
		j := i + 1
		for j < len(msgs) && msgs[j].Record.Stream == r.Stream && msgs[j].Record.CommitID == r.CommitID &&
			msgs[j].Record.Sequence == msgs[j-1].Record.Sequence+1 {
			j++
		}
		recs := make([]backend.Record, j-i)
		for k := i; k < j; k++ {
			recs[k-i] = msgs[k].Record
		}
		commits = append(commits, backend.Commit{Stream: r.Stream, Expected: r.Sequence - 1, ID: r.CommitID, Records: recs})
		spans = append(spans, [2]int{i, j})
		i = j
	}
	m := afterCommit
	if p.cfg.allowGaps {
		m = unguarded
	}
	errs := p.publishAll(ctx, commits, m)
	var out []publish.Message
	var causes []error
	for i, err := range errs {
		if err != nil {
			out = append(out, msgs[spans[i][0]:spans[i][1]]...)
			causes = append(causes, err)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return &publish.Error{Messages: out, Err: errors.Join(causes...)}
}

// PublishCommits publishes commits, given in stream order within each
// stream, and returns once the server has stored each of them or found it
// already stored. It implements relay.Sink: see the package doc. On
// failure it returns a *relay.Error naming the commits not published;
// after one commit of a stream fails, the later ones of that stream are
// not published either.
func (p *Publisher) PublishCommits(ctx context.Context, commits []backend.Commit) error {
	errs := p.publishAll(ctx, commits, relayed)
	var refs []backend.CommitRef
	var causes []error
	for i, err := range errs {
		if err != nil {
			refs = append(refs, commits[i].Ref())
			causes = append(causes, err)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	return &relay.Error{Commits: refs, Err: errors.Join(causes...)}
}

// errEarlierFailed marks the commits after a failed one of the same stream.
var errEarlierFailed = errors.New("an earlier commit of the stream was not published")

// publishAll publishes commits stream by stream, the streams concurrently,
// and returns each commit's error.
func (p *Publisher) publishAll(ctx context.Context, commits []backend.Commit, m mode) []error {
	errs := make([]error, len(commits))
	if len(commits) == 0 {
		return errs
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.timeout)
		defer cancel()
	}
	var order []backend.StreamID
	byStream := map[backend.StreamID][]int{}
	for i, c := range commits {
		if _, ok := byStream[c.Stream]; !ok {
			order = append(order, c.Stream)
		}
		byStream[c.Stream] = append(byStream[c.Stream], i)
	}
	run := func(idx []int) {
		for n, i := range idx {
			if err := p.publishOne(ctx, commits[i], m); err != nil {
				errs[i] = err
				for _, j := range idx[n+1:] {
					c := commits[j]
					errs[j] = fmt.Errorf("natsjs: %s %d-%d: %w", c.Stream, c.First(), c.Last(), errEarlierFailed)
				}
				p.failed.Add(int64(len(idx) - n))
				return
			}
		}
	}
	if len(order) == 1 {
		run(byStream[order[0]])
		return errs
	}
	sem := make(chan struct{}, p.cfg.concurrency)
	var wg sync.WaitGroup
	for _, s := range order {
		idx := byStream[s]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			run(idx)
		})
	}
	wg.Wait()
	return errs
}

// maxAttempts bounds the reads and publications of one commit that other
// publishers can make fail by appending first.
const maxAttempts = 8

// publishOne publishes one commit: see the package doc.
func (p *Publisher) publishOne(ctx context.Context, c backend.Commit, m mode) error {
	if len(c.Records) == 0 {
		return nil
	}
	fail := func(err error) error {
		return fmt.Errorf("natsjs: publish %s %d-%d: %w", c.Stream, c.First(), c.Last(), err)
	}
	if err := check(c); err != nil {
		return fail(err)
	}
	subject := p.Subject(c.Stream)
	if err := checkSubject(subject); err != nil {
		return fail(err)
	}
	hdr, data, err := encode(c)
	if err != nil {
		return fail(err)
	}
	id := p.MsgID(c)
	if err := p.checkSize(hdr, data, subject, id); err != nil {
		return fail(err)
	}
	if m == unguarded {
		ack, err := p.send(ctx, subject, hdr, data, id, nil)
		if err != nil {
			return fail(err)
		}
		p.count(ack)
		return nil
	}
	h, known := p.cached(subject)
	fresh := false
	for attempt := 1; ; attempt++ {
		if !known {
			if h, err = p.read(ctx, subject, c.Stream); err != nil {
				return fail(err)
			}
			known, fresh = true, true
		}
		switch err := decide(h, c, id, m); {
		case err == errHeld:
			p.alreadyHeld.Add(1)
			return nil
		case err != nil:
			if !fresh { // the cache may be stale: look again
				known = false
				continue
			}
			return fail(err)
		}
		expect := h.seq
		ack, err := p.send(ctx, subject, hdr, data, id, &expect)
		if err == nil {
			p.count(ack)
			if !ack.Duplicate {
				p.remember(subject, held{seq: ack.Sequence, first: c.First(), last: c.Last(), id: id})
			}
			return nil
		}
		p.forget(subject)
		if !wrongLastSequence(err) || attempt >= maxAttempts {
			return fail(err)
		}
		p.retries.Add(1)
		known, fresh = false, false
	}
}

func (p *Publisher) count(ack *jetstream.PubAck) {
	if ack.Duplicate {
		p.alreadyHeld.Add(1)
	} else {
		p.published.Add(1)
	}
}

// errHeld is decide's answer for a commit already in the stream.
var errHeld = errors.New("already held")

// decide returns nil to publish c after h, errHeld if the subject holds c
// already, or why c must not be published.
func decide(h held, c backend.Commit, id string, m mode) error {
	first, last := c.First(), c.Last()
	switch {
	case h.empty:
		if first == 1 || m == relayed {
			return nil
		}
		return fmt.Errorf("%w: the subject is empty and the commit starts at sequence %d", ErrGap, first)
	case h.last > last || (h.last == last && h.id == id):
		return errHeld
	case h.last == last:
		return fmt.Errorf("%w: its last message is commit %q at sequences %d-%d, not %q", ErrSubjectConflict, h.id, h.first, h.last, id)
	case h.last == first-1:
		return nil
	case h.last >= first:
		return fmt.Errorf("%w: its last message holds sequences %d-%d, overlapping %d-%d", ErrSubjectConflict, h.first, h.last, first, last)
	default:
		return fmt.Errorf("%w: the subject ends at sequence %d", ErrGap, h.last)
	}
}

func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// send publishes one message and waits for the acknowledgement.
func (p *Publisher) send(ctx context.Context, subject string, hdr natsgo.Header, data []byte, id string, expect *uint64) (*jetstream.PubAck, error) {
	h := make(natsgo.Header, len(hdr)+3)
	for k, v := range hdr {
		h[k] = v
	}
	h.Set(jetstream.MsgIDHeader, id)
	h.Set(jetstream.ExpectedStreamHeader, p.stream)
	if expect != nil {
		h.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(*expect, 10))
	}
	return p.js.PublishMsg(ctx, &natsgo.Msg{Subject: subject, Header: h, Data: data})
}

// checkSize refuses a message the server would refuse for its size.
func (p *Publisher) checkSize(hdr natsgo.Header, data []byte, subject, id string) error {
	nc := p.js.Conn()
	if nc == nil {
		return nil
	}
	limit := nc.MaxPayload()
	if limit <= 0 {
		return nil
	}
	size := len(data) + len("NATS/1.0\r\n\r\n") + 200 + len(id) + len(p.stream) // the headers added by send, generously
	for k, vs := range hdr {
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	if int64(size) > limit {
		return fmt.Errorf("%w: %d bytes to %s, the server accepts %d", ErrTooLarge, size, subject, limit)
	}
	return nil
}

// read returns the subject's last message.
func (p *Publisher) read(ctx context.Context, subject string, stream backend.StreamID) (held, error) {
	s, err := p.streamHandle(ctx)
	if err != nil {
		return held{}, err
	}
	p.reads.Add(1)
	msg, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		h := held{empty: true}
		p.remember(subject, h)
		return h, nil
	}
	if err != nil {
		return held{}, fmt.Errorf("read the last message of %s: %w", subject, err)
	}
	h, err := heldOf(msg, stream)
	if err != nil {
		return held{}, err
	}
	p.remember(subject, h)
	return h, nil
}

// heldOf reads what a subject's last message holds from its headers.
func heldOf(msg *jetstream.RawStreamMsg, stream backend.StreamID) (held, error) {
	hdr := msg.Header
	first, err1 := strconv.ParseInt(hdr.Get(HeaderFirstSequence), 10, 64)
	last, err2 := strconv.ParseInt(hdr.Get(HeaderLastSequence), 10, 64)
	if err1 != nil || err2 != nil || first < 1 || last < first || hdr.Get(HeaderEnvelope) == "" {
		return held{}, fmt.Errorf("%w: message %d on %s is not a commit message", ErrSubjectConflict, msg.Sequence, msg.Subject)
	}
	if hdr.Get(HeaderAggregateType) != EscapeToken(stream.AggregateType) || hdr.Get(HeaderKey) != EscapeToken(stream.Key) {
		return held{}, fmt.Errorf("%w: message %d on %s belongs to stream %s/%s", ErrSubjectConflict, msg.Sequence, msg.Subject,
			hdr.Get(HeaderAggregateType), hdr.Get(HeaderKey))
	}
	return held{seq: msg.Sequence, first: first, last: last, id: hdr.Get(jetstream.MsgIDHeader)}, nil
}

// streamHandle returns the JetStream stream, looking it up once.
func (p *Publisher) streamHandle(ctx context.Context) (jetstream.Stream, error) {
	p.handleMu.Lock()
	defer p.handleMu.Unlock()
	if p.handle != nil {
		return p.handle, nil
	}
	s, err := p.js.Stream(ctx, p.stream)
	if err != nil {
		return nil, fmt.Errorf("look up JetStream stream %q: %w", p.stream, err)
	}
	p.handle = s
	return s, nil
}

func (p *Publisher) cached(subject string) (held, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.last[subject]
	return h, ok
}

// remember records h as the subject's last message, unless a later one is
// known (acknowledgements of concurrent publications may arrive out of
// order).
func (p *Publisher) remember(subject string, h held) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, ok := p.last[subject]; ok && !cur.empty && !h.empty && cur.seq > h.seq {
		return
	}
	if _, ok := p.last[subject]; !ok && len(p.last) >= p.cfg.cacheSize {
		n := 0
		for k := range p.last { // map order is random: evict an arbitrary eighth
			delete(p.last, k)
			if n++; n > p.cfg.cacheSize/8 {
				break
			}
		}
	}
	p.last[subject] = h
}

func (p *Publisher) forget(subject string) {
	p.mu.Lock()
	delete(p.last, subject)
	p.mu.Unlock()
}

var (
	_ publish.Publisher = (*Publisher)(nil)
	_ relay.Sink        = (*Publisher)(nil)
)
