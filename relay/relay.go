// Package relay moves committed events from a store to a publisher with
// delivery guarantees: at least once, in stream order, with the commit ID
// as the de-duplication key. It closes the gap the after-commit publish
// middleware leaves (that middleware is best effort: a crash between the
// commit and the publication loses the publication).
//
//	src, err := relay.FromBackend(es.BackendOf(store), "nats")
//	...
//	r, err := relay.New(src, jetstreamPublisher) // a *natsjs.Publisher
//	...
//	go r.Run(ctx) // until ctx ends
//
// # Sources
//
// A relay reads what is committed but not yet delivered from one of the
// store's optional capabilities:
//
//   - an Outbox (FromOutbox: MongoDB, DynamoDB): the commit's own document
//     or item carries a pending mark, written in the same atomic write as
//     the events. The relay reads pending commits, publishes them, then
//     marks them published. One Outbox feeds one sink: a second sink would
//     need a second mark.
//   - a Feed with Checkpoints (FromFeed: memory, PostgreSQL, SQLite): every
//     commit in one order, read after a position that the relay saves under
//     its name after each batch. Each name is an independent reader, so
//     one store can feed several sinks, each under its own name.
//
// FromBackend picks the capability a backend has.
//
// # Guarantees
//
// A commit is marked published, or the checkpoint moves past it, only
// after the sink confirmed it; so a crash of the process at any point, a
// failed publication, a broker outage of any length or a cancelled Run
// loses nothing: the next Run (in this process or another) publishes what
// was not confirmed. The price is that a commit may be published again;
// the sink de-duplicates. The NATS JetStream sink of package
// middleware/publish/natsjs makes that exact: it publishes each commit as
// one message whose ID is the commit ID, and before publishing it consults
// the last message of the stream's subject and appends only with the
// subject's expected last sequence, so JetStream holds each commit once,
// in stream order, even after an outage longer than JetStream's duplicate
// window, with several relays running at once, and with the after-commit
// middleware publishing through the same publisher. An in-process sink
// (a publish.Bus through ToPublisher) sees a republished commit again: its
// handlers must be idempotent (the commit ID and the sequences identify
// what they have seen).
//
// Within one stream, commits reach the sink in stream order: the Feed is in
// stream order, the Outbox yields a stream's commits oldest first, and a
// commit that fails holds back the later commits of its stream. Across
// streams there is no order beyond the source's.
//
// Several relays may run at once over the same source (one per application
// instance): they publish the same commits and the sink de-duplicates. Over
// a Feed, relays sharing a name also share the checkpoint: each starts a
// batch from the later of its own position and the saved one, so they
// divide the work rather than repeat all of it.
//
// # Operation
//
// Run reads batches of at most WithBatchSize commits, hands each batch to
// the sink in one call, records the progress, and repeats at once while
// batches come full. When it has caught up it waits for new commits (a
// Feed's WaitFeed, or a poll of the Outbox every WithPollInterval). When
// the source or the sink fails it retries with jittered exponential
// back-off between WithBackoff's bounds, so a broker that is down is not
// hammered. Stats reports progress, errors and lag. When ctx ends, Run
// abandons the call in flight (what it did not confirm is published again
// later), saves the progress it has, and returns nil.
//
// Costs per batch: a Feed source loads the checkpoint, reads the batch and
// saves the checkpoint (three store operations); an Outbox source reads the
// pending commits and marks the published ones (two). The sink's own costs
// are documented with the sink.
package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/nilcheck"
)

// Errors returned by the constructors and by Run.
var (
	// ErrNoSource is returned by FromBackend for a backend with neither an
	// Outbox nor a Feed with Checkpoints, and by New for a zero Source.
	ErrNoSource = errors.New("relay: no source: the backend has neither an Outbox nor a Feed with Checkpoints")
	// ErrNilSink is returned by New when given no Sink.
	ErrNilSink = errors.New("relay: nil sink")
	// ErrInvalidName is returned by FromFeed and FromBackend for an empty
	// checkpoint name.
	ErrInvalidName = errors.New("relay: empty checkpoint name")
	// ErrRunning is returned by Run when the relay is already running.
	ErrRunning = errors.New("relay: already running")
)

