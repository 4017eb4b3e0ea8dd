package eventsourcing

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
)

// ErrInvalidUpcaster reports an upcaster that RegisterUpcasters refuses: an
// invalid name, a step from a name that is registered to a Go type (data
// stored under it is already in that type's current form), two steps from
// one name, or a chain that loops.
var ErrInvalidUpcaster = errors.New("eventsourcing: invalid upcaster")

// UpcastFunc rewrites the encoded data of a stored event from an older form
// into the next one: it receives the bytes as the registry's codec wrote
// them (JSON with the default JSONCodec) and returns the bytes of the newer
// form. It must not modify data, which may belong to the store, and must be
// safe for concurrent use. An error fails the load with a *RecordError
// naming the stream and sequence; nothing is changed in the store.
type UpcastFunc func(data []byte) ([]byte, error)

// Upcaster is one step of a chain that turns events stored in an older form
// into the current one: events stored under the type name From are read as
// events named To, their data rewritten by Func (nil keeps the bytes, which
// is a plain rename of the event type). To is either the name of a
// registered Go type or the From of another step, so steps compose: a
// chain v1 -> v2 -> v3 is two steps, and an old name can join a chain of
// versions.
//
// The names are stored type names. Schema versions are names too (see
// VersionedName): version 1 of an event is its plain name, so events stored
// before it had versions are version 1.
type Upcaster struct {
	From string
	To   string
	Func UpcastFunc
}

// VersionedName returns the stored type name of schema version v of the
// event named name: name itself for version 1 (or less), name+"@v"+v from
// version 2 on. Register the current version of an event under its
// versioned name (RegisterEventAs) and an Upcaster from each older version
// to the next:
//
//	registry.RegisterEventAs(es.VersionedName("Deposited", 2), Deposited{})
//	registry.RegisterUpcasters(es.Upcaster{From: "Deposited", To: es.VersionedName("Deposited", 2), Func: toCents})
//
// Because a version is part of the stored name, whatever reads stored names
// (a subscriber filtering on Record.EventType, a query) sees it; decode
// records with DecodeEvent to get the current form whatever the version.
func VersionedName(name string, version int) string {
	if version <= 1 {
		return name
	}
	return name + "@v" + strconv.Itoa(version)
}

// EventUpcaster may be implemented by an EventRegistry that can read
// events stored in older forms (see Upcaster); StandardEventRegistry does.
// Upcast returns the current type name and data of an event stored as
// eventType with data, applying every step of the chain in order, or
// eventType and data unchanged when no step starts at eventType. It must
// not modify data, and must be safe for concurrent use.
//
// An aggregate calls it, before decoding, for every loaded record whose
// type name the registry's Type does not know; DecodeEvent does the same
// for code that reads records itself.
type EventUpcaster interface {
	Upcast(eventType string, data []byte) (string, []byte, error)
}

// upcastSteps maps each From name to its step. It is replaced, never
// changed, on registration.
type upcastSteps map[string]Upcaster

// RegisterUpcasters adds steps to the registry's upcasting chains. Each
// step's names must be valid event names (ValidEventName) and differ;
// From must not be a name registered to a Go type, nor the From of
// another step; and no chain may loop. Otherwise it fails with an error
// matching ErrInvalidUpcaster (or ErrInvalidEventName) and registers none
// of ups. Whether a chain ends at a registered name is checked when an
// event is loaded, so steps and types may be registered in any order; a
// chain that ends at an unknown name loads as an unknown event type.
//
// Once From has a step, registering a Go type under the name From fails.
// Safe for concurrent use with loads: a load sees the chains either before
// or after a registration, never half of it.
func (r *StandardEventRegistry) RegisterUpcasters(ups ...Upcaster) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := r.tables.Load().byName
	old := r.upcasts.Load()
	next := make(upcastSteps, len(ups))
	if old != nil {
		next = make(upcastSteps, len(*old)+len(ups))
		for k, v := range *old {
			next[k] = v
		}
	}
	for _, u := range ups {
		if err := ValidEventName(u.From); err != nil {
			return fmt.Errorf("%w: upcaster from %q: %w", ErrInvalidUpcaster, u.From, err)
		}
		if err := ValidEventName(u.To); err != nil {
			return fmt.Errorf("%w: upcaster from %q to %q: %w", ErrInvalidUpcaster, u.From, u.To, err)
		}
		if u.From == u.To {
			return fmt.Errorf("%w: upcaster from %q to itself", ErrInvalidUpcaster, u.From)
		}
		if t, ok := names[u.From]; ok {
			return fmt.Errorf("%w: %q is the registered name of %s, whose stored events are already in their current form",
				ErrInvalidUpcaster, u.From, t)
		}
		if prev, ok := next[u.From]; ok {
			return fmt.Errorf("%w: two upcasters from %q (to %q and to %q)", ErrInvalidUpcaster, u.From, prev.To, u.To)
		}
		next[u.From] = u
	}
	for _, u := range ups {
		name := u.To
		for range len(next) {
			step, ok := next[name]
			if !ok {
				break
			}
			if step.To == u.From || step.From == u.From {
				return fmt.Errorf("%w: the chain from %q loops back to it", ErrInvalidUpcaster, u.From)
			}
			name = step.To
		}
	}
	r.upcasts.Store(&next)
	return nil
}

