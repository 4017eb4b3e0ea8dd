package eventsourcing

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// StateFetchFunc returns the aggregate's state: a pointer to the struct that
// embeds AggregateBase (or to any value a Codec can encode and decode). It is
// what snapshots capture and restore, and what is reset before a full reload.
type StateFetchFunc func() any

// StateResetter may be implemented by an aggregate to control how its state
// is cleared before a full reload (after a lost conflict, a failed commit or
// an unusable snapshot). Without it, AggregateBase sets every field of the
// state to its zero value except the embedded AggregateBase; implement
// ResetState if the struct also holds configuration or dependencies that must
// survive.
type StateResetter interface {
	ResetState()
}

// AggregateBase is embedded, by value and tagged `json:"-"`, in a domain
// struct to make it an event-sourced aggregate:
//
//	type Account struct {
//		eventsourcing.AggregateBase `json:"-"`
//		Balance int64
//	}
//
// Initialize binds it to a key, a registry, a store and the state; then
// AutomaticWireup (or DefineCommandHandler and DefineReplayMethod) tells it
// how to handle commands and apply events. An AggregateBase holds one
// in-memory copy of one stream and is not safe for concurrent use: use one
// instance per goroutine (per request, say) and let the store arbitrate
// between them.
type AggregateBase struct {
	key         string
	aggType     string // set by SetAggregateType
	derivedType string // the state's Go type name, computed once
	registry    EventRegistry
	store       EventStore
	state       StateFetchFunc
	retry       RetryPolicy
	skipUnknown bool

	seq     int64    // last sequence applied to the state
	pending []Event  // events being committed
	records []Record // pending, encoded

	wiring   *wiring
	subject  reflect.Value
	args     [3]reflect.Value // scratch for reflective calls
	replays  map[reflect.Type]func(Event)
	handlers map[reflect.Type]func(context.Context, any) ([]Event, error)
}

// Initialize binds the aggregate to the stream key, the registry that names
// its events, the store that keeps them, and the function returning its state
// (normally func() any { return a } for the enclosing struct a). It resets
// everything the AggregateBase held before, including options and wire-up,
// so an instance can be reused for another key. Problems (nil arguments, an
// invalid key) are reported by the first call that needs them.
func (b *AggregateBase) Initialize(key string, registry EventRegistry, store EventStore, state StateFetchFunc) {
	*b = AggregateBase{key: key, registry: registry, store: store, state: state}
}

// SetAggregateType sets the aggregate type of the stream, which defaults to
// the Go type name of the state. Set it to keep stored streams stable when the
// Go type is renamed. Call it after Initialize.
func (b *AggregateBase) SetAggregateType(name string) { b.aggType = name }

// SetRetryPolicy sets how conflicting commands are retried (see RetryPolicy).
// Call it after Initialize, which restores DefaultRetryPolicy.
func (b *AggregateBase) SetRetryPolicy(p RetryPolicy) { b.retry = p }

// SetSkipUnknownEvents makes loads skip (but count) stored events whose type
// the registry does not know, instead of failing with an
// *UnknownEventTypeError. Use it for a reader that knows only some event
// types; a writer that skips may decide on incomplete state, and under the
// snapshot middleware its snapshots would capture that incomplete state.
func (b *AggregateBase) SetSkipUnknownEvents(skip bool) { b.skipUnknown = skip }

// Key returns the aggregate's key.
func (b *AggregateBase) Key() string { return b.key }

// AggregateType returns the stream's aggregate type: the name given to
// SetAggregateType, or else the Go type name of the state.
func (b *AggregateBase) AggregateType() string {
	if b.aggType != "" {
		return b.aggType
	}
	if b.wiring != nil {
		return b.wiring.typeName
	}
	if b.derivedType == "" && b.state != nil {
		t := reflect.TypeOf(b.state())
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t != nil {
			b.derivedType = t.Name()
		}
	}
	return b.derivedType
}

// StreamID returns the identity of the aggregate's stream.
func (b *AggregateBase) StreamID() StreamID {
	return StreamID{AggregateType: b.AggregateType(), Key: b.key}
}

// SequenceNumber returns the sequence of the last event applied to the state:
// 0 for an aggregate with no history (or not yet loaded).
func (b *AggregateBase) SequenceNumber() int64 { return b.seq }

