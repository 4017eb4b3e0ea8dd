package projection

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"sync"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
)

// Defaults of a Runner.
const (
	// DefaultBatchSize is the number of commits a runner reads and
	// applies in one unit of work (see WithBatchSize).
	DefaultBatchSize = 256
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait after a
	// failure of the store or the source (see WithBackoff).
	DefaultMinBackoff = 50 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	// maxCachedStreams bounds the runner's cache of per-stream sequences.
	maxCachedStreams = 100_000
)

// Tracker may be implemented by a Handler that considers only some
// streams (as a Projection with WithAggregateTypes does): the runner
// ignores the others entirely, keeping no sequence for them.
type Tracker interface {
	Tracks(stream es.StreamID) bool
}

// Hooks are called by a runner as it works, for metrics and logs (all
// optional). They run on the runner's goroutine, after the fact: keep them
// short, and do not call the runner's Run, CatchUp, Replay or Discard from
// them.
type Hooks struct {
	// Batch is called after each committed unit of work.
	Batch func(Batch)
	// Retry is called before an event is tried again after a failure
	// (attempt is the number of tries so far).
	Retry func(ev Event, attempt int, err error)
	// Park is called after an event was parked.
	Park func(p Parked)
	// Error is called for each failure the runner goes on after (of the
	// store or the source); Run's own result is not reported here.
	Error func(err error)
}

// Batch describes one committed unit of work.
type Batch struct {
	ID        ID
	Commits   int           // commits completed: the checkpoint moved past them
	Applied   int           // events applied
	Skipped   int           // events skipped: already applied, or of types the handler ignores
	Position  Position      // the checkpoint after the batch
	LastEvent time.Time     // the commit time of the last event of the batch
	Duration  time.Duration // from the start of the unit of work to its commit
}

// Status is a runner's progress and health, as Runner.Status reports it.
type Status struct {
	ID       ID
	Running  bool     // Run or CatchUp is running
	CaughtUp bool     // the last read found nothing more in the source
	Position Position // the stored checkpoint, as this runner last saw it
	// Counts since NewRunner.
	Applied int64 // events applied
	Skipped int64 // events skipped (already applied, or not handled)
	Parked  int64 // events parked
	Commits int64 // commits completed
	// LastEvent is the commit time of the last event processed. Lag is how
	// far behind the read model is: the time since LastEvent while the
	// runner is not caught up, 0 once it is.
	LastEvent time.Time
	Lag       time.Duration
	// Pending is the number of commits the source still holds for the
	// runner, or -1 if the source cannot tell (a store's feed).
	Pending int64
	// Err is the last failure (nil after a successful unit of work).
	Err error
}

// RunnerOption configures NewRunner.
type RunnerOption func(*runnerConfig)

type runnerConfig struct {
	batch            int
	policy           Policy
	hooks            Hooks
	minWait, maxWait time.Duration
}

// WithBatchSize sets how many commits one unit of work reads and applies
// (default DefaultBatchSize): larger batches mean fewer transactions and
// checkpoint writes, and longer transactions.
func WithBatchSize(n int) RunnerOption {
	return func(c *runnerConfig) {
		if n > 0 {
			c.batch = n
		}
	}
}

// WithPolicy sets the poison-event policy (default DefaultPolicy).
func WithPolicy(p Policy) RunnerOption { return func(c *runnerConfig) { c.policy = p } }

// WithHooks sets the hooks the runner calls.
func WithHooks(h Hooks) RunnerOption { return func(c *runnerConfig) { c.hooks = h } }

// WithBackoff bounds the wait after a failure of the store or the source,
// which doubles from min up to max while the failures go on (defaults
// DefaultMinBackoff and DefaultMaxBackoff).
func WithBackoff(min, max time.Duration) RunnerOption {
	return func(c *runnerConfig) { c.minWait, c.maxWait = min, max }
}

