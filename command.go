package eventsourcing

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
)

// Refresh brings the state up to date with the store, applying only the
// events after SequenceNumber. On error the state stays consistent with
// SequenceNumber (every event up to it applied, none after).
func (b *AggregateBase) Refresh(ctx context.Context) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if err := b.ready(); err != nil {
		return err
	}
	return b.refresh(ctx)
}

func (b *AggregateBase) refresh(ctx context.Context) (err error) {
	defer b.resetOnPanic()
	return b.kind.store.Refresh(ctx, aggLoader{b})
}

// resetOnPanic, deferred, resets the state if a replay method, a codec or a
// store panics half-way, so the instance never keeps a partial effect; the
// panic goes on.
func (b *AggregateBase) resetOnPanic() {
	if r := recover(); r != nil {
		b.set(applied|found, false)
		b.run.want = ""
		b.resetState()
		panic(r)
	}
}

// Handle executes a command: it refreshes the state, runs the command's
// handler against it, and commits the events the handler returns
// atomically, then applies them to the state. A handler error is returned
// unchanged and stores nothing. If the commit loses a concurrency conflict,
// the events the other writers stored are loaded and the handler runs again
// on the fresh state, under the aggregate's RetryPolicy; after the last
// attempt the error still matches ErrConcurrency. A command without a
// handler fails with ErrNoHandler.
//
// The events are applied once the store has accepted them, so a lost
// conflict costs only the events the other writers stored (not a reload of
// the whole history), and a Replay method that panics does so after the
// commit (the instance is then reset and reloads on its next use).
//
// With a command ID on ctx (WithCommandID), a command whose commit is
// already stored is not run again: Handle refreshes the state and returns
// nil. See WithCommandID for how far back a repeat is recognised.
//
// After any failure the instance stays usable and its state consistent with
// SequenceNumber; nothing of a failed commit is applied.
func (b *AggregateBase) Handle(ctx context.Context, cmd any) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if err := b.ready(); err != nil {
		return err
	}
	d, err := b.decision(cmd)
	if err != nil {
		return err
	}
	return b.execute(ctx, &d)
}

// Run gives fn a consistent view of the aggregate: the state is refreshed,
// then fn runs. If fn returns events they are committed and applied as by
// Handle (with the same retries, which run fn again, and the same
// recognition of a repeated command ID); if it returns none, nothing is
// written, which makes Run a consistent read. fn must not call other
// methods of the aggregate that load or commit (they fail with
// ErrConcurrentUse).
func (b *AggregateBase) Run(ctx context.Context, fn func(ctx context.Context) ([]Event, error)) error {
	if fn == nil {
		return fmt.Errorf("%w: nil function", ErrInvalidCommand)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if err := b.ready(); err != nil {
		return err
	}
	return b.execute(ctx, &decision{fn: fn})
}

func (b *AggregateBase) execute(ctx context.Context, d *decision) error {
	id := CommandIDFrom(ctx)
	if id != "" {
		if err := backend.ValidCommitID(id); err != nil {
			return fmt.Errorf("eventsourcing: %s: command ID: %w", b.run.stream, err)
		}
	}
	var policy RetryPolicy
	if o := b.ext(); o != nil {
		policy = o.retry
	}
	if policy == (RetryPolicy{}) {
		policy = DefaultRetryPolicy()
	}
	attempts := policy.attempts()
	for attempt := 1; ; attempt++ {
		var repeat bool
		var err error
		if attempt == 1 && b.has(primed) && b.ext().primedFor == id {
			// Repository.Do has just refreshed the state for this command
			// ID: decide on it. If another writer got in since, the commit
			// conflicts and the next attempt loads what it stored.
			b.set(primed, false)
			repeat = id != "" && b.remembers(id)
		} else {
			b.set(primed, false)
			repeat, err = b.refreshFor(ctx, id)
		}
		if err != nil || repeat {
			return err
		}
		events, err := b.decide(ctx, d)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return nil
		}
		now := time.Now().UTC()
		if id == "" {
			id = newCommitID(now)
		}
		err = b.commit(ctx, events, id, now)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrConcurrency) {
			return err
		}
		if attempt >= attempts {
			return fmt.Errorf("eventsourcing: %s: gave up after %d attempts: %w", b.run.stream, attempt, err)
		}
		if werr := policy.Wait(ctx, attempt); werr != nil {
			return fmt.Errorf("eventsourcing: %s: %w (stopped retrying: %w)", b.run.stream, err, werr)
		}
	}
}

