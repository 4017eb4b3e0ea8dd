package projection

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	es "github.com/aggregatekit/eventsourcing"
)

// Handler is what a Runner drives: something that turns events, in stream
// order, into effects committed with the runner's progress. *Projection is
// the handler of read models; a process manager (event in, command out)
// fits the same shape, deciding in Apply and deriving its command IDs from
// the event's CommitID so that a redelivery cannot act twice.
type Handler interface {
	// ID names the handler's checkpoint and progress.
	ID() ID
	// Check is called once by NewRunner with the type of the store's
	// transaction handle (nil if the store has none); it reports, in one
	// error, every part of the handler that cannot take it.
	Check(handle reflect.Type) error
	// Decode turns a stored record into an Event. It reports ok == false
	// for a record the handler does not apply (the runner still counts it
	// as the stream's next event) and an error for one it should apply but
	// cannot decode. Event.Position is set by the runner.
	Decode(rec es.Record) (ev Event, ok bool, err error)
	// Apply applies ev. tx is the store's transaction handle (Tx.Handle);
	// the effects must go through it to be committed atomically with the
	// checkpoint. The runner calls Apply from one goroutine at a time.
	Apply(ctx context.Context, tx any, ev Event) error
}

// Projection maps events to a read model, the way an aggregate maps them
// to its state: through Project methods of the model found by reflection
// (see New), or through functions registered with On and OnTx. It
// implements Handler. Register functions before passing it to NewRunner;
// after that a Projection is read-only and safe for concurrent use.
type Projection struct {
	id       ID
	registry es.EventRegistry
	model    reflect.Value
	byName   map[string]*binding // stored event type name -> how to apply it
	aggTypes map[string]bool     // nil: every aggregate type
}

// binding is how one event type is applied.
type binding struct {
	what   string       // "method ProjectX" or "On(T)", for errors
	t      reflect.Type // the registered (non-pointer) event type
	handle reflect.Type // the transaction type taken, nil if none
	call   func(ctx context.Context, tx any, ev Event) error
}

// Option configures New.
type Option func(*options)

type options struct {
	version  string
	aggTypes []string
}

// WithVersion sets the projection's version (default DefaultVersion). A
// new version of a projection has its own checkpoint and progress, so it
// can be built from the beginning beside the live one, then activated.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// WithAggregateTypes limits the projection to the streams of these
// aggregate types: the runner ignores every other stream entirely (no
// decoding, no per-stream sequence kept). Without it every stream counts,
// and the runner keeps a sequence for every stream it sees, even for
// events the projection does not apply.
func WithAggregateTypes(types ...string) Option {
	return func(o *options) { o.aggTypes = append(o.aggTypes, types...) }
}

// The shapes of a Project method, for errors.
const projectShapes = "want ProjectX([ctx context.Context,] [tx T,] [ev projection.Event,] e E) with no result or an error, where E or *E is a registered event type and T is the store's transaction (such as *sql.Tx)"

var (
	typeContext = reflect.TypeFor[context.Context]()
	typeEvent   = reflect.TypeFor[Event]()
	typeError   = reflect.TypeFor[error]()
)