// Runner runs a Handler (a Projection) over a Source, keeping its progress
// in a Store. Its methods are safe for concurrent use: Status, Parked,
// Replay, Discard and Activate may be called while Run runs; units of work
// (batches, replays) never overlap.
type Runner struct {
	h      Handler
	id     ID
	src    Source
	store  Store
	tracks func(es.StreamID) bool
	cfg    runnerConfig

	runMu   sync.Mutex // held by Run and CatchUp
	applyMu sync.Mutex // held by each unit of work

	// Guarded by applyMu.
	pos  Position              // the checkpoint as last read or written
	seqs map[es.StreamID]int64 // cached last sequences; valid only while in step with the store

	statusMu sync.Mutex
	status   Status
}

// NewRunner returns a runner of h over src, keeping progress in store. It
// checks that h can take the store's transaction (see Projection.Check)
// and reports every problem in one error.
func NewRunner(h Handler, src Source, store Store, opts ...RunnerOption) (*Runner, error) {
	if isNil(h) || isNil(src) || isNil(store) {
		return nil, errors.New("projection: NewRunner needs a handler, a source and a store")
	}
	id := h.ID()
	if err := id.Validate(); err != nil {
		return nil, err
	}
	if err := h.Check(store.HandleType()); err != nil {
		return nil, fmt.Errorf("projection %s: %w", id, err)
	}
	cfg := runnerConfig{batch: DefaultBatchSize, policy: DefaultPolicy(), minWait: DefaultMinBackoff, maxWait: DefaultMaxBackoff}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	r := &Runner{h: h, id: id, src: src, store: store, cfg: cfg, seqs: map[es.StreamID]int64{}}
	r.tracks = func(es.StreamID) bool { return true }
	if t, ok := h.(Tracker); ok {
		r.tracks = t.Tracks
	}
	r.status = Status{ID: id, Pending: -1}
	return r, nil
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Interface, reflect.Slice, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

// ID returns the ID of the runner's handler.
func (r *Runner) ID() ID { return r.id }

// Run applies the source's commits to the handler from the stored
// checkpoint on, then follows the source, until ctx is done (it returns
// an error matching ctx's) or the runner must stop: a gap in a stream
// (*GapError), an event that fails under a Stop policy (*PoisonError), a
// position the source does not know (an error matching
// backend.ErrInvalidPosition), data the source cannot read (an error
// matching eventsourcing.ErrCorruptStream), a closed store or source
// (eventsourcing.ErrClosed). After any other failure of the store or the source it backs
// off (see WithBackoff), reports the failure to Hooks.Error and Status,
// and goes on from the stored checkpoint. A second Run or CatchUp while one
// runs fails with ErrRunning.
func (r *Runner) Run(ctx context.Context) error { return r.run(ctx, false) }

// CatchUp is Run until the source has nothing more to read: it returns nil
// once every commit readable when it last looked is applied. It builds a
// new version (a rebuild) before Activate switches readers to it, and lets
// tests wait for a read model to be current.
func (r *Runner) CatchUp(ctx context.Context) error { return r.run(ctx, true) }

// Start is CatchUp, then Run in a goroutine of its own until ctx ends: a
// server calls it before it serves the read model, so that the model is
// current (rebuilt, for an in-memory one) when the first request comes.
// It returns CatchUp's error. If Run later stops for another reason than
// ctx (a gap, a poison event under Stop), Status reports Running false and
// the error in Err, and Hooks.Error is called with it. After cancelling
// ctx, Wait waits for Run to return (before closing the database, say).
func (r *Runner) Start(ctx context.Context) error {
	if !r.runMu.TryLock() {
		return fmt.Errorf("projection %s: %w", r.id, ErrRunning)
	}
	if err := r.runLocked(ctx, true); err != nil {
		r.runMu.Unlock()
		return err
	}
	go func() {
		defer r.runMu.Unlock()
		if err := r.runLocked(ctx, false); err != nil && ctx.Err() == nil {
			if h := r.cfg.hooks.Error; h != nil {
				h(err)
			}
		}
	}()
	return nil
}

// Wait returns once no Run, CatchUp or Start of the runner is running.
func (r *Runner) Wait() {
	r.runMu.Lock()
	//lint:ignore SA2001 taking the lock that Run holds is the wait
	r.runMu.Unlock()
}

func (r *Runner) run(ctx context.Context, untilCaughtUp bool) error {
	if !r.runMu.TryLock() {
		return fmt.Errorf("projection %s: %w", r.id, ErrRunning)
	}
	defer r.runMu.Unlock()
	return r.runLocked(ctx, untilCaughtUp)
}

// runLocked is run with runMu held.
func (r *Runner) runLocked(ctx context.Context, untilCaughtUp bool) error {
	r.update(func(s *Status) { s.Running = true })
	defer r.update(func(s *Status) { s.Running = false })
	failures := 0
	for {
		progressed, caughtUp, err := r.session(ctx, untilCaughtUp)
		if err == nil && caughtUp {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("projection %s: %w", r.id, ctx.Err())
		}
		r.update(func(s *Status) { s.Err = err })
		if fatal(err) {
			return err
		}
		if h := r.cfg.hooks.Error; h != nil {
			h(err)
		}
		if progressed {
			failures = 0
		}
		failures++
		if errors.Is(err, ErrCheckpointMoved) && failures == 1 {
			continue // go on from the new checkpoint at once
		}
		if err := backoff(r.cfg.minWait, r.cfg.maxWait, DefaultMinBackoff, DefaultMaxBackoff).Wait(ctx, failures); err != nil {
			return fmt.Errorf("projection %s: %w", r.id, err)
		}
	}
}

// fatal reports whether err ends Run.
func fatal(err error) bool {
	return errors.Is(err, ErrGap) || errors.Is(err, ErrPoison) || errors.Is(err, backend.ErrInvalidPosition) ||
		errors.Is(err, backend.ErrClosed) || errors.Is(err, backend.ErrCorruptStream) ||
		errors.Is(err, ErrInvalidHandle) || errors.Is(err, ErrInvalidID)
}

// session reads the checkpoint, opens the source there and applies what it
// delivers until an error (or, with untilCaughtUp, until it is caught up).
func (r *Runner) session(ctx context.Context, untilCaughtUp bool) (progressed, caughtUp bool, err error) {
	if err := r.loadCheckpoint(ctx); err != nil {
		return false, false, err
	}
	sub, err := r.src.Open(ctx, r.id, r.checkpoint())
	if err != nil {
		return false, false, fmt.Errorf("projection %s: open the source at %q: %w", r.id, r.checkpoint(), err)
	}
	defer sub.Close()
	pender, _ := sub.(Pender)
	for {
		batch, err := sub.Read(ctx, r.cfg.batch)
		if err != nil {
			return progressed, false, fmt.Errorf("projection %s: read the source: %w", r.id, err)
		}
		if pender != nil {
			if n, ok := pender.Pending(); ok {
				r.update(func(s *Status) { s.Pending = n })
			}
		}
		if len(batch) == 0 {
			r.update(func(s *Status) { s.CaughtUp = true })
			if untilCaughtUp {
				return progressed, true, nil
			}
			if err := sub.Wait(ctx); err != nil {
				return progressed, false, fmt.Errorf("projection %s: wait for the source: %w", r.id, err)
			}
			continue
		}
		r.update(func(s *Status) { s.CaughtUp = false })
		if err := r.process(ctx, sub, batch); err != nil {
			return progressed, false, err
		}
		progressed = true
		r.update(func(s *Status) { s.Err = nil })
	}
}

func (r *Runner) checkpoint() Position {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	return r.pos
}

// loadCheckpoint reads the stored checkpoint and forgets cached sequences.
func (r *Runner) loadCheckpoint(ctx context.Context) error {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	tx, err := r.store.Begin(ctx, r.id)
	if err != nil {
		return fmt.Errorf("projection %s: begin: %w", r.id, err)
	}
	pos, err := tx.Checkpoint(ctx)
	tx.Rollback()
	if err != nil {
		return fmt.Errorf("projection %s: read the checkpoint: %w", r.id, err)
	}
	r.pos = pos
	r.seqs = map[es.StreamID]int64{}
	r.update(func(s *Status) { s.Position = pos })
	return nil
}

// cursor points at one record of a batch.
type cursor struct{ ci, ri int }

// failure is an event a unit of work could not apply.
type failure struct {
	at      cursor
	applied int // events the failed unit applied before it
	rec     es.Record
	err     error
	gap     *GapError
	decode  bool // it did not decode: retrying cannot help
}

// process applies batch in units of work, handling failed events under
// the policy, and acknowledges what is stored.
func (r *Runner) process(ctx context.Context, sub Subscription, batch []backend.FeedCommit) error {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	for len(batch) > 0 {
		f, err := r.unit(ctx, sub, batch, nil, 0)
		if err != nil {
			return err
		}
		if f == nil {
			return nil
		}
		if f.at != (cursor{}) { // store everything before the failed event
			g, err := r.unit(ctx, sub, batch, &f.at, f.applied)
			if err != nil {
				return err
			}
			if g != nil { // an earlier event failed this time: start over with it
				continue
			}
		}
		if f.gap != nil {
			return f.gap
		}
		done, err := r.poison(ctx, sub, batch[f.at.ci], f)
		if err != nil {
			return err
		}
		batch = batch[f.at.ci:]
		if done {
			batch = batch[1:]
		}
	}
	return nil
}

// unit applies batch (up to stop, if not nil) in one unit of work. It
// returns the first event that failed (having stored nothing), or an
// error of the store, the source or ctx. carry is the number of events
// before stop that an earlier, failed unit applied: a store that cannot
// roll back kept them, so this unit finds them applied, and counts them
// as applied rather than skipped.
func (r *Runner) unit(ctx context.Context, sub Subscription, batch []backend.FeedCommit, stop *cursor, carry int) (*failure, error) {
	start := time.Now()
	tx, err := r.begin(ctx)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
			r.seqs = map[es.StreamID]int64{} // a MemoryStore kept what was applied
		}
	}()
	if err := r.loadSequences(ctx, tx, batch); err != nil {
		return nil, err
	}
	changed := map[es.StreamID]int64{}
	last := func(s es.StreamID) int64 {
		if seq, ok := changed[s]; ok {
			return seq
		}
		return r.seqs[s]
	}
	to := r.pos
	var b Batch
	handle := tx.Handle()
	for ci, c := range batch {
		if r.pos != "" && c.Position <= r.pos { // delivered again: the checkpoint covers it
			b.Skipped += len(c.Records)
			continue
		}
		complete := true
		for ri, rec := range c.Records {
			if stop != nil && (cursor{ci, ri}) == *stop {
				complete = false
				break
			}
			rec.Stream = c.Stream
			if !r.tracks(c.Stream) {
				b.Skipped++
				continue
			}
			prev := last(c.Stream)
			switch {
			case rec.Sequence <= prev:
				b.Skipped++
				continue
			case rec.Sequence > prev+1:
				return &failure{at: cursor{ci, ri}, applied: b.Applied, rec: rec, gap: &GapError{ID: r.id, Stream: c.Stream, Last: prev, Got: rec.Sequence, Position: c.Position}}, nil
			}
			ev, ok, err := r.h.Decode(rec)
			if err != nil {
				return &failure{at: cursor{ci, ri}, applied: b.Applied, rec: rec, err: err, decode: true}, nil
			}
			if ok {
				ev.Position = c.Position
				if err := r.h.Apply(ctx, handle, ev); err != nil {
					if ctx.Err() != nil {
						return nil, fmt.Errorf("projection %s: %w", r.id, ctx.Err())
					}
					return &failure{at: cursor{ci, ri}, applied: b.Applied, rec: rec, err: err}, nil
				}
				b.Applied++
			} else {
				b.Skipped++
			}
			changed[c.Stream] = rec.Sequence
			tx.Applied(c.Stream, rec.Sequence)
			b.LastEvent = rec.Timestamp
		}
		if !complete {
			break
		}
		to = c.Position
		b.Commits++
	}
	if err := tx.Commit(ctx, to); err != nil {
		committed = true // a failed commit ends the unit of work too
		r.seqs = map[es.StreamID]int64{}
		return nil, fmt.Errorf("projection %s: commit at %q: %w", r.id, to, err)
	}
	committed = true
	r.committed(ctx, changed, to)
	if b.Applied < carry {
		b.Skipped -= carry - b.Applied
		b.Applied = carry
	}
	b.ID, b.Position, b.Duration = r.id, to, time.Since(start)
	r.update(func(s *Status) {
		s.Applied += int64(b.Applied)
		s.Skipped += int64(b.Skipped)
		s.Commits += int64(b.Commits)
		if !b.LastEvent.IsZero() {
			s.LastEvent = b.LastEvent
		}
	})
	if h := r.cfg.hooks.Batch; h != nil {
		h(b)
	}
	return nil, r.ack(ctx, sub, to)
}