// DefineReplayMethod registers fn to apply events of event's Go type (event
// is a sample value, pointer or not), without reflection over methods. fn
// receives the event as a value of that type. A definition here takes
// precedence over a method found by AutomaticWireup. It fails with
// ErrUnregisteredEvent if the registry does not know the type.
func (b *AggregateBase) DefineReplayMethod(event Event, fn func(Event)) error {
	t, err := b.definedType(event, fn == nil)
	if err != nil {
		return err
	}
	if _, ok := b.registry.Name(t); !ok {
		return fmt.Errorf("%w: %s (replay defined for an event type the registry does not know)", ErrUnregisteredEvent, t)
	}
	if b.replays == nil {
		b.replays = map[reflect.Type]func(Event){}
	}
	b.replays[t] = fn
	return nil
}

// DefineCommandHandler registers fn to handle commands of cmd's Go type (cmd
// is a sample value; a command and a pointer to it match the same handler),
// without reflection over methods. fn receives the command as passed to
// Handle. A definition here takes precedence over AutomaticWireup's.
func (b *AggregateBase) DefineCommandHandler(cmd any, fn func(ctx context.Context, cmd any) ([]Event, error)) error {
	t, err := b.definedType(cmd, fn == nil)
	if err != nil {
		return err
	}
	if b.handlers == nil {
		b.handlers = map[reflect.Type]func(context.Context, any) ([]Event, error){}
	}
	b.handlers[t] = fn
	return nil
}

func (b *AggregateBase) definedType(sample any, nilFn bool) (reflect.Type, error) {
	if b.registry == nil {
		return nil, fmt.Errorf("%w: call Initialize first", ErrNotInitialized)
	}
	if nilFn {
		return nil, fmt.Errorf("%w: nil function", ErrInvalidWireup)
	}
	t := reflect.TypeOf(sample)
	if t == nil {
		return nil, fmt.Errorf("%w: nil sample value", ErrInvalidWireup)
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t, nil
}

func (b *AggregateBase) ready() error {
	if b.registry == nil || b.store == nil || b.state == nil {
		return fmt.Errorf("%w: Initialize needs a registry, a store and a state function", ErrNotInitialized)
	}
	return b.StreamID().Validate()
}

// Refresh brings the state up to date with the store, applying only the
// events after SequenceNumber. On error the state stays consistent with
// SequenceNumber (every event up to it applied, none after).
func (b *AggregateBase) Refresh(ctx context.Context) error {
	if err := b.ready(); err != nil {
		return err
	}
	defer b.resetOnPanic()
	return b.store.Refresh(ctx, aggLoader{b})
}

// resetOnPanic, deferred, resets the state if a replay method, a codec or a
// store panics half-way, so the instance never keeps a partial effect; the
// panic goes on.
func (b *AggregateBase) resetOnPanic() {
	if r := recover(); r != nil {
		b.pending, b.records = nil, nil
		b.resetState()
		panic(r)
	}
}

// Handle executes a command: it refreshes the state, runs the command's
// handler against it, applies the events the handler returns, and commits
// them atomically. A handler error is returned unchanged and stores
// nothing. If the commit loses a concurrency conflict the whole command is
// retried from freshly loaded state, under the aggregate's RetryPolicy; after
// the last attempt the error still matches ErrConcurrency. A command without
// a handler fails with ErrNoHandler. After any failure the instance remains
// usable; after a failed commit its state is reset to zero (sequence 0), so
// that no uncommitted effect is visible, and the next call reloads it.
func (b *AggregateBase) Handle(ctx context.Context, cmd any) error {
	if err := b.ready(); err != nil {
		return err
	}
	decide, err := b.handlerFor(cmd)
	if err != nil {
		return err
	}
	return b.execute(ctx, decide)
}

// Run gives fn a consistent view of the aggregate: the state is refreshed,
// then fn runs. If fn returns events they are applied and committed as by
// Handle (with the same retries, which run fn again); if it returns none,
// nothing is written, which makes Run a consistent read.
func (b *AggregateBase) Run(ctx context.Context, fn func(ctx context.Context) ([]Event, error)) error {
	if fn == nil {
		return fmt.Errorf("%w: nil function", ErrInvalidCommand)
	}
	return b.execute(ctx, fn)
}

func (b *AggregateBase) handlerFor(cmd any) (func(context.Context) ([]Event, error), error) {
	v := reflect.ValueOf(cmd)
	if !v.IsValid() {
		return nil, fmt.Errorf("%w: nil command", ErrInvalidCommand)
	}
	t := v.Type()
	isPtr := t.Kind() == reflect.Pointer
	if isPtr {
		if v.IsNil() {
			return nil, fmt.Errorf("%w: nil %s", ErrInvalidCommand, t)
		}
		t = t.Elem()
	}
	if fn, ok := b.handlers[t]; ok {
		return func(ctx context.Context) ([]Event, error) { return fn(ctx, cmd) }, nil
	}
	if b.wiring == nil {
		return nil, fmt.Errorf("%w: %s (no AutomaticWireup or DefineCommandHandler for it)", ErrNoHandler, t)
	}
	h, ok := b.wiring.handlers[t]
	if !ok {
		return nil, fmt.Errorf("%w: %s on %s", ErrNoHandler, t, b.wiring.typeName)
	}
	return func(ctx context.Context) ([]Event, error) {
		// A fresh argument per attempt: a retry must not see what a handler
		// did to the command in a failed attempt.
		arg := v
		switch {
		case h.ptr && !isPtr:
			arg = reflect.New(t)
			arg.Elem().Set(v)
		case !h.ptr && isPtr:
			arg = v.Elem()
		}
		in := b.args[:0]
		in = append(in, b.subject)
		if h.ctx {
			in = append(in, reflect.ValueOf(ctx))
		}
		in = append(in, arg)
		out := h.fn.Call(in)
		clear(b.args[:])
		events, _ := out[0].Interface().([]Event)
		err, _ := out[1].Interface().(error)
		return events, err
	}, nil
}

func (b *AggregateBase) execute(ctx context.Context, decide func(context.Context) ([]Event, error)) error {
	if err := b.ready(); err != nil {
		return err
	}
	policy := b.retry
	if policy == (RetryPolicy{}) {
		policy = DefaultRetryPolicy()
	}
	attempts := policy.attempts()
	for attempt := 1; ; attempt++ {
		if err := b.Refresh(ctx); err != nil {
			return err
		}
		events, err := decide(ctx)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return nil
		}
		err = b.commit(ctx, events)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrConcurrency) {
			return err
		}
		if attempt >= attempts {
			return fmt.Errorf("eventsourcing: %s: gave up after %d attempts: %w", b.StreamID(), attempt, err)
		}
		if werr := policy.wait(ctx, attempt); werr != nil {
			return fmt.Errorf("eventsourcing: %s: %w (stopped retrying: %w)", b.StreamID(), err, werr)
		}
	}
}