// Source is where a relay reads commits: an Outbox, or a Feed with a
// named checkpoint. Make one with FromOutbox, FromFeed or FromBackend.
type Source struct {
	outbox backend.Outbox
	feed   backend.Feed
	cps    backend.Checkpoints
	name   string
}

// FromOutbox returns a Source reading the pending commits of o.
func FromOutbox(o backend.Outbox) Source {
	if nilcheck.IsNil(o) {
		return Source{}
	}
	return Source{outbox: o, name: "outbox"}
}

// FromFeed returns a Source reading f after the position saved in cps
// under name. Relays with different names read independently (each
// publishes everything); relays with the same name share the position.
// The name must not be empty (New reports ErrInvalidName).
func FromFeed(f backend.Feed, cps backend.Checkpoints, name string) Source {
	if nilcheck.IsNil(f) || nilcheck.IsNil(cps) {
		return Source{}
	}
	return Source{feed: f, cps: cps, name: name}
}

// FromBackend returns a Source over b's capabilities: its Feed and
// Checkpoints if it has both (name is then the checkpoint name), else its
// Outbox. It fails with ErrNoSource if b has neither, and with
// ErrInvalidName if it has a Feed and name is empty.
func FromBackend(b backend.Backend, name string) (Source, error) {
	f, fok := b.(backend.Feed)
	c, cok := b.(backend.Checkpoints)
	if fok && cok && !nilcheck.IsNil(b) {
		if name == "" {
			return Source{}, ErrInvalidName
		}
		return FromFeed(f, c, name), nil
	}
	if o, ok := b.(backend.Outbox); ok && !nilcheck.IsNil(b) {
		return FromOutbox(o), nil
	}
	return Source{}, fmt.Errorf("%w (%T)", ErrNoSource, b)
}

// Name returns the checkpoint name of a Feed source, or "outbox".
func (s Source) Name() string { return s.name }

// Option configures New.
type Option func(*config)

type config struct {
	batch      int
	poll       time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration
	timeout    time.Duration
	logger     *slog.Logger
}

// Defaults of the options.
const (
	DefaultBatchSize    = 100
	DefaultPollInterval = 250 * time.Millisecond
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 10 * time.Second
	DefaultTimeout      = 30 * time.Second
)

// WithBatchSize bounds the commits read and handed to the sink in one call
// (default DefaultBatchSize).
func WithBatchSize(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.batch = n
		}
	}
}

// WithPollInterval sets how often an idle relay polls an Outbox, and the
// longest it waits on a Feed before reading again (default
// DefaultPollInterval).
func WithPollInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.poll = d
		}
	}
}

// WithBackoff sets the bounds of the delay before retrying after a failure:
// it starts at min and doubles, with jitter, up to max (defaults
// DefaultMinBackoff and DefaultMaxBackoff).
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) {
		if min > 0 {
			c.minBackoff = min
		}
		if max > 0 {
			c.maxBackoff = max
		}
	}
}

// WithTimeout bounds each call to the source or the sink (default
// DefaultTimeout), so that a broker or database that hangs does not stop
// the relay for good.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithLogger logs failures (at Warn level, with the retry delay) and
// recoveries (at Info level) on l.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Stats is a snapshot of a relay's progress.
type Stats struct {
	Running  bool  // Run is running
	Commits  int64 // commits confirmed by the sink since New (including ones it found already published)
	Events   int64 // events in those commits
	Batches  int64 // sink calls
	Failures int64 // rounds that failed (source or sink), each followed by a back-off

	// ConsecutiveFailures counts the failures since the last round that
	// succeeded; 0 when healthy.
	ConsecutiveFailures int
	LastError           error     // the latest failure, or nil
	LastErrorAt         time.Time // when it happened
	LastProgressAt      time.Time // when a commit was last confirmed

	// Position is the feed position of the last confirmed commit (Feed
	// sources only).
	Position backend.Position
	// CaughtUp reports that the latest read found nothing left to publish
	// (commits made since are not known until the next read).
	CaughtUp bool
	// Lag is how long ago the oldest commit known to be unpublished was
	// committed (by its events' timestamp), at the time of the Stats call;
	// 0 when caught up. After a full batch it is the age of the batch's
	// last commit, an upper bound.
	Lag time.Duration
}