// begin starts a unit of work and checks that the checkpoint is still the
// runner's.
func (r *Runner) begin(ctx context.Context) (Tx, error) {
	tx, err := r.store.Begin(ctx, r.id)
	if err != nil {
		return nil, fmt.Errorf("projection %s: begin: %w", r.id, err)
	}
	pos, err := tx.Checkpoint(ctx)
	if err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("projection %s: read the checkpoint: %w", r.id, err)
	}
	if pos != r.pos {
		tx.Rollback()
		return nil, fmt.Errorf("projection %s: %w (from %q to %q)", r.id, ErrCheckpointMoved, r.pos, pos)
	}
	return tx, nil
}

// loadSequences reads into the cache the sequences of the batch's streams
// it does not hold.
func (r *Runner) loadSequences(ctx context.Context, tx Tx, batch []backend.FeedCommit) error {
	if len(r.seqs) > maxCachedStreams {
		r.seqs = map[es.StreamID]int64{}
	}
	var need []es.StreamID
	seen := map[es.StreamID]bool{}
	for _, c := range batch {
		if _, ok := r.seqs[c.Stream]; ok || seen[c.Stream] || !r.tracks(c.Stream) {
			continue
		}
		seen[c.Stream] = true
		need = append(need, c.Stream)
	}
	if len(need) == 0 {
		return nil
	}
	got, err := tx.Sequences(ctx, need)
	if err != nil {
		return fmt.Errorf("projection %s: read stream sequences: %w", r.id, err)
	}
	for _, s := range need {
		r.seqs[s] = got[s] // 0 if none applied
	}
	return nil
}