// New returns the projection named name over model, a non-nil pointer to
// the read model. Its methods whose names start with Project apply events;
// with pointer receivers, they take, in this order, an optional
// context.Context, an optional transaction of the projection's store
// (*sql.Tx for an SQLStore, or an interface it implements), an optional
// Event (the envelope: stream, sequence, commit ID, time, metadata), and
// the event, E or *E, and return nothing or an error:
//
//	func (m *Totals) ProjectIncremented(e Incremented)
//	func (m *Totals) ProjectIncremented(ev projection.Event, e Incremented)
//	func (m *Totals) ProjectIncremented(ctx context.Context, tx *sql.Tx, ev projection.Event, e *Incremented) error
//
// The X suffix is free; dispatch is by the event's Go type, which the
// registry must know. Every other method whose name starts with Project is
// an error, as are two methods for one event type and a model that is not
// a non-nil pointer: New reports all problems together in one
// *eventsourcing.WireupError (matching eventsourcing.ErrInvalidWireup),
// as AggregateBase.AutomaticWireup does. model may have no Project
// methods when functions registered with On and OnTx apply every event.
//
// Events of types without a method or function are not decoded; the
// runner still counts them in their stream's sequence.
func New(name string, registry es.EventRegistry, model any, opts ...Option) (*Projection, error) {
	o := options{version: DefaultVersion}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	id := ID{Name: name, Version: o.version}
	if err := id.Validate(); err != nil {
		return nil, err
	}
	if registry == nil || (reflect.ValueOf(registry).Kind() == reflect.Pointer && reflect.ValueOf(registry).IsNil()) {
		return nil, fmt.Errorf("projection %s: nil registry", id)
	}
	p := &Projection{id: id, registry: registry, byName: map[string]*binding{}}
	if len(o.aggTypes) > 0 {
		p.aggTypes = map[string]bool{}
		for _, t := range o.aggTypes {
			p.aggTypes[t] = true
		}
	}
	v := reflect.ValueOf(model)
	if !v.IsValid() || v.Kind() != reflect.Pointer || v.IsNil() {
		return nil, &es.WireupError{Type: fmt.Sprintf("%T", model), Problems: []string{"the read model must be a non-nil pointer"}}
	}
	p.model = v
	if problems := p.wire(v); len(problems) > 0 {
		return nil, &es.WireupError{Type: v.Type().String(), Problems: problems}
	}
	return p, nil
}

// wire finds the Project methods of the model and returns every problem.
func (p *Projection) wire(v reflect.Value) []string {
	t := v.Type()
	var problems []string
	for i := 0; i < t.NumMethod(); i++ {
		m := t.Method(i)
		if !strings.HasPrefix(m.Name, "Project") {
			continue
		}
		if _, valueRecv := t.Elem().MethodByName(m.Name); valueRecv {
			problems = append(problems, fmt.Sprintf("%s has a value receiver; it must have a pointer receiver (%s)", m.Name, t))
			continue
		}
		b, problem := methodBinding(v, m)
		if problem != "" {
			problems = append(problems, problem)
			continue
		}
		if problem := p.bind(b); problem != "" {
			problems = append(problems, problem)
		}
	}
	return problems
}

// bind registers b under its event type's stored name.
func (p *Projection) bind(b *binding) string {
	name, ok := p.registry.Name(b.t)
	if !ok {
		return fmt.Sprintf("%s applies %s, which registry %q does not know (RegisterEvent it first)", b.what, b.t, p.registry.Domain())
	}
	if prev, dup := p.byName[name]; dup {
		return fmt.Sprintf("%s and %s both apply event %s", prev.what, b.what, b.t)
	}
	p.byName[name] = b
	return ""
}