// Relay moves commits from a Source to a Sink. Its methods are safe for
// concurrent use; Run runs at most once at a time.
type Relay struct {
	src  Source
	sink Sink
	cfg  config

	running atomic.Bool

	mu     sync.Mutex // guards stats, pos and oldest
	stats  Stats
	pos    backend.Position
	oldest time.Time // commit time of the oldest commit known unpublished; zero if none
}

// New returns a relay from src to sink. It fails with ErrNoSource for a
// zero Source, ErrInvalidName for a Feed source without a name, and
// ErrNilSink for a nil sink.
func New(src Source, sink Sink, opts ...Option) (*Relay, error) {
	if src.outbox == nil && src.feed == nil {
		return nil, ErrNoSource
	}
	if src.feed != nil && src.name == "" {
		return nil, ErrInvalidName
	}
	if nilcheck.IsNil(sink) {
		return nil, ErrNilSink
	}
	cfg := config{
		batch:      DefaultBatchSize,
		poll:       DefaultPollInterval,
		minBackoff: DefaultMinBackoff,
		maxBackoff: DefaultMaxBackoff,
		timeout:    DefaultTimeout,
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.maxBackoff < cfg.minBackoff {
		cfg.maxBackoff = cfg.minBackoff
	}
	return &Relay{src: src, sink: sink, cfg: cfg}, nil
}

// Stats returns the relay's progress.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Running = r.running.Load()
	s.Position = r.pos
	if !r.oldest.IsZero() {
		s.Lag = max(time.Since(r.oldest), 0)
	}
	return s
}

// Run relays commits until ctx ends, then returns nil. It returns an error
// early only when retrying cannot help: the source's store is closed
// (backend.ErrClosed) or the saved checkpoint is not a position of the
// feed (backend.ErrInvalidPosition); and ErrRunning if the relay is
// already running. Every other failure is retried with back-off and
// reported in Stats.
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)
	var delay time.Duration
	for {
		if ctx.Err() != nil {
			return nil
		}
		more, err := r.round(ctx)
		if err == nil && !more {
			err = r.idle(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, backend.ErrClosed) || errors.Is(err, backend.ErrInvalidPosition) {
				r.failed(err, 0)
				return err
			}
			delay = r.nextDelay(delay)
			r.failed(err, delay)
			if !sleep(ctx, delay) {
				return nil
			}
			continue
		}
		if delay > 0 {
			delay = 0
			r.recovered()
		}
	}
}

// nextDelay doubles the previous delay within the bounds, with jitter in
// [d/2, d].
func (r *Relay) nextDelay(prev time.Duration) time.Duration {
	d := r.cfg.minBackoff
	if prev > 0 {
		d = min(prev*2, r.cfg.maxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *Relay) failed(err error, retry time.Duration) {
	r.mu.Lock()
	r.stats.Failures++
	r.stats.ConsecutiveFailures++
	r.stats.LastError = err
	r.stats.LastErrorAt = time.Now()
	n := r.stats.ConsecutiveFailures
	r.mu.Unlock()
	if l := r.cfg.logger; l != nil {
		if retry == 0 {
			l.LogAttrs(context.Background(), slog.LevelError, "relay: stopped",
				slog.String("relay", r.src.name), slog.Any("error", err))
			return
		}
		l.LogAttrs(context.Background(), slog.LevelWarn, "relay: failed, retrying",
			slog.String("relay", r.src.name), slog.Int("failures", n),
			slog.Duration("retry_in", retry), slog.Any("error", err))
	}
}

func (r *Relay) recovered() {
	r.mu.Lock()
	n := r.stats.ConsecutiveFailures
	r.stats.ConsecutiveFailures = 0
	r.mu.Unlock()
	if l := r.cfg.logger; l != nil && n > 0 {
		l.LogAttrs(context.Background(), slog.LevelInfo, "relay: recovered",
			slog.String("relay", r.src.name), slog.Int("failures", n))
	}
}

// opContext bounds one call to the source.
func (r *Relay) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.cfg.timeout)
}

// saveContext bounds a call that records progress: it runs even if ctx has
// ended, so that what was confirmed is not published again.
func (r *Relay) saveContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), min(r.cfg.timeout, 5*time.Second))
}