// prime refreshes the state for Repository.Do and lets the next command
// with the context's command ID decide on it without loading again. A
// stored commit with that ID found by the load is remembered, so the
// command is recognised as a repeat at any distance, as by Handle on a
// fresh instance.
func (b *AggregateBase) prime(ctx context.Context) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if err := b.ready(); err != nil {
		return err
	}
	id := CommandIDFrom(ctx)
	if id != "" && backend.ValidCommitID(id) != nil {
		id = "" // Handle reports it
	}
	repeat, err := b.refreshFor(ctx, id)
	if err != nil {
		return err
	}
	if repeat && !b.remembers(id) {
		b.remember(id)
	}
	b.options().primedFor = id
	b.set(primed, true)
	return nil
}

// unprime ends what prime allowed, if no command used it.
func (b *AggregateBase) unprime() {
	if b.enter() == nil {
		b.set(primed, false)
		b.leave()
	}
}

// refreshFor refreshes the state and reports whether a commit with the
// command ID id (if not empty) is stored in the window or the load.
func (b *AggregateBase) refreshFor(ctx context.Context, id string) (repeat bool, err error) {
	if id == "" {
		return false, b.refresh(ctx)
	}
	b.run.want = id
	b.set(found, b.remembers(id))
	defer func() {
		b.run.want = ""
		b.set(found, false)
	}()
	if err := b.refresh(ctx); err != nil {
		return false, err
	}
	return b.has(found), nil
}

// commit encodes events and commits them; once the store accepted them, it
// applies them to the state. If encoding fails nothing is sent.
func (b *AggregateBase) commit(ctx context.Context, events []Event, id string, now time.Time) error {
	records, err := b.encode(ctx, events, id, now)
	if err != nil {
		return err
	}
	c := Commit{
		Commit: backend.Commit{Stream: b.run.stream, Expected: b.run.seq, ID: id, Records: records},
		Events: events,
		Codec:  b.kind.registry.Codec(),
		agg:    b,
	}
	defer b.resetOnPanic()
	b.set(applied, false)
	err = b.kind.store.Commit(ctx, c)
	early := b.has(applied)
	b.set(applied, false)
	if err != nil {
		if early { // a middleware asked for the state: it holds the failed events
			b.resetState()
		}
		return err
	}
	if !early {
		for _, e := range events {
			b.applyRaised(e)
		}
	}
	b.run.seq += int64(len(events))
	b.remember(id)
	return nil
}

// encode turns events into the records of a commit with ID id, checking
// that every event is registered, encodable and applied by the aggregate.
func (b *AggregateBase) encode(ctx context.Context, events []Event, id string, now time.Time) ([]Record, error) {
	md := metadataOf(ctx)
	if err := backend.ValidMetadata(md); err != nil {
		return nil, fmt.Errorf("eventsourcing: %s: %w", b.run.stream, err)
	}
	codec := b.kind.registry.Codec()
	records := make([]Record, len(events))
	for i, e := range events {
		t := reflect.TypeOf(e)
		if t == nil {
			return nil, fmt.Errorf("%w: event %d of %d is nil", ErrEncoding, i+1, len(events))
		}
		if t.Kind() == reflect.Pointer {
			if reflect.ValueOf(e).IsNil() {
				return nil, fmt.Errorf("%w: event %d of %d is nil", ErrEncoding, i+1, len(events))
			}
			t = t.Elem()
		}
		name, ok := b.kind.registry.Name(t)
		if !ok {
			return nil, fmt.Errorf("%w: %s (event %d of %d)", ErrUnregisteredEvent, t, i+1, len(events))
		}
		if !b.applies(t) {
			return nil, fmt.Errorf("%w: %s raises %s, which no Replay method or DefineReplayMethod applies (declare it with IgnoreEvents if that is intended)",
				ErrNoReplay, b.run.stream.AggregateType, t)
		}
		data, err := codec.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("%w: event %s: %w", ErrEncoding, name, err)
		}
		records[i] = Record{Stream: b.run.stream, Sequence: b.run.seq + int64(i) + 1, EventType: name, Data: data,
			Timestamp: now, Metadata: md, CommitID: id}
	}
	return records, nil
}

// applies reports whether events of type t change the state, or are
// declared ignored.
func (b *AggregateBase) applies(t reflect.Type) bool {
	if b.kind.wiring != nil {
		if _, ok := b.kind.wiring.replays[t]; ok {
			return true
		}
	}
	if o := b.ext(); o != nil {
		if _, ok := o.replays[t]; ok {
			return true
		}
		return o.ignored[t]
	}
	return false
}