// committed records a committed unit of work.
func (r *Runner) committed(ctx context.Context, changed map[es.StreamID]int64, to Position) {
	for s, seq := range changed {
		r.seqs[s] = seq
	}
	r.pos = to
	r.update(func(s *Status) { s.Position = to })
}

// ack tells the source what is stored.
func (r *Runner) ack(ctx context.Context, sub Subscription, to Position) error {
	if to == "" {
		return nil
	}
	if err := sub.Ack(ctx, to); err != nil {
		return fmt.Errorf("projection %s: acknowledge %q: %w", r.id, to, err)
	}
	return nil
}

// poison handles an event that failed: it tries it again under the
// policy, then parks it or stops. done reports that the checkpoint moved
// past its commit.
func (r *Runner) poison(ctx context.Context, sub Subscription, c backend.FeedCommit, f *failure) (done bool, err error) {
	attempts, last := 1, f.err
	if !f.decode {
		for attempts < r.cfg.policy.attempts() {
			if h := r.cfg.hooks.Retry; h != nil {
				ev, _, _ := r.h.Decode(f.rec)
				ev.Position = c.Position
				h(ev, attempts, last)
			}
			if err := r.cfg.policy.retry().Wait(ctx, attempts); err != nil {
				return false, fmt.Errorf("projection %s: %w", r.id, err)
			}
			attempts++
			done, failed, err := r.single(ctx, sub, c, f, nil)
			if err != nil || failed == nil {
				return done, err
			}
			last = failed
		}
	}
	if r.cfg.policy.Then != Park {
		return false, &PoisonError{ID: r.id, Event: withoutData(f.rec), Position: c.Position, Attempts: attempts, Err: last}
	}
	p := Parked{Stream: f.rec.Stream, Sequence: f.rec.Sequence, CommitID: f.rec.CommitID, Position: c.Position,
		Type: f.rec.EventType, Data: f.rec.Data, Metadata: f.rec.Metadata, Time: f.rec.Timestamp,
		Error: last.Error(), Attempts: attempts, ParkedAt: time.Now().UTC()}
	done, _, err = r.single(ctx, sub, c, f, &p)
	return done, err
}

