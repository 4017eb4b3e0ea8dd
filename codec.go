package eventsourcing

import (
	"encoding"
	"encoding/json"
	"errors"
	"reflect"
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

// Marshal encodes v with encoding/json.
func (JSONCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes data into v with encoding/json.
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

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