// idle waits for new commits: on a Feed until one may be readable (at most
// the poll interval), on an Outbox for the poll interval.
func (r *Relay) idle(ctx context.Context) error {
	if r.src.feed == nil {
		sleep(ctx, r.cfg.poll)
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, r.cfg.poll)
	defer cancel()
	r.mu.Lock()
	pos := r.pos
	r.mu.Unlock()
	err := r.src.feed.WaitFeed(wctx, pos)
	if err != nil && wctx.Err() != nil && ctx.Err() == nil {
		return nil // the poll interval elapsed
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("relay %q: wait for the feed after %q: %w", r.src.name, pos, err)
	}
	return nil
}

// round relays one batch. It reports whether more commits may be waiting
// (the batch was full and all of it was confirmed).
func (r *Relay) round(ctx context.Context) (more bool, err error) {
	if r.src.feed != nil {
		return r.feedRound(ctx)
	}
	return r.outboxRound(ctx)
}

func (r *Relay) feedRound(ctx context.Context) (bool, error) {
	name := r.src.name
	octx, cancel := r.opContext(ctx)
	saved, err := r.src.cps.LoadCheckpoint(octx, name)
	cancel()
	if err != nil {
		return false, fmt.Errorf("relay %q: load checkpoint: %w", name, err)
	}
	r.mu.Lock()
	start := max(r.pos, saved) // positions sort as strings
	r.mu.Unlock()

	batch := make([]backend.FeedCommit, 0, min(r.cfg.batch, 1024))
	octx, cancel = r.opContext(ctx)
	for fc, err := range r.src.feed.ReadFeed(octx, start) {
		if err != nil {
			cancel()
			return false, fmt.Errorf("relay %q: read feed after %q: %w", name, start, err)
		}
		batch = append(batch, fc)
		if len(batch) >= r.cfg.batch {
			break
		}
	}
	cancel()
	if len(batch) == 0 {
		r.mu.Lock()
		r.pos = start
		r.caughtUp()
		r.mu.Unlock()
		return false, nil
	}
	commits := make([]backend.Commit, len(batch))
	for i, fc := range batch {
		commits[i] = fc.Commit
	}
	failed, perr := r.publish(ctx, commits)
	done := len(commits) // the confirmed prefix: the checkpoint cannot pass a failure
	if i := slices.Index(failed, true); i >= 0 {
		done = i
	}
	var saveErr error
	if done > 0 {
		pos := batch[done-1].Position
		sctx, cancel := r.saveContext(ctx)
		if err := r.src.cps.SaveCheckpoint(sctx, name, pos); err != nil {
			saveErr = fmt.Errorf("relay %q: save checkpoint %q: %w", name, pos, err)
		}
		cancel()
		r.mu.Lock()
		r.pos = max(r.pos, pos)
		r.mu.Unlock()
	}
	r.progress(commits[:done], commits[done:], len(batch) >= r.cfg.batch)
	if perr != nil {
		return false, perr
	}
	return done == len(batch) && len(batch) >= r.cfg.batch, saveErr
}

func (r *Relay) outboxRound(ctx context.Context) (bool, error) {
	commits := make([]backend.Commit, 0, min(r.cfg.batch, 1024))
	octx, cancel := r.opContext(ctx)
	for c, err := range r.src.outbox.Pending(octx, r.cfg.batch) {
		if err != nil {
			cancel()
			return false, fmt.Errorf("relay: read the outbox: %w", err)
		}
		commits = append(commits, c)
		if len(commits) >= r.cfg.batch {
			break
		}
	}
	cancel()
	if len(commits) == 0 {
		r.mu.Lock()
		r.caughtUp()
		r.mu.Unlock()
		return false, nil
	}
	inStreamOrder(commits)
	failed, perr := r.publish(ctx, commits)
	var refs []backend.CommitRef
	var ok, notOK []backend.Commit
	for i, c := range commits {
		if failed[i] {
			notOK = append(notOK, c)
			continue
		}
		ok = append(ok, c)
		refs = append(refs, c.Ref())
	}
	var markErr error
	if len(refs) > 0 {
		sctx, cancel := r.saveContext(ctx)
		if err := r.src.outbox.MarkPublished(sctx, refs); err != nil {
			markErr = fmt.Errorf("relay: mark %d commits published: %w", len(refs), err)
		}
		cancel()
	}
	r.progress(ok, notOK, len(commits) >= r.cfg.batch)
	if perr != nil {
		return false, perr
	}
	return len(notOK) == 0 && len(commits) >= r.cfg.batch, markErr
}

