package eventsourcing

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// wiring is what AutomaticWireup learns about one Go type. It is computed once
// per type and shared, read-only, by every instance.
type wiring struct {
	typ        reflect.Type // the *T it describes
	typeName   string
	base       int                            // index of the embedded AggregateBase field, -1 if none
	baseOffset uintptr                        // its offset in the struct
	handlers   map[reflect.Type]handlerMethod // keyed by the non-pointer command type
	replays    map[reflect.Type]replayMethod  // keyed by the non-pointer event type
	err        *WireupError                   // shape problems; registry problems are checked per call

	dispatchesEvents   bool // *T implements EventDispatcher
	dispatchesCommands bool // *T implements CommandDispatcher

	// appliesJSON: *T implements JSONEventApplier, and JSONCodec would
	// call the DecodeJSON method of every replayed event type that has one
	// (none has it only by promotion or beside an UnmarshalJSON), so that
	// ApplyJSONEvent decodes as JSONCodec.Unmarshal would.
	appliesJSON bool

	// registered is the registry last found to know every replayed event
	// type. Registries only grow, so it stays true.
	registered atomic.Pointer[StandardEventRegistry]
}

type handlerMethod struct {
	name string
	fn   reflect.Value // the method as a func with the receiver first
	ctx  bool          // takes a context.Context before the command
	ptr  bool          // takes *C rather than C
}

type replayMethod struct {
	name string
	fn   reflect.Value
	ptr  bool // takes *E rather than E
}

// wirings caches the wiring of each aggregate Go type (a *T). It is a memo of
// a pure function of the type, so sharing it between registries and stores is
// safe.
var wirings sync.Map // reflect.Type -> *wiring

var (
	typeContext   = reflect.TypeFor[context.Context]()
	typeError     = reflect.TypeFor[error]()
	typeEvents    = reflect.TypeFor[[]Event]()
	typeBasePtr   = reflect.TypeFor[*AggregateBase]()
	typeBaseValue = reflect.TypeFor[AggregateBase]()

	typeEventDispatcher   = reflect.TypeFor[EventDispatcher]()
	typeCommandDispatcher = reflect.TypeFor[CommandDispatcher]()
	typeJSONEventApplier  = reflect.TypeFor[JSONEventApplier]()
	typeJSONDecoder       = reflect.TypeFor[JSONDecoder]()
)

func wiringFor(t reflect.Type) *wiring {
	if w, ok := wirings.Load(t); ok {
		return w.(*wiring)
	}
	w, _ := wirings.LoadOrStore(t, buildWiring(t))
	return w.(*wiring)
}

// buildWiring inspects the methods of pointer type t. It never panics: every
// method whose name starts with Handle or Replay either fits an accepted shape
// or is listed in the returned wiring's error.
func buildWiring(t reflect.Type) *wiring {
	w := &wiring{
		typ:      t,
		typeName: t.Elem().Name(),
		handlers: map[reflect.Type]handlerMethod{},
		replays:  map[reflect.Type]replayMethod{},

		dispatchesEvents:   t.Implements(typeEventDispatcher),
		dispatchesCommands: t.Implements(typeCommandDispatcher),
	}
	var problems []string
	if w.base = baseField(t.Elem()); w.base < 0 {
		problems = append(problems, "it must embed eventsourcing.AggregateBase (by value)")
	} else {
		w.baseOffset = t.Elem().Field(w.base).Offset
	}
	for i := 0; i < t.NumMethod(); i++ {
		m := t.Method(i)
		isHandle := strings.HasPrefix(m.Name, "Handle")
		isReplay := strings.HasPrefix(m.Name, "Replay")
		if !isHandle && !isReplay {
			continue
		}
		if _, promoted := typeBasePtr.MethodByName(m.Name); promoted {
			continue // AggregateBase's own Handle
		}
		if _, valueRecv := t.Elem().MethodByName(m.Name); valueRecv {
			problems = append(problems, fmt.Sprintf("%s has a value receiver; it must have a pointer receiver (*%s)", m.Name, w.typeName))
			continue
		}
		if isHandle {
			h, key, problem := handlerShape(m)
			if problem != "" {
				problems = append(problems, problem)
				continue
			}
			if prev, dup := w.handlers[key]; dup {
				problems = append(problems, fmt.Sprintf("%s and %s both handle command %s", prev.name, m.Name, key))
				continue
			}
			w.handlers[key] = h
			continue
		}
		r, key, problem := replayShape(m)
		if problem != "" {
			problems = append(problems, problem)
			continue
		}
		if prev, dup := w.replays[key]; dup {
			problems = append(problems, fmt.Sprintf("%s and %s both replay event %s", prev.name, m.Name, key))
			continue
		}
		w.replays[key] = r
	}
	if t.Implements(typeJSONEventApplier) {
		w.appliesJSON = true
		for e := range w.replays {
			if p := reflect.PointerTo(e); p.Implements(typeJSONDecoder) && !ownDecoder(p) {
				w.appliesJSON = false
			}
		}
	}
	if len(problems) > 0 {
		w.err = &WireupError{Type: t.String(), Problems: problems}
	}
	return w
}

