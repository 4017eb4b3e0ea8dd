package eventsourcing

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
)

// StateFetchFunc returns the aggregate's state: a pointer to the struct that
// embeds AggregateBase (or to any value a Codec can encode and decode). It is
// what snapshots capture and restore.
type StateFetchFunc func() any

// StateResetter may be implemented by an aggregate to control how its state
// is cleared before a snapshot is restored or the stream is replayed from
// the start. Without it, AggregateBase sets to their zero values the
// fields the codec stores (the exported fields not tagged `json:"-"`, and
// embedded structs), and keeps the rest: the embedded AggregateBase,
// unexported fields and fields tagged `json:"-"`, where configuration and
// dependencies belong.
type StateResetter interface {
	ResetState()
}

// DefaultIdempotencyWindow is how many of the stream's latest commit IDs an
// aggregate remembers (and its snapshots keep) to recognise a repeated
// command; see WithCommandID and SetIdempotencyWindow.
const DefaultIdempotencyWindow = 100

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
// how to handle commands and apply events; a Kind does both once per type
// for all the instances it binds. An AggregateBase holds one
// in-memory copy of one stream and is not safe for concurrent use: use one
// instance per goroutine (per request, say) and let the store arbitrate
// between them. A call made while another call on the same instance is
// running fails with ErrConcurrentUse and changes nothing.
type AggregateBase struct {
	key     string   // the key given to Initialize or Kind.Bind
	kind    *binding // registry, store, aggregate type, wire-up: a Kind's (shared) or the instance's own
	subject any      // the wired aggregate (AutomaticWireup or Kind.Bind)
	run     *live    // what a call changes; made by the first call that needs it
	busy    int32    // a call is running (atomic)
	flags   uint32   // see the flag constants
}

// binding is what an instance shares with the other instances of its Kind
// (shared set: read-only, copied before an instance changes it), or holds
// on its own when it was bound by Initialize.
type binding struct {
	registry EventRegistry
	store    EventStore
	state    StateFetchFunc // nil: the state is the subject
	aggType  string         // set by SetAggregateType or WithAggregateType ("": the default)
	wiring   *wiring        // from AutomaticWireup or NewKind; shared, read-only
	shared   bool           // a Kind's
}

// live is the part of an instance that its calls change.
type live struct {
	stream StreamID // computed and checked by ready (flag streamOK)
	seq    int64    // last sequence applied to the state
	want   string   // command ID being handled: a loaded commit with it is a repeat

	recent []string  // ring of the latest commit IDs, oldest at at once full
	at     int       // next slot to overwrite once recent is full
	first  [1]string // recent's first array, so that a new instance's first commit allocates no ring

	// yield applies one loaded record, keeping the first error in loadErr:
	// made once per instance, used by every load through NewStore's adapter.
	yield   func(Record, error) bool
	loadErr error

	ext *baseOptions // rarely set options and definitions; nil until needed
}

// owned is the binding and live state of an instance bound by Initialize,
// allocated together.
type owned struct {
	binding
	live
}

// Flags of an AggregateBase.
const (
	streamOK    uint32 = 1 << iota // run.stream is computed and valid
	skipUnknown                    // loads skip unknown event types
	applied                        // the pending commit's events were applied (Commit.State)
	found                          // a loaded commit carried want
	primed                         // refreshed by Repository.Do for the command ID ext.primedFor
)

// baseOptions holds what most aggregates never set, so that a new instance
// stays small.
type baseOptions struct {
	retry    RetryPolicy
	window   int // idempotency window: 0 default, < 0 none
	replays  map[reflect.Type]func(Event)
	handlers map[reflect.Type]func(context.Context, any) ([]Event, error)
	ignored  map[reflect.Type]bool

	primedFor string // the command ID of the refresh that set primed
}

// live returns the live part, making it on first use.
func (b *AggregateBase) live() *live {
	if b.run == nil {
		b.run = &live{}
	}
	return b.run
}

func (b *AggregateBase) options() *baseOptions {
	r := b.live()
	if r.ext == nil {
		r.ext = &baseOptions{}
	}
	return r.ext
}

// ext returns the options, or nil if none was set.
func (b *AggregateBase) ext() *baseOptions {
	if b.run == nil {
		return nil
	}
	return b.run.ext
}

// own returns the binding, first copied if it is a Kind's, so that the
// instance can change it.
func (b *AggregateBase) own() *binding {
	switch {
	case b.kind == nil:
		b.kind = &binding{}
	case b.kind.shared:
		c := *b.kind
		c.shared = false
		b.kind = &c
	}
	return b.kind
}

// stateValue returns the aggregate's state: the value of the state
// function, or the subject of a Kind's instance.
func (b *AggregateBase) stateValue() any {
	if b.kind.state != nil {
		return b.kind.state()
	}
	return b.subject
}

