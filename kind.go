package eventsourcing

import (
	"fmt"
	"reflect"
)

// Kind binds instances of one aggregate type A (a pointer to a struct
// embedding AggregateBase) to a registry and a store, wired once by
// AutomaticWireup's rules. It is what Initialize and AutomaticWireup do per
// instance, done once per type: an instance bound by Bind shares the
// Kind's registry, store, aggregate type and wire-up instead of holding its
// own copy, so making one costs a single allocation (the aggregate itself),
// and its state is the aggregate.
//
// A Kind is immutable and safe for concurrent use. An instance bound to it
// is like any other: one goroutine at a time. Per-instance settings
// (SetRetryPolicy, SetIdempotencyWindow, SetSkipUnknownEvents, IgnoreEvents,
// DefineReplayMethod, DefineCommandHandler) still apply to that instance
// only; SetAggregateType and AutomaticWireup with another type give the
// instance its own copy of the binding first.
type Kind[A Aggregate] struct {
	b binding
}

// KindOption configures a Kind.
type KindOption func(*binding)

// WithAggregateType sets the aggregate type of the Kind's streams, which
// defaults to the Go type name of A (see AggregateBase.SetAggregateType).
func WithAggregateType(name string) KindOption {
	return func(b *binding) { b.aggType = name }
}

// NewKind wires A once, checks that registry knows every event A replays,
// and returns the Kind binding A's instances to registry and store. Its
// errors are those of AutomaticWireup (a *WireupError matching
// ErrInvalidWireup), ErrNotInitialized for a nil registry or store, and
// the error of StreamID.Validate for an invalid aggregate type.
func NewKind[A Aggregate](registry EventRegistry, store EventStore, opts ...KindOption) (*Kind[A], error) {
	if registry == nil || store == nil {
		return nil, fmt.Errorf("%w: NewKind needs a registry and a store", ErrNotInitialized)
	}
	t := reflect.TypeFor[A]()
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, &WireupError{Type: t.String(), Problems: []string{"the aggregate type must be a pointer to a struct"}}
	}
	w := wiringFor(t)
	if err := w.check(registry, nil); err != nil {
		return nil, err
	}
	k := &Kind[A]{b: binding{registry: registry, store: store, wiring: w, shared: true}}
	for _, o := range opts {
		o(&k.b)
	}
	k.b.shared = true
	if err := (StreamID{AggregateType: k.AggregateType(), Key: "k"}).Validate(); err != nil {
		return nil, fmt.Errorf("eventsourcing: NewKind[%s]: %w", t, err)
	}
	return k, nil
}

// AggregateType returns the aggregate type of the Kind's streams.
func (k *Kind[A]) AggregateType() string {
	if k.b.aggType != "" {
		return k.b.aggType
	}
	return k.b.wiring.typeName
}

// Bind binds a to key: a is then ready for Handle, Run and Refresh, as
// after Initialize and AutomaticWireup. Like Initialize it resets
// everything a's AggregateBase held before, so an instance can be reused
// for another key; an invalid key is reported by the first call that needs
// it. Bind fails with ErrNotInitialized if a is nil or k was not made by
// NewKind.
func (k *Kind[A]) Bind(a A, key string) error {
	var zero A
	if k.b.wiring == nil || any(a) == any(zero) { // NewKind made sure that A is a pointer: comparable
		return fmt.Errorf("%w: Bind needs a non-nil %s and a Kind made by NewKind", ErrNotInitialized, reflect.TypeFor[A]())
	}
	// Field by field, every field but busy (which only a call sets, and
	// clears), rather than a copy of a whole struct with its write barriers.
	b := a.aggregateBase()
	b.key, b.kind, b.subject, b.run, b.flags = key, &k.b, a, nil, 0
	return nil
}