// stateAfter applies events early (Commit.State) and returns the state.
func (b *AggregateBase) stateAfter(events []Event) any {
	if !b.has(applied) {
		b.set(applied, true)
		for _, e := range events {
			b.applyRaised(e)
		}
	}
	return b.stateValue()
}

// apply decodes and applies one stored record (Loader.Apply).
func (b *AggregateBase) apply(rec Record) error {
	if rec.Sequence != b.run.seq+1 {
		return &SequenceError{Stream: b.run.stream, Expected: b.run.seq + 1, Got: rec.Sequence}
	}
	if rec.Stream != (StreamID{}) && rec.Stream != b.run.stream {
		return &RecordError{Stream: b.run.stream, Sequence: rec.Sequence, Type: rec.EventType,
			Err: fmt.Errorf("record belongs to stream %s", rec.Stream)}
	}
	t, ok := b.kind.registry.Type(rec.EventType)
	if !ok { // an older form of an event, or unknown
		var err error
		if t, ok, err = b.upcast(&rec); err != nil {
			return err
		}
	}
	if !ok {
		if !b.has(skipUnknown) {
			return &UnknownEventTypeError{Type: rec.EventType, Stream: b.run.stream, Sequence: rec.Sequence}
		}
	} else if err := b.decodeAndReplay(t, rec); err != nil {
		return err
	}
	b.run.seq = rec.Sequence
	if id := rec.CommitID; id != "" && id != b.latest() {
		b.remember(id)
		if id == b.run.want {
			b.set(found, true)
		}
	}
	return nil
}

func (b *AggregateBase) decodeAndReplay(t reflect.Type, rec Record) error {
	if w := b.kind.wiring; w != nil && w.appliesJSON && !b.definesReplay(t) {
		if _, ok := b.kind.registry.Codec().(JSONCodec); ok {
			done, err := b.subject.(JSONEventApplier).ApplyJSONEvent(t, rec.Data)
			if err != nil {
				return &RecordError{Stream: b.run.stream, Sequence: rec.Sequence, Type: rec.EventType, Err: err}
			}
			if done {
				return nil
			}
		}
	}
	ptr := reflect.New(t)
	if err := b.kind.registry.Codec().Unmarshal(rec.Data, ptr.Interface()); err != nil {
		return &RecordError{Stream: b.run.stream, Sequence: rec.Sequence, Type: rec.EventType, Err: err}
	}
	b.replayDecoded(t, ptr)
	return nil
}

// definesReplay reports whether DefineReplayMethod defined a function for
// events of type t.
func (b *AggregateBase) definesReplay(t reflect.Type) bool {
	o := b.ext()
	if o == nil || o.replays == nil {
		return false
	}
	_, ok := o.replays[t]
	return ok
}

// restore replaces the state with a decoded snapshot (Loader.Restore).
func (b *AggregateBase) restore(sequence int64, data []byte, recent []string) error {
	if sequence < 0 {
		return fmt.Errorf("%w: negative sequence %d for %s", ErrInvalidSnapshot, sequence, b.run.stream)
	}
	b.resetState()
	if sequence == 0 && data == nil {
		return nil // a reset
	}
	if err := b.kind.registry.Codec().Unmarshal(data, b.stateValue()); err != nil {
		b.resetState()
		return fmt.Errorf("%w: %s at sequence %d: %w", ErrInvalidSnapshot, b.run.stream, sequence, err)
	}
	b.run.seq = sequence
	b.setRecent(recent)
	if b.run.want != "" && b.remembers(b.run.want) {
		b.set(found, true)
	}
	return nil
}

// yielder returns the function that applies each record of a load through
// a backend iterator and keeps the first error in b.run.loadErr, made on first
// use.
func (b *AggregateBase) yielder() func(Record, error) bool {
	if b.run.yield == nil {
		b.run.yield = func(rec Record, err error) bool {
			if err == nil {
				err = b.apply(rec)
			}
			b.run.loadErr = err
			return err == nil
		}
	}
	return b.run.yield
}

// aggLoader exposes an AggregateBase to stores without adding methods to
// the user's aggregate. It is pointer-shaped, so passing it as an interface
// does not allocate.
type aggLoader struct{ b *AggregateBase }

func (l aggLoader) Stream() StreamID       { return l.b.run.stream }
func (l aggLoader) Sequence() int64        { return l.b.run.seq }
func (l aggLoader) State() any             { return l.b.stateValue() }
func (l aggLoader) Apply(rec Record) error { return l.b.apply(rec) }
func (l aggLoader) Restore(seq int64, data []byte, recent []string) error {
	return l.b.restore(seq, data, recent)
}
