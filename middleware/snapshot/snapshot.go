// Package snapshot is an eventsourcing middleware that keeps snapshots of
// aggregate state in an eventsourcing.SnapshotStore, so that loading an
// aggregate with a long history restores its latest snapshot and replays only
// the events after it.
//
//	mw, err := snapshot.New(snapshots, snapshot.EveryN(100), snapshot.WithLogger(logger))
//	if err != nil { ... }
//	store := eventsourcing.Wrap(es.NewStore(memory.NewBackend()), mw)
//
// # Writing
//
// After a successful commit, if the Policy says the commit is due, the
// middleware encodes the aggregate's state (Commit.State, which includes the
// committed events) with the commit's Codec and puts it in the snapshot
// store at the committed sequence, Commit.Last(), together with the
// stream's latest commit IDs (Commit.RecentCommitIDs), so that a command
// repeated with the same command ID is still recognised by an aggregate
// restored from the snapshot (see eventsourcing.WithCommandID). The write is
// synchronous, on the committing goroutine, bounded by WithTimeout
// (DefaultTimeout) whatever the command's deadline. Its failure (encoding,
// Put, timeout) does not fail the command, whose events are stored: it is
// reported (see Problems) and the stream's previous snapshot stays in use.
// The snapshot store keeps the newest snapshot, so racing writers cannot
// make it go back.
//
// What the middleware stores as Snapshot.State is an envelope: a format
// marker, a SHA-256 checksum over the stream, the sequence, the schema
// version and the rest, the recent commit IDs, and the codec's bytes. A
// snapshot that is not this middleware's own output for that stream and
// sequence (written by another program, damaged, truncated, or moved to
// another stream or sequence) fails the check and is never restored.
//
// # Reading
//
// Refresh gets the stream's snapshot (bounded by WithTimeout). If it is
// newer than what the aggregate already holds, passes the checksum, belongs
// to the stream and carries the aggregate's current schema version, it is
// restored through Loader.Restore; then the wrapped store loads the events
// after it. The snapshot is never trusted blindly:
//
//   - a snapshot store failure or timeout (other than
//     eventsourcing.ErrSnapshotNotFound), a snapshot that fails the
//     checksum, a snapshot of another schema version, and a snapshot that
//     does not decode are reported and ignored: the aggregate is rebuilt by
//     a full replay and ends in the same state as without snapshots. A
//     failed Restore resets the aggregate to its zero state at sequence 0
//     (the Loader contract), so it is never left half-restored.
//   - the tail load starts one event early, at the snapshot's own sequence,
//     and checks that this event exists (it is not applied again). A
//     snapshot whose sequence the stream does not reach, left behind after
//     the stream was deleted or truncated (for example an in-memory event
//     store restarted next to a persistent snapshot store), is therefore
//     detected within the tail load itself (on MongoDB and the memory store
//     at no extra round trip; on DynamoDB, loading from inside a commit the
//     backend has not seen costs one more Query): it is reported with
//     ErrAheadOfStream, deleted (an older snapshot could never replace it),
//     and the aggregate is reset and rebuilt by a full replay. A stream
//     deleted and then recreated past the snapshot's sequence cannot be told
//     apart from the original; delete the snapshot (SnapshotStore.Delete)
//     whenever you delete a stream.
//
// Refresh consults the snapshot store for an aggregate that is not loaded
// yet (at sequence 0). An aggregate already loaded (one a Repository keeps
// with WithInstanceCache, or one the application holds) loads only the
// events after its sequence, without asking the snapshot store: that saves
// a round trip per command. WithLoadedLookup makes Refresh ask in both
// cases, for applications whose loaded aggregates fall far behind. It returns an error only when the wrapped store
// does (or when a Loader breaks its contract by not resetting).
//
// # What a snapshot holds
//
// The snapshot is the state value the aggregate exposes (Loader.State and
// Commit.State: the struct embedding AggregateBase), encoded with the
// registry's codec. With the default JSON codec that is every exported field,
// at any depth, with full precision: int64 and uint64 beyond 2^53, times with
// nanoseconds, nested, embedded and pointed-to structs, slices and maps. The
// AggregateBase itself is tagged `json:"-"` and not stored. Unexported fields
// are not stored either: an aggregate with unexported state implements
// json.Marshaler and json.Unmarshaler (or uses a codec that sees them) to
// include it; see the example of Versioned. Restoring resets the fields the
// codec stores to their zero values (or calls eventsourcing.StateResetter)
// before decoding, so a field the snapshot does not mention ends at its
// zero value, as after a replay from scratch, while unexported
// configuration survives.
//
// # Schema versions
//
// Each snapshot records the schema version of the state that wrote it: the
// value of SnapshotVersion if the state implements Versioned, else 0. A
// snapshot is restored only into a state reporting the same version. Bump
// the version whenever a change to the aggregate (a new field derived from
// events, a changed replay method) would make old snapshots decode into a
// state that a replay would not produce: old snapshots are then ignored
// (reported with ErrVersionMismatch) until the next due commit of each stream
// writes a current one. The version lives on the state rather than in an
// option because one store serves many aggregate types, each with its own
// history of changes.
//
// # Problems
//
// Nothing the middleware meets with snapshots fails a load or a command. Each
// problem is reported as an *Error to the function given to WithErrorHandler
// and logged to the *slog.Logger given to WithLogger (an unusable snapshot of
// an old schema version at Info level, every other problem at Warn). With
// neither option problems are dropped, and the middleware still falls back
// as described. There is no package-level logger.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	es "github.com/aggregatekit/eventsourcing"
)