func withoutData(rec es.Record) es.Record {
	rec.Data = nil
	return rec
}

// single applies (or, with park, parks) the failed event alone in a unit
// of work. It returns the handler's error if it failed again.
func (r *Runner) single(ctx context.Context, sub Subscription, c backend.FeedCommit, f *failure, park *Parked) (done bool, failed error, err error) {
	start := time.Now()
	tx, err := r.begin(ctx)
	if err != nil {
		return false, nil, err
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
		}
	}()
	r.seqs = map[es.StreamID]int64{}
	got, err := tx.Sequences(ctx, []es.StreamID{f.rec.Stream})
	if err != nil {
		return false, nil, fmt.Errorf("projection %s: read stream sequences: %w", r.id, err)
	}
	if prev := got[f.rec.Stream]; prev != f.rec.Sequence-1 {
		return false, nil, fmt.Errorf("projection %s: %s is at sequence %d, not %d, before retrying %d: %w",
			r.id, f.rec.Stream, prev, f.rec.Sequence-1, f.rec.Sequence, ErrCheckpointMoved)
	}
	var b Batch
	if park != nil {
		if err := tx.Park(ctx, *park); err != nil {
			return false, nil, fmt.Errorf("projection %s: park %s at sequence %d: %w", r.id, park.Stream, park.Sequence, err)
		}
	} else {
		ev, _, derr := r.h.Decode(f.rec) // a fresh value: the failed try may have changed the last one
		if derr != nil {
			return false, derr, nil
		}
		ev.Position = c.Position
		if aerr := r.h.Apply(ctx, tx.Handle(), ev); aerr != nil {
			if ctx.Err() != nil {
				return false, nil, fmt.Errorf("projection %s: %w", r.id, ctx.Err())
			}
			return false, aerr, nil
		}
		b.Applied = 1
	}
	tx.Applied(f.rec.Stream, f.rec.Sequence)
	to := r.pos
	if f.at.ri == len(c.Records)-1 && (r.pos == "" || c.Position > r.pos) {
		to, b.Commits = c.Position, 1
	}
	if err := tx.Commit(ctx, to); err != nil {
		committed = true
		return false, nil, fmt.Errorf("projection %s: commit at %q: %w", r.id, to, err)
	}
	committed = true
	r.committed(ctx, map[es.StreamID]int64{f.rec.Stream: f.rec.Sequence}, to)
	b.ID, b.Position, b.LastEvent, b.Duration = r.id, to, f.rec.Timestamp, time.Since(start)
	r.update(func(s *Status) {
		s.Applied += int64(b.Applied)
		s.Commits += int64(b.Commits)
		s.LastEvent = f.rec.Timestamp
		if park != nil {
			s.Parked++
		}
	})
	if park != nil {
		if h := r.cfg.hooks.Park; h != nil {
			h(*park)
		}
	}
	if h := r.cfg.hooks.Batch; h != nil {
		h(b)
	}
	return b.Commits == 1, nil, r.ack(ctx, sub, to)
}