// methodBinding checks the shape of method m and builds its call.
func methodBinding(recv reflect.Value, m reflect.Method) (*binding, string) {
	ft := m.Type // receiver first
	bad := func() (*binding, string) {
		return nil, fmt.Sprintf("%s has signature %s; %s", m.Name, ft, projectShapes)
	}
	if ft.IsVariadic() || ft.NumIn() < 2 || ft.NumIn() > 5 {
		return bad()
	}
	returnsErr := false
	switch {
	case ft.NumOut() == 0:
	case ft.NumOut() == 1 && ft.Out(0) == typeError:
		returnsErr = true
	default:
		return bad()
	}
	last := ft.In(ft.NumIn() - 1)
	et, ptr, ok := eventParam(last)
	if !ok {
		return nil, fmt.Sprintf("%s takes event type %s; events must be named non-interface types (or pointers to them)", m.Name, last)
	}
	// The leading parameters, in order: context, transaction, envelope.
	var withCtx, withEnv bool
	var handle reflect.Type
	stage := 0
	for i := 1; i < ft.NumIn()-1; i++ {
		in := ft.In(i)
		switch {
		case in == typeContext && stage < 1:
			withCtx, stage = true, 1
		case in == typeEvent && stage < 3:
			withEnv, stage = true, 3
		case in != typeContext && in != typeEvent && stage < 2:
			handle, stage = in, 2
		default:
			return nil, fmt.Sprintf("%s takes %s in position %d; %s", m.Name, in, i, projectShapes)
		}
	}
	fn := m.Func
	b := &binding{what: "method " + m.Name, t: et, handle: handle}
	b.call = func(ctx context.Context, tx any, ev Event) error {
		var buf [5]reflect.Value
		args := append(buf[:0], recv)
		if withCtx {
			c := ctx // only this copy goes to the heap, and only for methods that take it
			args = append(args, reflect.ValueOf(&c).Elem())
		}
		if handle != nil {
			h := reflect.New(handle).Elem()
			if tx != nil {
				h.Set(reflect.ValueOf(tx))
			}
			args = append(args, h)
		}
		if withEnv {
			args = append(args, reflect.ValueOf(ev))
		}
		if ptr {
			args = append(args, ev.ptr)
		} else {
			args = append(args, ev.ptr.Elem())
		}
		out := fn.Call(args)
		if returnsErr {
			err, _ := out[0].Interface().(error)
			return err
		}
		return nil
	}
	return b, ""
}

// eventParam reports the non-pointer named type of an event parameter, and
// whether it was a pointer.
func eventParam(p reflect.Type) (reflect.Type, bool, bool) {
	ptr := p.Kind() == reflect.Pointer
	if ptr {
		p = p.Elem()
	}
	if p.Kind() == reflect.Interface || p.Kind() == reflect.Pointer || p.Name() == "" || p == typeEvent {
		return nil, false, false
	}
	return p, ptr, true
}

// On registers fn to apply events of type E (a registered event type, or
// a pointer to one) without reflection over methods. It takes precedence
// over a Project method for the same type. It fails, wrapping
// eventsourcing.ErrUnregisteredEvent, if the registry does not know E, and
// with eventsourcing.ErrInvalidWireup for a nil fn or a second function
// for E. Call it before NewRunner.
func On[E any](p *Projection, fn func(ctx context.Context, ev Event, e E) error) error {
	if fn == nil {
		return fmt.Errorf("%w: projection %s: nil function for %s", es.ErrInvalidWireup, p.id, reflect.TypeFor[E]())
	}
	return onFunc[E](p, nil, func(ctx context.Context, _ any, ev Event, e E) error { return fn(ctx, ev, e) })
}

// OnTx is On for a function that also takes the store's transaction, of
// type T: *sql.Tx for an SQLStore, or an interface it implements.
// NewRunner checks that the store provides it.
func OnTx[T, E any](p *Projection, fn func(ctx context.Context, tx T, ev Event, e E) error) error {
	if fn == nil {
		return fmt.Errorf("%w: projection %s: nil function for %s", es.ErrInvalidWireup, p.id, reflect.TypeFor[E]())
	}
	return onFunc[E](p, reflect.TypeFor[T](), func(ctx context.Context, tx any, ev Event, e E) error {
		h, _ := tx.(T) // the zero T if the store has no handle; Check refused that
		return fn(ctx, h, ev, e)
	})
}