// Versioned may be implemented by an aggregate's state to give the schema
// version of its snapshots (see the package documentation). A state that
// does not implement it has version 0.
type Versioned interface {
	SnapshotVersion() int
}

// DefaultTimeout bounds each call to the snapshot store unless WithTimeout
// says otherwise.
const DefaultTimeout = 500 * time.Millisecond

// Option configures New.
type Option func(*config)

type config struct {
	onError func(context.Context, error)
	logger  *slog.Logger
	timeout time.Duration
	loaded  bool
}

// WithErrorHandler makes the middleware call fn with every problem it meets
// (always an *Error) and then carry on. fn runs synchronously on the
// goroutine of the load or command, with its context, and may be called from
// many goroutines at once. A nil fn is ignored.
func WithErrorHandler(fn func(ctx context.Context, err error)) Option {
	return func(c *config) {
		if fn != nil {
			c.onError = fn
		}
	}
}

// WithLogger makes the middleware log every problem it meets to logger, with
// the attributes op, stream, sequence and error. A nil logger is ignored.
func WithLogger(logger *slog.Logger) Option {
	return func(c *config) {
		if logger != nil {
			c.logger = logger
		}
	}
}

// WithTimeout bounds each call the middleware makes to the snapshot store
// (Get, Put, Delete) to d, whatever the caller's deadline; d <= 0 selects
// DefaultTimeout. A Get that takes longer is abandoned and the load falls
// back to a full replay; a Put that takes longer is abandoned and the
// commit, already stored, succeeds. So a slow or frozen snapshot store
// delays a command by at most about 2d (one Get, one Put) and never fails
// it.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithLoadedLookup(true) makes Refresh consult the snapshot store also for
// an aggregate that is already loaded, and restore a snapshot newer than its
// sequence instead of replaying the events in between. It costs a snapshot
// store round trip per Refresh, so it pays only where loaded aggregates
// fall behind by many more events than a snapshot saves (the default,
// false, asks only for aggregates at sequence 0).
func WithLoadedLookup(on bool) Option {
	return func(c *config) { c.loaded = on }
}

// New returns a middleware keeping snapshots in snapshots under policy. It
// returns an error matching ErrInvalidConfig, and no middleware, if snapshots
// is nil or policy is invalid, so that a misconfiguration is found when the
// application starts rather than by the first command (the reason New
// returns an error rather than a bare eventsourcing.Middleware).
//
// The stores the middleware returns are safe for concurrent use if the
// wrapped store and the snapshot store are. Closing them closes the wrapped
// store, not the snapshot store, which stays its owner's.
func New(snapshots es.SnapshotStore, policy Policy, opts ...Option) (es.Middleware, error) {
	if snapshots == nil {
		return nil, fmt.Errorf("%w: nil SnapshotStore", ErrInvalidConfig)
	}
	if err := policy.validate(); err != nil {
		return nil, err
	}
	cfg := config{timeout: DefaultTimeout}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return func(next es.EventStore) es.EventStore {
		return &store{next: next, snaps: snapshots, policy: policy, cfg: cfg}
	}, nil
}

