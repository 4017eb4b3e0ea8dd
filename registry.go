package eventsourcing

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
)

// Event is a domain event: any Go value whose type is registered with an
// EventRegistry. Events are usually small structs, raised as values.
type Event = any

// EventRegistry maps stable stored type names to Go types and back, and holds
// the Codec that encodes events. Implementations must be safe for concurrent
// use. A pointer and the type it points to are the same event type: names
// are always those of the non-pointer type.
type EventRegistry interface {
	// Domain is a label for the registry's events (for logs and docs).
	Domain() string
	// Codec encodes and decodes events and state.
	Codec() Codec
	// RegisterEvent registers each event's Go type under its bare Go type name.
	RegisterEvent(events ...Event) error
	// RegisterEventAs registers event's Go type under an explicit name.
	RegisterEventAs(name string, event Event) error
	// Name returns the stored name of Go type t (or of what t points to).
	Name(t reflect.Type) (string, bool)
	// Type returns the Go type registered under name.
	Type(name string) (reflect.Type, bool)
}

// RegistryOption configures NewStandardEventRegistry.
type RegistryOption func(*StandardEventRegistry)

// WithCodec sets the registry's codec (the default is JSONCodec).
func WithCodec(c Codec) RegistryOption {
	return func(r *StandardEventRegistry) {
		if c != nil {
			r.codec = c
		}
	}
}

// StandardEventRegistry is the EventRegistry of this package. Lookups are
// lock-free (the maps are replaced, never changed, on registration), so it is
// cheap on the replay path and safe for concurrent use; registrations are
// serialised.
type StandardEventRegistry struct {
	domain string
	codec  Codec
	mu     sync.Mutex // serialises writers
	tables atomic.Pointer[registryTables]

	upcasts atomic.Pointer[upcastSteps] // see RegisterUpcasters; nil until the first
}

type registryTables struct {
	byName map[string]reflect.Type
	byType map[reflect.Type]string
	few    []registryEntry // every entry, when there are at most maxFew: a scan beats hashing
}

// maxFew is the largest registry looked up by scanning its entries (see
// registryTables.few) rather than through its maps.
const maxFew = 8

// NewStandardEventRegistry returns an empty registry for the named domain.
func NewStandardEventRegistry(domain string, opts ...RegistryOption) *StandardEventRegistry {
	r := &StandardEventRegistry{domain: domain, codec: JSONCodec{}}
	for _, o := range opts {
		o(r)
	}
	r.tables.Store(&registryTables{byName: map[string]reflect.Type{}, byType: map[reflect.Type]string{}})
	return r
}

// Domain returns the domain label given to NewStandardEventRegistry.
func (r *StandardEventRegistry) Domain() string { return r.domain }

// Codec returns the registry's codec.
func (r *StandardEventRegistry) Codec() Codec { return r.codec }

// RegisterEvent registers the Go type of each event under its bare type name
// (for example "Deposited" for main.Deposited or *main.Deposited). A type
// the codec cannot store faithfully (see TypeChecker) is refused with
// ErrUnencodableEvent.
// Registering the same type under the same name again is a no-op. The
// registration is all or nothing: on error, none of events is registered.
func (r *StandardEventRegistry) RegisterEvent(events ...Event) error {
	entries := make([]registryEntry, 0, len(events))
	for _, e := range events {
		t, err := eventType(e)
		if err != nil {
			return err
		}
		entries = append(entries, registryEntry{t.Name(), t})
	}
	return r.register(entries)
}

// RegisterEventAs registers event's Go type under name, so that a Go type can
// be renamed or moved without changing what is stored. A Go type has one name:
// registering it under a second name is an error.
func (r *StandardEventRegistry) RegisterEventAs(name string, event Event) error {
	t, err := eventType(event)
	if err != nil {
		return err
	}
	return r.register([]registryEntry{{name, t}})
}

type registryEntry struct {
	name string
	t    reflect.Type
}

func eventType(e Event) (reflect.Type, error) {
	t := reflect.TypeOf(e)
	if t == nil {
		return nil, fmt.Errorf("%w: nil event", ErrInvalidEventName)
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Name() == "" {
		return nil, fmt.Errorf("%w: event type %s has no name; use a named type", ErrInvalidEventName, t)
	}
	return t, nil
}

func (r *StandardEventRegistry) register(entries []registryEntry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.tables.Load()
	next := &registryTables{byName: make(map[string]reflect.Type, len(old.byName)+len(entries)), byType: make(map[reflect.Type]string, len(old.byType)+len(entries))}
	for k, v := range old.byName {
		next.byName[k] = v
	}
	for k, v := range old.byType {
		next.byType[k] = v
	}
	for _, e := range entries {
		if err := ValidEventName(e.name); err != nil {
			return err
		}
		if tc, ok := r.codec.(TypeChecker); ok {
			if err := tc.CheckType(e.t); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrUnencodableEvent, e.t, err)
			}
		}
		if r.upcastFrom(e.name) {
			return fmt.Errorf("%w: %q is upcast to another name (RegisterUpcasters), so it cannot name %s", ErrDuplicateEventName, e.name, e.t)
		}
		if t, ok := next.byName[e.name]; ok && t != e.t {
			return fmt.Errorf("%w: %q is %s, cannot also be %s", ErrDuplicateEventName, e.name, t, e.t)
		}
		if n, ok := next.byType[e.t]; ok && n != e.name {
			return fmt.Errorf("%w: %s is already registered as %q, cannot also be %q", ErrDuplicateEventName, e.t, n, e.name)
		}
		next.byName[e.name] = e.t
		next.byType[e.t] = e.name
	}
	if len(next.byName) <= maxFew {
		for n, t := range next.byName {
			next.few = append(next.few, registryEntry{name: n, t: t})
		}
	}
	r.tables.Store(next)
	return nil
}

// Name returns the stored name of t, or of the type t points to.
func (r *StandardEventRegistry) Name(t reflect.Type) (string, bool) {
	if t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tables := r.tables.Load()
	if tables.few != nil {
		for i := range tables.few {
			if tables.few[i].t == t {
				return tables.few[i].name, true
			}
		}
		return "", false
	}
	n, ok := tables.byType[t]
	return n, ok
}

// Type returns the Go type registered under name.
func (r *StandardEventRegistry) Type(name string) (reflect.Type, bool) {
	tables := r.tables.Load()
	if tables.few != nil {
		for i := range tables.few {
			if tables.few[i].name == name {
				return tables.few[i].t, true
			}
		}
		return nil, false
	}
	t, ok := tables.byName[name]
	return t, ok
}

// Names returns every registered name, in no particular order.
func (r *StandardEventRegistry) Names() []string {
	tables := r.tables.Load()
	out := make([]string, 0, len(tables.byName))
	for n := range tables.byName {
		out = append(out, n)
	}
	return out
}