// baseField returns the index of t's embedded AggregateBase, or -1.
func baseField(t reflect.Type) int {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.Anonymous && f.Type == typeBaseValue {
			return i
		}
	}
	return -1
}

const (
	handleShapes = "want func(C) ([]eventsourcing.Event, error) or func(context.Context, C) ([]eventsourcing.Event, error)"
	replayShapes = "want func(E) or func(*E) with no results"
)

// paramType reports the non-pointer named type of a command or event
// parameter, and whether it was a pointer.
func paramType(p reflect.Type) (reflect.Type, bool, bool) {
	ptr := p.Kind() == reflect.Pointer
	if ptr {
		p = p.Elem()
	}
	if p.Kind() == reflect.Interface || p.Kind() == reflect.Pointer || p.Name() == "" {
		return nil, false, false
	}
	return p, ptr, true
}

func handlerShape(m reflect.Method) (handlerMethod, reflect.Type, string) {
	ft := m.Type // receiver first
	h := handlerMethod{name: m.Name, fn: m.Func}
	if ft.IsVariadic() || ft.NumOut() != 2 || ft.Out(0) != typeEvents || ft.Out(1) != typeError {
		return h, nil, fmt.Sprintf("%s has signature %s; %s", m.Name, ft, handleShapes)
	}
	switch ft.NumIn() {
	case 2:
	case 3:
		if ft.In(1) != typeContext {
			return h, nil, fmt.Sprintf("%s takes %s before the command; only context.Context may come first", m.Name, ft.In(1))
		}
		h.ctx = true
	default:
		return h, nil, fmt.Sprintf("%s has signature %s; %s", m.Name, ft, handleShapes)
	}
	key, ptr, ok := paramType(ft.In(ft.NumIn() - 1))
	if !ok {
		return h, nil, fmt.Sprintf("%s takes command type %s; commands must be named non-interface types (or pointers to them)", m.Name, ft.In(ft.NumIn()-1))
	}
	h.ptr = ptr
	return h, key, ""
}

func replayShape(m reflect.Method) (replayMethod, reflect.Type, string) {
	ft := m.Type
	r := replayMethod{name: m.Name, fn: m.Func}
	if ft.IsVariadic() || ft.NumIn() != 2 || ft.NumOut() != 0 {
		return r, nil, fmt.Sprintf("%s has signature %s; %s", m.Name, ft, replayShapes)
	}
	key, ptr, ok := paramType(ft.In(1))
	if !ok {
		return r, nil, fmt.Sprintf("%s takes event type %s; events must be named non-interface types (or pointers to them)", m.Name, ft.In(1))
	}
	r.ptr = ptr
	return r, key, ""
}

// EventDispatcher may be implemented by an aggregate to apply events
// without reflective calls: DispatchEvent applies e (an event value or a
// pointer to one) by calling the aggregate's Replay method for its type, and
// reports false if it has none. `go run
// github.com/aggregatekit/eventsourcing/cmd/esgen` writes it (and
// CommandDispatcher) from the aggregate's Replay and Handle methods, so the
// convention stays the source of truth; AutomaticWireup then uses it instead
// of reflect.Value.Call. Replay functions given to DefineReplayMethod still
// come first.
type EventDispatcher interface {
	DispatchEvent(e Event) bool
}

// CommandDispatcher may be implemented by an aggregate to run command
// handlers without reflective calls: DispatchCommand calls the aggregate's
// Handle method for cmd's type (cmd may be a command value or a pointer to
// one) and returns its result, or returns exactly ErrNoHandler if it has
// none. See EventDispatcher.
type CommandDispatcher interface {
	DispatchCommand(ctx context.Context, cmd any) ([]Event, error)
}

// JSONEventApplier may be implemented by an aggregate to load events
// stored by JSONCodec without reflection: ApplyJSONEvent decodes data as a
// value of the event type t with the type's DecodeJSON method (see
// JSONDecoder) and applies it with the aggregate's Replay method for t, and
// reports true; for a type it has no case for it does nothing and reports
// false. A decoding error is returned with true, and nothing is applied.
// cmd/esgen writes it, for the events it writes DecodeJSON for. A load uses
// it when the registry's codec is JSONCodec, no DefineReplayMethod function
// is defined for t, and JSONCodec.Unmarshal would itself call DecodeJSON;
// otherwise it decodes a new value of t with the codec and applies it as
// usual.
type JSONEventApplier interface {
	ApplyJSONEvent(t reflect.Type, data []byte) (bool, error)
}

