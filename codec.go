package eventsourcing

import (
	"encoding"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
)

// Codec turns events and aggregate state into bytes and back. Unmarshal is
// always given a pointer to a value of the registered Go type, so a codec
// decodes straight into typed fields. The slice Marshal returns belongs to
// the caller, which stores it as it is (a backend may keep it), so a codec
// must not reuse it. Implementations must be safe for concurrent use.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// TypeChecker may be implemented by a Codec to refuse, at registration, an
// event type it would not store faithfully. StandardEventRegistry calls it
// for every type registered and wraps its error in ErrUnencodableEvent.
type TypeChecker interface {
	CheckType(t reflect.Type) error
}

// JSONCodec is the default Codec, built on encoding/json. Because it decodes
// into typed values, int64 and uint64 keep full precision and time.Time keeps
// nanoseconds. Like encoding/json it sees exported fields only (embedded
// structs included); an aggregate with unexported state implements
// json.Marshaler and json.Unmarshaler to include it. The zero value is ready to
// use and safe for concurrent use.
type JSONCodec struct{}

// Marshal encodes v with encoding/json, or with v's AppendJSON method when v
// (as passed: a value or a pointer) implements JSONAppender and is not a nil
// pointer, unless its type also has a MarshalJSON or MarshalText method, or
// is a struct embedding a field that has an AppendJSON method (see
// JSONAppender). Either way the bytes are the same.
func (JSONCodec) Marshal(v any) ([]byte, error) {
	if a, ok := v.(JSONAppender); ok && appends(v) {
		return a.AppendJSON(nil), nil
	}
	return json.Marshal(v)
}

// appends reports whether JSONCodec calls the AppendJSON method of v.
func appends(v any) bool {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && rv.IsNil() {
		return false // encoding/json writes null
	}
	return ownAppenders.of(rv.Type())
}

// ownAppenders caches ownAppender.
var ownAppenders = typeMemo{fn: ownAppender}

// ownAppender reports whether the AppendJSON method of t, a type that has
// one, may stand for encoding/json: t has no MarshalJSON or MarshalText
// method (encoding/json would call it; this also keeps a generated AppendJSON
// from outliving one added later), and is not a struct with an embedded
// field that has an AppendJSON method, which may be the one t has, promoted,
// leaving out the other fields of t.
func ownAppender(t reflect.Type) bool {
	if t.Implements(typeJSONMarshaler) || t.Implements(typeTextMarshaler) {
		return false
	}
	return !embedsMethod(t, "AppendJSON")
}

// embedsMethod reports whether t, or the type t points to, is a struct with
// an embedded field that has the method name (on its pointer, if it is not
// a pointer or an interface itself): a method t may have only promoted.
func embedsMethod(t reflect.Type, name string) bool {
	st := indirect(t)
	if st.Kind() != reflect.Struct {
		return false
	}
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		if !f.Anonymous {
			continue
		}
		m := f.Type
		if m.Kind() != reflect.Pointer && m.Kind() != reflect.Interface {
			m = reflect.PointerTo(m)
		}
		if _, ok := m.MethodByName(name); ok {
			return true
		}
	}
	return false
}

// Unmarshal decodes data into v with encoding/json, or with v's DecodeJSON
// method when v implements JSONDecoder and is a non-nil pointer, unless its
// type also has an UnmarshalJSON or UnmarshalText method, or is a pointer to
// a struct embedding a field that has a DecodeJSON method (see
// JSONDecoder). Either way *v ends up the same, and so does the error.
func (JSONCodec) Unmarshal(data []byte, v any) error {
	if d, ok := v.(JSONDecoder); ok && decodes(v) {
		return d.DecodeJSON(data)
	}
	return json.Unmarshal(data, v)
}

// decodes reports whether JSONCodec calls the DecodeJSON method of v.
func decodes(v any) bool {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return false // encoding/json fails
	}
	return ownDecoders.of(reflect.TypeOf(v))
}

// ownDecoders caches ownDecoder.
var ownDecoders = typeMemo{fn: ownDecoder}

// typeMemo caches a function of types, for JSONCodec to call once per
// event. A sync.Map alone hashes the type, an interface, on every lookup,
// which showed in the profile of a rebuild (a tenth of the time of loading
// events with DecodeJSON); in front of it, a direct-mapped array of the
// types seen last, indexed and compared by the address of the type's
// descriptor, takes about half as long.
type typeMemo struct {
	fn     func(reflect.Type) bool
	recent [64]atomic.Pointer[typeResult]
	all    sync.Map // reflect.Type -> *typeResult
}

// typeResult is fn of t, whose descriptor is at addr. Since it keeps t
// alive, no other type can have that address.
type typeResult struct {
	t    reflect.Type
	addr uintptr
	ok   bool
}

