package eventsourcing

import (
	"encoding"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
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
	t := rv.Type()
	if ok, found := ownAppenders.Load(t); found {
		return ok.(bool)
	}
	ok, _ := ownAppenders.LoadOrStore(t, ownAppender(t))
	return ok.(bool)
}

// ownAppenders caches ownAppender by type.
var ownAppenders sync.Map // reflect.Type -> bool

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
	st := indirect(t)
	if st.Kind() != reflect.Struct {
		return true
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
		if _, ok := m.MethodByName("AppendJSON"); ok {
			return false
		}
	}
	return true
}

// Unmarshal decodes data into v with encoding/json.
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

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
// when the struct's fields or tags change until it is rerun. A hand-written
// AppendJSON must honour the same contract and is best tested against
// json.Marshal over many values; AppendJSONString encodes a string field.
// JSONCodec ignores AppendJSON on a type that also has a MarshalJSON or
// MarshalText method encoding/json would call, and on a struct type with an
// embedded field that has an AppendJSON method: embedding an event in
// another struct promotes its AppendJSON, which knows nothing of the other
// fields.
type JSONAppender interface {
	AppendJSON(dst []byte) []byte
}

// AppendJSONString appends s to dst as encoding/json encodes a string with
// its default HTML escaping: quoted, with '"', '\\' and control characters
// escaped, '<', '>' and '&' written as \u003c, \u003e and \u0026, U+2028 and
// U+2029 as \u2028 and \u2029, and each byte of invalid UTF-8 replaced by
// \ufffd. The AppendJSON methods cmd/esgen writes call it for string fields.
func AppendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !jsonPlain[c] {
				return appendJSONStringSlow(dst, s)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return appendJSONStringSlow(dst, s)
		}
		i += size
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendJSONStringSlow is AppendJSONString for a string that needs escaping:
// encoding/json itself encodes it.
func appendJSONStringSlow(dst []byte, s string) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // encoding/json encodes every string
	}
	return append(dst, b...)
}

// jsonPlain holds the ASCII bytes encoding/json copies into a string as they
// are when it escapes HTML: printable, except '"', '\\', '<', '>' and '&'.
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = !strings.ContainsRune(`"\<>&`, c)
	}
	return t
}()

var (
	typeJSONMarshaler = reflect.TypeFor[json.Marshaler]()
	typeTextMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
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