// AutomaticWireup finds subject's command handlers and replay methods by
// reflection. subject is the aggregate itself: a non-nil pointer to a struct
// that embeds AggregateBase, normally the same value Initialize was given
// through its StateFetchFunc. Call it after Initialize.
//
// Accepted shapes, all with pointer receivers:
//
//	HandleX(cmd C) ([]eventsourcing.Event, error)
//	HandleX(ctx context.Context, cmd C) ([]eventsourcing.Event, error)
//	ReplayX(e E)
//	ReplayX(e *E)
//
// The X suffix is free; dispatch is by the parameter's Go type. A command
// handler taking C also receives *C and vice versa; likewise for replays.
// Every other exported method whose name starts with Handle or Replay is an
// error, as are two handlers for one command type, two replays for one event
// type, a replay of an event type the registry does not know, and a subject
// that is not a pointer to a struct embedding AggregateBase. All problems are
// reported together in one *WireupError (matching ErrInvalidWireup).
//
// The reflection runs once per Go type and is cached; later calls for the
// same type cost a map lookup and do not allocate. Handle and Replay methods
// are then called through reflect.Value.Call, unless the aggregate
// implements EventDispatcher and CommandDispatcher (see cmd/esgen), whose
// direct calls cost a type switch.
func (b *AggregateBase) AutomaticWireup(subject any) error {
	if b.kind == nil || b.kind.registry == nil {
		return fmt.Errorf("%w: call Initialize before AutomaticWireup", ErrNotInitialized)
	}
	v := reflect.ValueOf(subject)
	if !v.IsValid() || v.Kind() != reflect.Pointer || v.IsNil() || v.Type().Elem().Kind() != reflect.Struct {
		return &WireupError{Type: fmt.Sprintf("%T", subject), Problems: []string{"the subject must be a non-nil pointer to a struct"}}
	}
	w := wiringFor(v.Type())
	var instance []string
	if w.base >= 0 && v.Pointer()+w.baseOffset != reflect.ValueOf(b).Pointer() {
		instance = append(instance, "the subject is another aggregate than the one this AggregateBase is embedded in (call a.AutomaticWireup(a))")
	}
	if err := w.check(b.kind.registry, instance); err != nil {
		return err
	}
	if b.kind.wiring != w {
		b.own().wiring = w
	}
	b.subject = subject
	b.set(streamOK, false) // the default aggregate type is now the wired type's name
	return nil
}

// check returns the wiring's problems with registry, and the given
// problems of an instance, as one *WireupError, or nil.
func (w *wiring) check(registry EventRegistry, instance []string) error {
	std, _ := registry.(*StandardEventRegistry)
	if std == nil || w.registered.Load() != std {
		var unknown []string
		for t, r := range w.replays {
			if _, ok := registry.Name(t); !ok {
				unknown = append(unknown, fmt.Sprintf("%s replays %s, which registry %q does not know (RegisterEvent it first)", r.name, t, registry.Domain()))
			}
		}
		if unknown == nil && std != nil {
			w.registered.Store(std)
		}
		instance = append(instance, unknown...)
	}
	if w.err == nil && instance == nil {
		return nil
	}
	slices.Sort(instance)
	var problems []string // a fresh slice: the cached one is shared
	if w.err != nil {
		problems = append(problems, w.err.Problems...)
	}
	return &WireupError{Type: w.typ.String(), Problems: append(problems, instance...)}
}

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
	if _, ok := b.kind.registry.Name(t); !ok {
		return fmt.Errorf("%w: %s (replay defined for an event type the registry does not know)", ErrUnregisteredEvent, t)
	}
	o := b.options()
	if o.replays == nil {
		o.replays = map[reflect.Type]func(Event){}
	}
	o.replays[t] = fn
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
	o := b.options()
	if o.handlers == nil {
		o.handlers = map[reflect.Type]func(context.Context, any) ([]Event, error){}
	}
	o.handlers[t] = fn
	return nil
}