// upcastFrom reports whether name starts an upcasting chain. The caller
// holds r.mu.
func (r *StandardEventRegistry) upcastFrom(name string) bool {
	steps := r.upcasts.Load()
	if steps == nil {
		return false
	}
	_, ok := (*steps)[name]
	return ok
}

// Upcast returns the current form of an event stored under the type name
// eventType with data: it applies each registered step whose From is the
// name reached so far, in order, and returns the last name and data. A
// name that starts no chain is returned unchanged with data. An error of a
// step's Func is returned wrapped, naming the step.
func (r *StandardEventRegistry) Upcast(eventType string, data []byte) (string, []byte, error) {
	steps := r.upcasts.Load()
	if steps == nil {
		return eventType, data, nil
	}
	for range len(*steps) { // registration refuses loops, so a chain has at most this many steps
		u, ok := (*steps)[eventType]
		if !ok {
			break
		}
		if u.Func != nil {
			out, err := u.Func(data)
			if err != nil {
				return eventType, data, fmt.Errorf("upcasting %q to %q: %w", u.From, u.To, err)
			}
			data = out
		}
		eventType = u.To
	}
	return eventType, data, nil
}

// upcast rewrites rec into the current form of its event when the
// registry knows no Go type for its name but can upcast it, and returns
// the Go type of that form.
func (b *AggregateBase) upcast(rec *Record) (reflect.Type, bool, error) {
	u, ok := b.kind.registry.(EventUpcaster)
	if !ok {
		return nil, false, nil
	}
	name, data, err := u.Upcast(rec.EventType, rec.Data)
	if err != nil {
		return nil, false, &RecordError{Stream: b.run.stream, Sequence: rec.Sequence, Type: rec.EventType, Err: err}
	}
	rec.EventType, rec.Data = name, data
	t, ok := b.kind.registry.Type(name)
	return t, ok, nil
}

// DecodeEvent decodes a stored record into a value of its event's
// registered Go type (not a pointer), as an aggregate does when it loads
// the record: if the registry does not know the record's type name but
// implements EventUpcaster, the record is upcast to its current form
// first. Use it where records are read without an aggregate (relays,
// projections, tools). It fails with an *UnknownEventTypeError for a name
// the registry cannot resolve, and a *RecordError (matching
// ErrCorruptStream) for data that does not upcast or decode.
func DecodeEvent(registry EventRegistry, rec Record) (Event, error) {
	if registry == nil {
		return nil, fmt.Errorf("%w: DecodeEvent needs a registry", ErrNotInitialized)
	}
	t, ok := registry.Type(rec.EventType)
	data := rec.Data
	if !ok {
		if u, can := registry.(EventUpcaster); can {
			name, out, err := u.Upcast(rec.EventType, rec.Data)
			if err != nil {
				return nil, &RecordError{Stream: rec.Stream, Sequence: rec.Sequence, Type: rec.EventType, Err: err}
			}
			t, ok = registry.Type(name)
			rec.EventType, data = name, out
		}
		if !ok {
			return nil, &UnknownEventTypeError{Type: rec.EventType, Stream: rec.Stream, Sequence: rec.Sequence}
		}
	}
	ptr := reflect.New(t)
	if err := registry.Codec().Unmarshal(data, ptr.Interface()); err != nil {
		return nil, &RecordError{Stream: rec.Stream, Sequence: rec.Sequence, Type: rec.EventType, Err: err}
	}
	return ptr.Elem().Interface(), nil
}

// UpcastJSON returns an UpcastFunc for events encoded as JSON objects (by
// JSONCodec): fn receives the object's fields, each as its raw JSON, and
// edits them in place; the result is encoded again. Renaming a field is
//
//	fields["Cents"] = fields["Amount"]
//	delete(fields, "Amount")
//
// and a new field with a default is fields["Currency"] = json.RawMessage(`"EUR"`).
// Raw values keep numbers exactly as stored (no float64 rounding). Data
// that is not a JSON object fails the upcast.
func UpcastJSON(fn func(fields map[string]json.RawMessage) error) UpcastFunc {
	return func(data []byte) ([]byte, error) {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(data, &fields); err != nil {
			return nil, fmt.Errorf("not a JSON object: %w", err)
		}
		if fields == nil { // the JSON null
			return nil, errors.New("not a JSON object: null")
		}
		if err := fn(fields); err != nil {
			return nil, err
		}
		return json.Marshal(fields)
	}
}