// inStreamOrder sorts the commits of each stream by sequence, keeping the
// places the stream's commits occupy (a defence against a source that
// yields them out of order).
func inStreamOrder(cs []backend.Commit) {
	var idx map[backend.StreamID][]int
	for i, c := range cs {
		if idx == nil {
			idx = map[backend.StreamID][]int{}
		}
		idx[c.Stream] = append(idx[c.Stream], i)
	}
	for _, ix := range idx {
		if len(ix) < 2 || slices.IsSortedFunc(ix, func(a, b int) int { return cmp.Compare(cs[a].Expected, cs[b].Expected) }) {
			continue
		}
		sub := make([]backend.Commit, len(ix))
		for j, i := range ix {
			sub[j] = cs[i]
		}
		slices.SortStableFunc(sub, func(a, b backend.Commit) int { return cmp.Compare(a.Expected, b.Expected) })
		for j, i := range ix {
			cs[i] = sub[j]
		}
	}
}

// publish hands the non-empty commits to the sink and reports, per commit,
// whether it failed. Once a commit of a stream failed, the later commits of
// that stream count as failed too, whatever the sink said, so that nothing
// is confirmed out of stream order.
func (r *Relay) publish(ctx context.Context, commits []backend.Commit) ([]bool, error) {
	failed := make([]bool, len(commits))
	send := make([]backend.Commit, 0, len(commits))
	for _, c := range commits {
		if len(c.Records) > 0 {
			send = append(send, c)
		}
	}
	if len(send) == 0 {
		return failed, nil
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.timeout)
	err := r.callSink(pctx, send)
	cancel()
	r.mu.Lock()
	r.stats.Batches++
	r.mu.Unlock()
	if err == nil {
		return failed, nil
	}
	var perr *Error
	if !errors.As(err, &perr) {
		for i, c := range commits {
			failed[i] = len(c.Records) > 0
		}
		return failed, fmt.Errorf("relay %q: publish %d commits: %w", r.src.name, len(send), err)
	}
	if len(perr.Commits) == 0 {
		return failed, nil // the sink reports nothing missing
	}
	named := make(map[backend.CommitRef]bool, len(perr.Commits))
	for _, ref := range perr.Commits {
		named[ref] = true
	}
	broken := map[backend.StreamID]bool{}
	for i, c := range commits {
		if len(c.Records) > 0 && (broken[c.Stream] || named[c.Ref()]) {
			failed[i] = true
			broken[c.Stream] = true
		}
	}
	return failed, fmt.Errorf("relay %q: %w", r.src.name, err)
}

func (r *Relay) callSink(ctx context.Context, commits []backend.Commit) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("relay: sink panicked: %v", p)
		}
	}()
	return r.sink.PublishCommits(ctx, commits)
}

// progress records a round's confirmed and unconfirmed commits.
func (r *Relay) progress(done, notDone []backend.Commit, full bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range done {
		r.stats.Commits++
		r.stats.Events += int64(len(c.Records))
	}
	if len(done) > 0 {
		r.stats.LastProgressAt = time.Now()
	}
	switch {
	case len(notDone) > 0:
		r.stats.CaughtUp = false
		r.oldest = time.Time{}
		for _, c := range notDone {
			if t := commitTime(c); !t.IsZero() && (r.oldest.IsZero() || t.Before(r.oldest)) {
				r.oldest = t
			}
		}
	case full:
		r.stats.CaughtUp = false
		r.oldest = commitTime(done[len(done)-1])
	default:
		r.caughtUp()
	}
}

// caughtUp records that nothing is left to publish; r.mu is held.
func (r *Relay) caughtUp() {
	r.stats.CaughtUp = true
	r.oldest = time.Time{}
}

func commitTime(c backend.Commit) time.Time {
	if len(c.Records) == 0 {
		return time.Time{}
	}
	return c.Records[0].Timestamp
}
