package eventsourcing

import "encoding/json"

// Codec turns events and aggregate state into bytes and back. Unmarshal is
// always given a pointer to a value of the registered Go type, so a codec
// decodes straight into typed fields. Implementations must be safe for
// concurrent use.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
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