// Status returns the runner's progress.
func (r *Runner) Status() Status {
	r.statusMu.Lock()
	s := r.status
	r.statusMu.Unlock()
	if !s.CaughtUp && !s.LastEvent.IsZero() {
		s.Lag = max(time.Since(s.LastEvent), 0)
	}
	return s
}

func (r *Runner) update(f func(*Status)) {
	r.statusMu.Lock()
	f(&r.status)
	r.statusMu.Unlock()
}

// Activate makes the runner's version the one readers use (see
// Store.Activate): after a rebuild has caught up, switch to it, then stop
// the runner of the old version and delete its progress.
func (r *Runner) Activate(ctx context.Context) error {
	if err := r.store.Activate(ctx, r.id); err != nil {
		return fmt.Errorf("projection %s: activate: %w", r.id, err)
	}
	return nil
}

// Parked yields the projection's parked events, in source order.
func (r *Runner) Parked(ctx context.Context) iter.Seq2[Parked, error] {
	return r.store.Parked(ctx, r.id)
}

// Replay applies a parked event again, now, and removes it from the
// parked events if it succeeds. It is applied after events of its stream
// that came later, which the runner applied while it was parked: a read
// model whose effects depend on order must take that into account. If it
// fails again it stays parked and Replay returns the error (a MemoryStore
// records the new error with it; a transactional store rolls back to the
// parked event as it was).
func (r *Runner) Replay(ctx context.Context, stream es.StreamID, seq int64) error {
	return r.unpark(ctx, stream, seq, true)
}