func (b *AggregateBase) definedType(sample any, nilFn bool) (reflect.Type, error) {
	if b.kind == nil || b.kind.registry == nil {
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

// decision is how one command (or one Run function) decides: a value, so
// that handling a command allocates no closure.
type decision struct {
	fn      func(context.Context) ([]Event, error)      // Run
	defined func(context.Context, any) ([]Event, error) // DefineCommandHandler
	cmd     any
	h       handlerMethod // a wired Handle method
	t       reflect.Type  // cmd's non-pointer type
	isPtr   bool
}

// decision resolves cmd's handler: a defined one, the generated
// dispatcher's, or the wired Handle method for its type.
func (b *AggregateBase) decision(cmd any) (decision, error) {
	t := reflect.TypeOf(cmd)
	if t == nil {
		return decision{}, fmt.Errorf("%w: nil command", ErrInvalidCommand)
	}
	d := decision{cmd: cmd, t: t}
	if t.Kind() == reflect.Pointer {
		if reflect.ValueOf(cmd).IsNil() {
			return decision{}, fmt.Errorf("%w: nil %s", ErrInvalidCommand, t)
		}
		d.t, d.isPtr = t.Elem(), true
	}
	if o := b.ext(); o != nil {
		if fn, ok := o.handlers[d.t]; ok {
			d.defined = fn
			return d, nil
		}
	}
	if b.kind == nil || b.kind.wiring == nil {
		return decision{}, fmt.Errorf("%w: %s (no AutomaticWireup or DefineCommandHandler for it)", ErrNoHandler, d.t)
	}
	h, ok := b.kind.wiring.handlers[d.t]
	if !ok {
		return decision{}, fmt.Errorf("%w: %s on %s", ErrNoHandler, d.t, b.kind.wiring.typeName)
	}
	d.h = h
	return d, nil
}

// decide runs the decision against the current state.
func (b *AggregateBase) decide(ctx context.Context, d *decision) ([]Event, error) {
	switch {
	case d.fn != nil:
		return d.fn(ctx)
	case d.defined != nil:
		return d.defined(ctx, d.cmd)
	}
	if b.kind.wiring.dispatchesCommands {
		events, err := b.subject.(CommandDispatcher).DispatchCommand(ctx, d.cmd)
		if err != ErrNoHandler {
			return events, err
		}
	}
	// A fresh argument per attempt: a retry must not see what a handler did
	// to the command in a failed attempt.
	h := &d.h
	arg := reflect.ValueOf(d.cmd)
	switch {
	case h.ptr && !d.isPtr:
		p := reflect.New(d.t)
		p.Elem().Set(arg)
		arg = p
	case !h.ptr && d.isPtr:
		arg = arg.Elem()
	}
	var buf [3]reflect.Value
	in := append(buf[:0], reflect.ValueOf(b.subject))
	if h.ctx {
		in = append(in, reflect.ValueOf(ctx))
	}
	in = append(in, arg)
	out := h.fn.Call(in)
	events, _ := out[0].Interface().([]Event)
	err, _ := out[1].Interface().(error)
	return events, err
}

// handlerFor returns the decision function of cmd, for callers outside the
// command loop (Repository.HandleExisting).
func (b *AggregateBase) handlerFor(cmd any) (func(context.Context) ([]Event, error), error) {
	d, err := b.decision(cmd)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) ([]Event, error) { return b.decide(ctx, &d) }, nil
}

// applyRaised applies an event as raised by a handler (E or *E).
func (b *AggregateBase) applyRaised(e Event) {
	t := reflect.TypeOf(e)
	isPtr := t.Kind() == reflect.Pointer
	if isPtr {
		t = t.Elem()
	}
	if o := b.ext(); o != nil {
		if fn, ok := o.replays[t]; ok {
			if isPtr {
				e = reflect.ValueOf(e).Elem().Interface()
			}
			fn(e)
			return
		}
	}
	if b.kind.wiring == nil {
		return
	}
	if b.kind.wiring.dispatchesEvents && b.subject.(EventDispatcher).DispatchEvent(e) {
		return
	}
	r, ok := b.kind.wiring.replays[t]
	if !ok {
		return
	}
	arg := reflect.ValueOf(e)
	switch {
	case r.ptr && !isPtr:
		p := reflect.New(t)
		p.Elem().Set(arg)
		arg = p
	case !r.ptr && isPtr:
		arg = arg.Elem()
	}
	b.callReplay(r, arg)
}

// replayDecoded applies a decoded event held by ptr, a *t.
func (b *AggregateBase) replayDecoded(t reflect.Type, ptr reflect.Value) {
	if o := b.ext(); o != nil {
		if fn, ok := o.replays[t]; ok {
			fn(ptr.Elem().Interface())
			return
		}
	}
	if b.kind.wiring == nil {
		return
	}
	if b.kind.wiring.dispatchesEvents && b.subject.(EventDispatcher).DispatchEvent(ptr.Interface()) {
		return
	}
	if r, ok := b.kind.wiring.replays[t]; ok {
		if r.ptr {
			b.callReplay(r, ptr)
		} else {
			b.callReplay(r, ptr.Elem())
		}
	}
}

func (b *AggregateBase) callReplay(r replayMethod, arg reflect.Value) {
	args := [2]reflect.Value{reflect.ValueOf(b.subject), arg}
	r.fn.Call(args[:])
}