// commit encodes events, applies them to the state and commits them. If
// encoding fails nothing is applied; if the store fails the state is reset,
// so the next load rebuilds it from the store.
func (b *AggregateBase) commit(ctx context.Context, events []Event) error {
	stream := b.StreamID()
	codec := b.registry.Codec()
	now := time.Now().UTC()
	md := MetadataFrom(ctx)
	records := make([]Record, len(events))
	for i, e := range events {
		v := reflect.ValueOf(e)
		if !v.IsValid() || (v.Kind() == reflect.Pointer && v.IsNil()) {
			return fmt.Errorf("%w: event %d of %d is nil", ErrEncoding, i+1, len(events))
		}
		name, ok := b.registry.Name(v.Type())
		if !ok {
			return fmt.Errorf("%w: %s (event %d of %d)", ErrUnregisteredEvent, v.Type(), i+1, len(events))
		}
		data, err := codec.Marshal(e)
		if err != nil {
			return fmt.Errorf("%w: event %s: %w", ErrEncoding, name, err)
		}
		records[i] = Record{Stream: stream, Sequence: b.seq + int64(i) + 1, EventType: name, Data: data, Timestamp: now, Metadata: md}
	}
	defer b.resetOnPanic()
	for _, e := range events {
		b.applyRaised(e)
	}
	b.pending, b.records = events, records
	err := b.store.Commit(ctx, aggWriter{b})
	b.pending, b.records = nil, nil
	if err != nil {
		b.resetState()
		return err
	}
	b.seq += int64(len(events))
	return nil
}

// applyRaised applies an event as raised by a handler (E or *E).
func (b *AggregateBase) applyRaised(e Event) {
	v := reflect.ValueOf(e)
	t := v.Type()
	isPtr := t.Kind() == reflect.Pointer
	if isPtr {
		t = t.Elem()
	}
	if fn, ok := b.replays[t]; ok {
		if isPtr {
			e = v.Elem().Interface()
		}
		fn(e)
		return
	}
	if b.wiring == nil {
		return
	}
	r, ok := b.wiring.replays[t]
	if !ok {
		return
	}
	arg := v
	switch {
	case r.ptr && !isPtr:
		arg = reflect.New(t)
		arg.Elem().Set(v)
	case !r.ptr && isPtr:
		arg = v.Elem()
	}
	b.callReplay(r, arg)
}