type store struct {
	next   es.EventStore
	snaps  es.SnapshotStore
	policy Policy
	cfg    config
}

// Unwrap returns the wrapped store (see eventsourcing.BackendOf).
func (s *store) Unwrap() es.EventStore { return s.next }

// versionOf returns the schema version of state (see Versioned).
func versionOf(state any) int {
	if v, ok := state.(Versioned); ok {
		return v.SnapshotVersion()
	}
	return 0
}

// bounded returns ctx, keeping its values but not its cancellation,
// limited to the middleware's timeout, or to ctx's own deadline if that
// comes first.
func (s *store) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.cfg.timeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

func (s *store) get(ctx context.Context, stream es.StreamID) (es.Snapshot, error) {
	bctx, cancel := s.bounded(ctx)
	defer cancel()
	return s.snaps.Get(bctx, stream)
}

func (s *store) Refresh(ctx context.Context, l es.Loader) error {
	if l.Sequence() > 0 && !s.cfg.loaded {
		return s.next.Refresh(ctx, l)
	}
	stream := l.Stream()
	snap, err := s.get(ctx, stream)
	if err != nil {
		if !errors.Is(err, es.ErrSnapshotNotFound) {
			s.report(ctx, OpGet, stream, 0, err)
		}
		return s.next.Refresh(ctx, l)
	}
	if snap.Sequence <= l.Sequence() {
		return s.next.Refresh(ctx, l)
	}
	state, recent, err := check(snap, stream, l.State())
	if err != nil {
		s.report(ctx, OpRestore, stream, snap.Sequence, err)
		return s.replay(ctx, l, snap.Sequence)
	}
	if err := l.Restore(snap.Sequence, state, recent); err != nil {
		// The Loader has reset the aggregate to its zero state at 0.
		if !errors.Is(err, es.ErrInvalidSnapshot) {
			err = fmt.Errorf("%w: %w", es.ErrInvalidSnapshot, err)
		}
		s.report(ctx, OpRestore, stream, snap.Sequence, err)
		return s.replay(ctx, l, snap.Sequence)
	}
	tail := tailLoader{Loader: l, at: snap.Sequence}
	if err := s.next.Refresh(ctx, &tail); err != nil {
		if !tail.verified {
			// Nothing has shown yet that the stream reaches the snapshot:
			// do not leave its state behind as if it were loaded.
			if rerr := l.Restore(0, nil, nil); rerr != nil {
				s.report(ctx, OpRestore, stream, 0, rerr)
			}
		}
		return err
	}
	if tail.verified {
		return nil
	}
	// The stream ends before the snapshot: the state restored is fiction.
	s.report(ctx, OpRestore, stream, snap.Sequence, fmt.Errorf("%w: %w: the stream has no event %d",
		es.ErrInvalidSnapshot, ErrAheadOfStream, snap.Sequence))
	// Restore(0, nil, nil) resets the aggregate to its zero state (Loader contract).
	if err := l.Restore(0, nil, nil); err != nil {
		s.report(ctx, OpRestore, stream, 0, err)
	}
	if seq := l.Sequence(); seq != 0 {
		return fmt.Errorf("%w: %s: the loader did not reset to sequence 0 (at %d) after a snapshot ahead of the stream",
			es.ErrInvalidSnapshot, stream, seq)
	}
	return s.replay(ctx, l, snap.Sequence)
}

// check verifies that snap is this middleware's own snapshot of stream, of
// the state's current schema version, before it touches the state, and
// returns what the envelope holds.
func check(snap es.Snapshot, stream es.StreamID, state any) ([]byte, []string, error) {
	if snap.Stream != (es.StreamID{}) && snap.Stream != stream {
		return nil, nil, fmt.Errorf("%w: the snapshot store returned a snapshot of stream %s", es.ErrInvalidSnapshot, snap.Stream)
	}
	if want := versionOf(state); snap.Version != want {
		return nil, nil, fmt.Errorf("%w: %w: snapshot has version %d, the aggregate's state version %d",
			es.ErrInvalidSnapshot, ErrVersionMismatch, snap.Version, want)
	}
	data, recent, err := open(stream, snap)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", es.ErrInvalidSnapshot, err)
	}
	return data, recent, nil
}