// Discard removes a parked event without applying it.
func (r *Runner) Discard(ctx context.Context, stream es.StreamID, seq int64) error {
	return r.unpark(ctx, stream, seq, false)
}

func (r *Runner) unpark(ctx context.Context, stream es.StreamID, seq int64, apply bool) error {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	tx, err := r.store.Begin(ctx, r.id)
	if err != nil {
		return fmt.Errorf("projection %s: begin: %w", r.id, err)
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
		}
	}()
	pos, err := tx.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("projection %s: read the checkpoint: %w", r.id, err)
	}
	p, err := tx.Unpark(ctx, stream, seq)
	if err != nil {
		return fmt.Errorf("projection %s: unpark %s at sequence %d: %w", r.id, stream, seq, err)
	}
	if apply {
		ev, ok, err := r.h.Decode(p.Record())
		if err == nil && !ok {
			err = fmt.Errorf("projection %s no longer applies events %q of %s (Discard it)", r.id, p.Type, p.Stream.AggregateType)
		}
		if err == nil {
			ev.Position = p.Position
			err = r.h.Apply(ctx, tx.Handle(), ev)
		}
		if err != nil {
			p.Error, p.Attempts = err.Error(), p.Attempts+1
			if perr := tx.Park(ctx, p); perr != nil { // a MemoryStore has already removed it
				return errors.Join(fmt.Errorf("projection %s: replay %s at sequence %d: %w", r.id, stream, seq, err), perr)
			}
			return fmt.Errorf("projection %s: replay %s at sequence %d: %w", r.id, stream, seq, err)
		}
	}
	if err := tx.Commit(ctx, pos); err != nil {
		committed = true
		return fmt.Errorf("projection %s: commit: %w", r.id, err)
	}
	committed = true
	return nil
}