// of returns m.fn(t), computed once.
func (m *typeMemo) of(t reflect.Type) bool {
	addr := reflect.ValueOf(t).Pointer()
	slot := &m.recent[addr>>4%uintptr(len(m.recent))]
	if r := slot.Load(); r != nil && r.addr == addr {
		return r.ok
	}
	r, found := m.all.Load(t)
	if !found {
		r, _ = m.all.LoadOrStore(t, &typeResult{t: t, addr: addr, ok: m.fn(t)})
	}
	slot.Store(r.(*typeResult))
	return r.(*typeResult).ok
}

// ownDecoder reports whether the DecodeJSON method of t, a pointer type that
// has one, may stand for encoding/json: t has no UnmarshalJSON or
// UnmarshalText method (encoding/json would call it), and does not point to
// a struct with an embedded field that has a DecodeJSON method, which may be
// the one t has, promoted, leaving the other fields of the struct alone.
func ownDecoder(t reflect.Type) bool {
	if t.Implements(typeJSONUnmarshaler) || t.Implements(typeTextUnmarshaler) {
		return false
	}
	return !embedsMethod(t, "DecodeJSON")
}

// JSONAppender is implemented by an event type that encodes itself for
// JSONCodec without reflection. AppendJSON appends to dst exactly the bytes
// json.Marshal returns for the value it is called on, and returns the
// extended slice: the same keys in the same order, the same escaping (HTML
// characters included), the same omitted fields, no spaces and no newline.
// It must not keep dst. JSONCodec.Marshal calls it with a nil dst and stores
// the result as it is, so a difference from encoding/json is a difference in
// the stored bytes, and another codec, which ignores AppendJSON, would store
// other bytes than JSONCodec for the same event.
//
// cmd/esgen writes AppendJSON, with a value receiver, for the events of an
// aggregate whose encoding it can reproduce exactly from the source alone
// (struct fields of the predeclared string, bool and integer types, tags
// with a name, "-" and omitempty only), and a compile-time check that fails
// when the struct's fields or tags change until it is rerun; those methods
// call package github.com/aggregatekit/eventsourcing/esjson. A hand-written
// AppendJSON must honour the same contract and is best tested against
// json.Marshal over many values; it may use esjson too (esjson.AppendString
// encodes a string field). JSONCodec ignores AppendJSON on a type that also
// has a MarshalJSON or MarshalText method encoding/json would call, and on a
// struct type with an embedded field that has an AppendJSON method:
// embedding an event in another struct promotes its AppendJSON, which knows
// nothing of the other fields.
type JSONAppender interface {
	AppendJSON(dst []byte) []byte
}

// JSONDecoder is implemented, on the pointer, by an event type that decodes
// itself for JSONCodec without reflection. DecodeJSON leaves the value its
// receiver points to exactly as json.Unmarshal(data, receiver) would: the
// same fields set to the same values, every other field as it was (when
// decoding into a struct, encoding/json keeps the fields the data does not
// mention); and it returns an error exactly when json.Unmarshal would (the
// error value may be json.Unmarshal's own). JSONCodec.Unmarshal calls it
// with a non-nil pointer, usually to a new value, so a difference from
// encoding/json is a difference in the events an aggregate replays, and in
// what another codec, which ignores DecodeJSON, would decode.
//
// cmd/esgen writes DecodeJSON for the events it writes AppendJSON for: a
// fast path for the objects such events are stored as (esjson.ObjectReader,
// of package github.com/aggregatekit/eventsourcing/esjson), falling back to
// json.Unmarshal for anything else. A hand-written DecodeJSON must honour
// the same contract, may use esjson too, and is best tested against
// json.Unmarshal over many inputs, valid and not. JSONCodec ignores
// DecodeJSON on a type that also has an UnmarshalJSON or UnmarshalText
// method encoding/json would call, and on a pointer to a struct type with an
// embedded field that has a DecodeJSON method: embedding an event in another
// struct promotes its DecodeJSON, which knows nothing of the other fields.
type JSONDecoder interface {
	DecodeJSON(data []byte) error
}

var (
	typeJSONMarshaler   = reflect.TypeFor[json.Marshaler]()
	typeTextMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
	typeJSONUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	typeTextUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// CheckType refuses a struct type that has fields but none that
// encoding/json sees (all unexported, or all tagged `json:"-"`), unless it
// marshals itself: every value of it would be stored as {} and read back as
// the zero value. A struct with no fields at all (an event that carries no
// data) is fine.
func (JSONCodec) CheckType(t reflect.Type) error {
	if t.Kind() != reflect.Struct || t.NumField() == 0 {
		return nil
	}
	if t.Implements(typeJSONMarshaler) || reflect.PointerTo(t).Implements(typeJSONMarshaler) ||
		t.Implements(typeTextMarshaler) || reflect.PointerTo(t).Implements(typeTextMarshaler) {
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("json") == "-" {
			continue
		}
		if f.IsExported() || (f.Anonymous && indirect(f.Type).Kind() == reflect.Struct) {
			return nil
		}
	}
	return errors.New("it has fields but none that encoding/json stores (export them, or implement json.Marshaler)")
}

func indirect(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}