func (b *AggregateBase) callReplay(r replayMethod, arg reflect.Value) {
	b.args[0], b.args[1] = b.subject, arg
	r.fn.Call(b.args[:2])
	b.args[0], b.args[1] = reflect.Value{}, reflect.Value{}
}

// apply decodes and applies one stored record (Loader.Apply).
func (b *AggregateBase) apply(rec Record) error {
	if rec.Sequence != b.seq+1 {
		return &SequenceError{Stream: b.StreamID(), Expected: b.seq + 1, Got: rec.Sequence}
	}
	if rec.Stream != (StreamID{}) && (rec.Stream.Key != b.key || rec.Stream.AggregateType != b.AggregateType()) {
		return &RecordError{Stream: b.StreamID(), Sequence: rec.Sequence, Type: rec.EventType,
			Err: fmt.Errorf("record belongs to stream %s", rec.Stream)}
	}
	t, ok := b.registry.Type(rec.EventType)
	if !ok {
		if b.skipUnknown {
			b.seq = rec.Sequence
			return nil
		}
		return &UnknownEventTypeError{Type: rec.EventType, Stream: b.StreamID(), Sequence: rec.Sequence}
	}
	ptr := reflect.New(t)
	if err := b.registry.Codec().Unmarshal(rec.Data, ptr.Interface()); err != nil {
		return &RecordError{Stream: b.StreamID(), Sequence: rec.Sequence, Type: rec.EventType, Err: err}
	}
	if fn, ok := b.replays[t]; ok {
		fn(ptr.Elem().Interface())
	} else if b.wiring != nil {
		if r, ok := b.wiring.replays[t]; ok {
			if r.ptr {
				b.callReplay(r, ptr)
			} else {
				b.callReplay(r, ptr.Elem())
			}
		}
	}
	b.seq = rec.Sequence
	return nil
}

// resetState clears the state (through StateResetter if implemented) and
// rewinds to sequence 0.
func (b *AggregateBase) resetState() {
	s := b.state()
	if r, ok := s.(StateResetter); ok {
		r.ResetState()
	} else if v := reflect.ValueOf(s); v.Kind() == reflect.Pointer && !v.IsNil() {
		saved := *b // b usually lives inside the state: keep it
		v.Elem().SetZero()
		*b = saved
	}
	b.seq = 0
}

// restore replaces the state with a decoded snapshot (Loader.Restore).
func (b *AggregateBase) restore(sequence int64, data []byte) error {
	if sequence < 0 {
		return fmt.Errorf("%w: negative sequence %d for %s", ErrInvalidSnapshot, sequence, b.StreamID())
	}
	b.resetState()
	if sequence == 0 && data == nil {
		return nil // a reset
	}
	if err := b.registry.Codec().Unmarshal(data, b.state()); err != nil {
		b.resetState()
		return fmt.Errorf("%w: %s at sequence %d: %w", ErrInvalidSnapshot, b.StreamID(), sequence, err)
	}
	b.seq = sequence
	return nil
}

// aggLoader and aggWriter expose an AggregateBase to stores without adding
// methods to the user's aggregate. They are pointer-shaped, so passing them
// as interfaces does not allocate.
type aggLoader struct{ b *AggregateBase }

func (l aggLoader) Stream() StreamID                     { return l.b.StreamID() }
func (l aggLoader) Sequence() int64                      { return l.b.seq }
func (l aggLoader) Registry() EventRegistry              { return l.b.registry }
func (l aggLoader) State() any                           { return l.b.state() }
func (l aggLoader) Apply(rec Record) error               { return l.b.apply(rec) }
func (l aggLoader) Restore(seq int64, data []byte) error { return l.b.restore(seq, data) }

type aggWriter struct{ b *AggregateBase }

func (w aggWriter) Stream() StreamID        { return w.b.StreamID() }
func (w aggWriter) Expected() int64         { return w.b.seq }
func (w aggWriter) Registry() EventRegistry { return w.b.registry }
func (w aggWriter) Events() []Event         { return w.b.pending }
func (w aggWriter) Records() []Record       { return w.b.records }
func (w aggWriter) State() any              { return w.b.state() }