func (b *AggregateBase) has(f uint32) bool { return b.flags&f != 0 }

func (b *AggregateBase) set(f uint32, on bool) {
	if on {
		b.flags |= f
	} else {
		b.flags &^= f
	}
}

// Initialize binds the aggregate to the stream key, the registry that names
// its events, the store that keeps them, and the function returning its state
// (normally func() any { return a } for the enclosing struct a). It resets
// everything the AggregateBase held before, including options and wire-up,
// so an instance can be reused for another key. Problems (nil arguments, an
// invalid key) are reported by the first call that needs them.
//
// Initialize allocates the instance's own copy of what it is bound to. A
// service that makes many instances of one type binds them with a Kind
// instead, which shares that part and wires the type once.
func (b *AggregateBase) Initialize(key string, registry EventRegistry, store EventStore, state StateFetchFunc) {
	o := &owned{binding: binding{registry: registry, store: store, state: state}}
	*b = AggregateBase{key: key, kind: &o.binding, run: &o.live}
}

// SetAggregateType sets the aggregate type of the stream, which defaults to
// the Go type name of the state. Set it to keep stored streams stable when the
// Go type is renamed. Call it after Initialize.
func (b *AggregateBase) SetAggregateType(name string) {
	if b.kind == nil || b.kind.aggType != name {
		b.own().aggType = name
	}
	b.set(streamOK, false)
}

// SetRetryPolicy sets how conflicting commands are retried (see RetryPolicy).
// Call it after Initialize, which restores DefaultRetryPolicy.
func (b *AggregateBase) SetRetryPolicy(p RetryPolicy) { b.options().retry = p }

// SetSkipUnknownEvents makes loads skip (but count) stored events whose type
// the registry does not know, instead of failing with an
// *UnknownEventTypeError. Use it for a reader that knows only some event
// types; a writer that skips may decide on incomplete state, and under the
// snapshot middleware its snapshots would capture that incomplete state.
func (b *AggregateBase) SetSkipUnknownEvents(skip bool) { b.set(skipUnknown, skip) }

// SetIdempotencyWindow sets how many of the stream's latest commit IDs the
// aggregate remembers, and its snapshots keep, to recognise a command
// repeated with the same command ID (see WithCommandID); the default is
// DefaultIdempotencyWindow. n = 0 turns the memory off: a repeat is then
// recognised only among the commits loaded while handling it. A larger
// window costs memory per instance and bytes per snapshot (about 40 bytes
// per commit ID).
func (b *AggregateBase) SetIdempotencyWindow(n int) {
	if n <= 0 {
		b.options().window = -1
	} else {
		b.options().window = n
	}
	b.run.recent, b.run.at = nil, 0
}

// IgnoreEvents declares events (sample values, pointers or not) that the
// aggregate raises or loads deliberately without applying them. Any other
// event without a Replay method or a DefineReplayMethod function fails a
// commit with ErrNoReplay before anything is stored.
func (b *AggregateBase) IgnoreEvents(events ...Event) {
	for _, e := range events {
		t := reflect.TypeOf(e)
		if t == nil {
			continue
		}
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		o := b.options()
		if o.ignored == nil {
			o.ignored = map[reflect.Type]bool{}
		}
		o.ignored[t] = true
	}
}

// Key returns the aggregate's key.
func (b *AggregateBase) Key() string { return b.key }

// AggregateType returns the stream's aggregate type: the name given to
// SetAggregateType, or else the Go type name of the state.
func (b *AggregateBase) AggregateType() string {
	k := b.kind
	switch {
	case k == nil:
		return ""
	case k.aggType != "":
		return k.aggType
	case k.wiring != nil:
		return k.wiring.typeName
	case k.state != nil:
		return typeNameOf(k.state())
	}
	return ""
}

// typeNames caches the name of each state type: a memo of a pure function.
var typeNames sync.Map // reflect.Type -> string

func typeNameOf(state any) string {
	t := reflect.TypeOf(state)
	if t == nil {
		return ""
	}
	if n, ok := typeNames.Load(t); ok {
		return n.(string)
	}
	e := t
	for e.Kind() == reflect.Pointer {
		e = e.Elem()
	}
	typeNames.Store(t, e.Name())
	return e.Name()
}

// StreamID returns the identity of the aggregate's stream.
func (b *AggregateBase) StreamID() StreamID {
	if b.has(streamOK) {
		return b.run.stream
	}
	return StreamID{AggregateType: b.AggregateType(), Key: b.key}
}

// SequenceNumber returns the sequence of the last event applied to the state:
// 0 for an aggregate with no history (or not yet loaded).
func (b *AggregateBase) SequenceNumber() int64 {
	if b.run == nil {
		return 0
	}
	return b.run.seq
}