func onFunc[E any](p *Projection, handle reflect.Type, fn func(ctx context.Context, tx any, ev Event, e E) error) error {
	et, ptr, ok := eventParam(reflect.TypeFor[E]())
	if !ok {
		return fmt.Errorf("%w: projection %s: event type %s must be a named non-interface type (or a pointer to one)", es.ErrInvalidWireup, p.id, reflect.TypeFor[E]())
	}
	name, known := p.registry.Name(et)
	if !known {
		return fmt.Errorf("%w: projection %s: %s (registry %q does not know it)", es.ErrUnregisteredEvent, p.id, et, p.registry.Domain())
	}
	if prev, dup := p.byName[name]; dup && !strings.HasPrefix(prev.what, "method ") {
		return fmt.Errorf("%w: projection %s: %s and On(%s) both apply event %s", es.ErrInvalidWireup, p.id, prev.what, et, et)
	}
	b := &binding{what: fmt.Sprintf("On(%s)", et), t: et, handle: handle}
	b.call = func(ctx context.Context, tx any, ev Event) error {
		var e E
		if ptr {
			e, _ = ev.ptr.Interface().(E)
		} else {
			e, _ = ev.Data.(E)
		}
		return fn(ctx, tx, ev, e)
	}
	p.byName[name] = b
	return nil
}

// ID returns the projection's name and version.
func (p *Projection) ID() ID { return p.id }

// Model returns the read model given to New.
func (p *Projection) Model() any { return p.model.Interface() }

// Check reports, in one *eventsourcing.WireupError that also matches
// ErrInvalidHandle, every method and function that takes a transaction of
// a type the store's handle (of type handle, nil if the store has none)
// cannot be passed as.
func (p *Projection) Check(handle reflect.Type) error {
	var problems []string
	for _, b := range p.byName {
		if b.handle == nil {
			continue
		}
		switch {
		case handle == nil:
			problems = append(problems, fmt.Sprintf("%s takes a transaction of type %s, but the store provides none (use an SQLStore, or drop the parameter)", b.what, b.handle))
		case !handle.AssignableTo(b.handle):
			problems = append(problems, fmt.Sprintf("%s takes a transaction of type %s, but the store provides %s", b.what, b.handle, handle))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	slices.Sort(problems)
	return &handleError{es.WireupError{Type: p.model.Type().String(), Problems: problems}}
}

// handleError is a WireupError that also matches ErrInvalidHandle.
type handleError struct{ es.WireupError }

func (e *handleError) Is(target error) bool {
	return target == ErrInvalidHandle || target == es.ErrInvalidWireup
}

func (e *handleError) Unwrap() error { return &e.WireupError }

// Decode decodes rec if the projection applies its type (see Handler).
func (p *Projection) Decode(rec es.Record) (Event, bool, error) {
	if p.aggTypes != nil && !p.aggTypes[rec.Stream.AggregateType] {
		return Event{}, false, nil
	}
	b := p.byName[rec.EventType]
	if b == nil {
		return Event{}, false, nil
	}
	ptr := reflect.New(b.t)
	if err := p.registry.Codec().Unmarshal(rec.Data, ptr.Interface()); err != nil {
		return Event{}, false, &es.RecordError{Stream: rec.Stream, Sequence: rec.Sequence, Type: rec.EventType, Err: err}
	}
	return Event{Stream: rec.Stream, Sequence: rec.Sequence, Type: rec.EventType, Data: ptr.Elem().Interface(),
		CommitID: rec.CommitID, Time: rec.Timestamp, Metadata: rec.Metadata, ptr: ptr}, true, nil
}

// Tracks reports whether the runner considers stream at all: false for
// streams outside WithAggregateTypes (see Tracker).
func (p *Projection) Tracks(stream es.StreamID) bool {
	return p.aggTypes == nil || p.aggTypes[stream.AggregateType]
}

// Apply applies ev through the method or function registered for its
// type. A panic in it becomes an error.
func (p *Projection) Apply(ctx context.Context, tx any, ev Event) (err error) {
	b := p.byName[ev.Type]
	if b == nil || !ev.ptr.IsValid() {
		return fmt.Errorf("projection %s: no handler for event %q (an Event not made by Decode?)", p.id, ev.Type)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("projection %s: %s panicked: %v", p.id, b.what, r)
		}
	}()
	return b.call(ctx, tx, ev)
}