// replay loads the aggregate without the snapshot at sequence bad. If the
// stream turns out not to reach bad, that snapshot is deleted: since the
// snapshot store never replaces a snapshot by an older one, it would
// otherwise block every later snapshot of the stream.
func (s *store) replay(ctx context.Context, l es.Loader, bad int64) error {
	if err := s.next.Refresh(ctx, l); err != nil {
		return err
	}
	if l.Sequence() < bad {
		stream := l.Stream()
		bctx, cancel := s.bounded(ctx)
		defer cancel()
		if err := s.snaps.Delete(bctx, stream); err != nil {
			s.report(ctx, OpDelete, stream, bad, err)
		}
	}
	return nil
}

func (s *store) Commit(ctx context.Context, c es.Commit) error {
	if err := s.next.Commit(ctx, c); err != nil {
		return err
	}
	if len(c.Records) == 0 {
		return nil
	}
	before, after := c.Expected, c.Last()
	if !s.policy.Due(c.Stream, before, after) || c.Codec == nil {
		return nil
	}
	state := c.State()
	if state == nil {
		return nil // not made by an aggregate: no state to keep
	}
	data, err := c.Codec.Marshal(state)
	if err != nil {
		s.report(ctx, OpEncode, c.Stream, after, fmt.Errorf("%w: %w", es.ErrEncoding, err))
		return nil
	}
	version := versionOf(state)
	snap := es.Snapshot{Stream: c.Stream, Sequence: after, Version: version,
		State: seal(c.Stream, after, version, c.RecentCommitIDs(), data), Time: time.Now().UTC()}
	bctx, cancel := s.bounded(ctx)
	defer cancel()
	if err := s.snaps.Put(bctx, snap); err != nil {
		s.report(ctx, OpPut, c.Stream, after, err)
	}
	return nil
}

func (s *store) Close() error { return s.next.Close() }

func (s *store) report(ctx context.Context, op Op, stream es.StreamID, seq int64, err error) {
	if s.cfg.onError == nil && s.cfg.logger == nil {
		return
	}
	e := &Error{Op: op, Stream: stream, Sequence: seq, Err: err}
	if s.cfg.onError != nil {
		s.cfg.onError(ctx, e)
	}
	if s.cfg.logger != nil {
		level := slog.LevelWarn
		if errors.Is(err, ErrVersionMismatch) {
			level = slog.LevelInfo
		}
		s.cfg.logger.LogAttrs(ctx, level, "eventsourcing snapshot: "+string(op)+" failed",
			slog.String("op", string(op)),
			slog.String("stream", stream.String()),
			slog.Int64("sequence", seq),
			slog.String("error", err.Error()))
	}
}

// tailLoader loads the events after a restored snapshot at sequence at,
// starting one early: it asks the wrapped store for the events after at-1,
// checks that the first is at (proof that the stream reaches the snapshot)
// and drops it, since the restored state already covers it. Everything else
// goes to the aggregate's Loader.
type tailLoader struct {
	es.Loader
	at       int64
	verified bool // event at was seen, or an inner middleware restored its own snapshot
}

func (t *tailLoader) Sequence() int64 {
	if t.verified {
		return t.Loader.Sequence()
	}
	return t.at - 1
}

func (t *tailLoader) Apply(rec es.Record) error {
	if t.verified {
		return t.Loader.Apply(rec)
	}
	if rec.Sequence != t.at {
		return &es.SequenceError{Stream: t.Stream(), Expected: t.at, Got: rec.Sequence}
	}
	t.verified = true
	return nil
}

// Restore is called only by a snapshot middleware nested inside this one;
// its snapshot replaces ours and there is nothing left to check.
func (t *tailLoader) Restore(seq int64, state []byte, recent []string) error {
	t.verified = true
	return t.Loader.Restore(seq, state, recent)
}