// ready checks that the aggregate can talk to its store, and computes and
// validates its stream identity once.
func (b *AggregateBase) ready() error {
	if b.has(streamOK) {
		return nil
	}
	if k := b.kind; k == nil || k.registry == nil || k.store == nil || (k.state == nil && b.subject == nil) {
		return fmt.Errorf("%w: Initialize needs a registry, a store and a state function", ErrNotInitialized)
	}
	s := StreamID{AggregateType: b.AggregateType(), Key: b.key}
	if err := s.Validate(); err != nil {
		return err
	}
	b.live().stream = s
	b.set(streamOK, true)
	return nil
}

// enter marks the instance busy, failing if another call holds it.
func (b *AggregateBase) enter() error {
	if !atomic.CompareAndSwapInt32(&b.busy, 0, 1) {
		return fmt.Errorf("%w (key %q)", ErrConcurrentUse, b.key) // nothing else of b may be read here
	}
	return nil
}

func (b *AggregateBase) leave() { atomic.StoreInt32(&b.busy, 0) }

// windowSize returns the idempotency window in commits (0: none).
func (b *AggregateBase) windowSize() int {
	o := b.ext()
	if o == nil || o.window == 0 {
		return DefaultIdempotencyWindow
	}
	return max(o.window, 0)
}

// remember notes id as the stream's latest commit.
func (b *AggregateBase) remember(id string) {
	n := b.windowSize()
	if n == 0 || id == "" {
		return
	}
	if len(b.run.recent) < n {
		if b.run.recent == nil {
			b.run.recent = b.run.first[:0]
		}
		b.run.recent = append(b.run.recent, id)
		return
	}
	b.run.recent[b.run.at] = id
	b.run.at = (b.run.at + 1) % n
}

// latest returns the last commit ID remembered, or "". (The ring's next
// slot, at, moves only once the ring is full, so at 0 the last ID is the
// last element.)
func (b *AggregateBase) latest() string {
	switch r := b.run; {
	case len(r.recent) == 0:
		return ""
	case r.at == 0:
		return r.recent[len(r.recent)-1]
	default:
		return r.recent[r.at-1]
	}
}

// remembers reports whether id is among the commit IDs remembered.
func (b *AggregateBase) remembers(id string) bool {
	for _, r := range b.run.recent {
		if r == id {
			return true
		}
	}
	return false
}

// recentWith returns the remembered commit IDs, oldest first, followed by
// id, cut to the window.
func (b *AggregateBase) recentWith(id string) []string {
	n := b.windowSize()
	if n == 0 {
		return nil
	}
	out := make([]string, 0, len(b.run.recent)+1)
	if len(b.run.recent) == n {
		out = append(out, b.run.recent[b.run.at:]...)
		out = append(out, b.run.recent[:b.run.at]...)
	} else {
		out = append(out, b.run.recent...)
	}
	if id != "" {
		out = append(out, id)
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// setRecent replaces the remembered commit IDs (oldest first).
func (b *AggregateBase) setRecent(ids []string) {
	b.run.recent, b.run.at = nil, 0
	if n := b.windowSize(); len(ids) > n {
		ids = ids[len(ids)-n:]
	}
	for _, id := range ids {
		b.remember(id)
	}
}

// resetState clears the state (through StateResetter if implemented, else
// the fields the codec stores) and rewinds to sequence 0.
func (b *AggregateBase) resetState() {
	s := b.stateValue()
	if r, ok := s.(StateResetter); ok {
		r.ResetState()
	} else if v := reflect.ValueOf(s); v.Kind() == reflect.Pointer && !v.IsNil() {
		e := v.Elem()
		if e.Kind() != reflect.Struct {
			e.SetZero()
		} else {
			for _, i := range stateFields(e.Type()) {
				e.Field(i).SetZero()
			}
		}
	}
	b.run.seq = 0
	b.run.recent, b.run.at = nil, 0
	b.set(primed, false)
}

// stateFieldsCache memoizes stateFields per struct type.
var stateFieldsCache sync.Map // reflect.Type -> []int

// stateFields returns the indexes of the fields of struct type t that a
// reset clears: those the codec stores (exported or embedded, not tagged
// `json:"-"`), never an embedded AggregateBase.
func stateFields(t reflect.Type) []int {
	if v, ok := stateFieldsCache.Load(t); ok {
		return v.([]int)
	}
	var out []int
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		switch {
		case f.Type == typeBaseValue:
		case f.Tag.Get("json") == "-":
		case f.IsExported() || f.Anonymous:
			out = append(out, i)
		}
	}
	stateFieldsCache.Store(t, out)
	return out
}
