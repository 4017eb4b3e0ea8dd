package eventsourcing_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/esjson"
	"github.com/aggregatekit/eventsourcing/internal/dispatchtest"
)

// counted appends as json.Marshal encodes it, and counts the calls.
type counted struct {
	N int64
	S string `json:"s,omitempty"`
}

var countedCalls atomic.Int64

func (c counted) AppendJSON(dst []byte) []byte {
	countedCalls.Add(1)
	dst = append(dst, `{"N":`...)
	dst = strconv.AppendInt(dst, c.N, 10)
	if c.S != "" {
		dst = append(dst, `,"s":`...)
		dst = esjson.AppendString(dst, c.S)
	}
	return append(dst, '}')
}

// wrapped embeds counted, whose AppendJSON it gets, promoted.
type wrapped struct {
	counted
	Extra string
}

// marshals has both AppendJSON and MarshalJSON; encoding/json calls the
// latter.
type marshals struct{ counted }

func (m marshals) MarshalJSON() ([]byte, error) { return []byte(`"marshals"`), nil }

// JSONCodec.Marshal calls AppendJSON for a value or a pointer, and gets the
// bytes of encoding/json; it leaves it to encoding/json for a nil pointer, a
// type with MarshalJSON and a promoted AppendJSON.
func TestJSONCodecAppender(t *testing.T) {
	c := es.JSONCodec{}
	for _, tc := range []struct {
		v     any
		calls int
	}{
		{counted{N: -5, S: "a<b"}, 1},
		{&counted{N: 1 << 62}, 1},
		{(*counted)(nil), 0},
		{wrapped{counted{N: 1}, "x"}, 0},
		{&wrapped{counted{N: 1}, "x"}, 0},
		{marshals{counted{N: 2}}, 0},
		{dispatchtest.Deposited{Amount: -1, Reference: "ref\u2028<&>\xff"}, 0},
		{&dispatchtest.Withdrawn{Amount: 1 << 40, Reference: "r"}, 0},
	} {
		countedCalls.Store(0)
		got, err := c.Marshal(tc.v)
		want, werr := json.Marshal(tc.v)
		if err != nil || werr != nil || !bytes.Equal(got, want) {
			t.Errorf("%#v: JSONCodec %s, %v; encoding/json %s, %v", tc.v, got, err, want, werr)
		}
		if n := countedCalls.Load(); n != int64(tc.calls) {
			t.Errorf("%#v: %d AppendJSON calls, want %d", tc.v, n, tc.calls)
		}
	}
	// The generated AppendJSON of the dispatchtest events is what the codec
	// uses: one allocation, the bytes returned.
	var e es.Event = dispatchtest.Deposited{Amount: 12, Reference: "ref-12"}
	if _, ok := e.(es.JSONAppender); !ok {
		t.Fatal("dispatchtest.Deposited has no AppendJSON: regenerate internal/dispatchtest")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = c.Marshal(e) }); n != 1 {
		t.Errorf("%v allocations, want 1", n)
	}
}

var countedDecodes atomic.Int64

// DecodeJSON decodes as json.Unmarshal does, and counts the calls.
func (c *counted) DecodeJSON(data []byte) error {
	countedDecodes.Add(1)
	x, r := *c, esjson.ReadObject(data)
	for r.Next() {
		switch string(r.Key()) {
		case "N":
			x.N = r.Int(64)
		case "s":
			x.S = r.Str()
		default:
			r.Fail()
		}
	}
	if !r.Done() {
		return r.Unmarshal(c)
	}
	*c = x
	return nil
}

// unmarshals has both DecodeJSON and UnmarshalJSON; encoding/json calls
// the latter.
type unmarshals struct{ N int64 }

func (u *unmarshals) DecodeJSON([]byte) error    { countedDecodes.Add(1); return nil }
func (u *unmarshals) UnmarshalJSON([]byte) error { u.N = 99; return nil }

// text has both DecodeJSON and UnmarshalText; encoding/json calls the
// latter for a JSON string.
type text struct{ N int64 }

func (t *text) DecodeJSON([]byte) error    { countedDecodes.Add(1); return nil }
func (t *text) UnmarshalText([]byte) error { t.N = 98; return nil }

// JSONCodec.Unmarshal calls DecodeJSON for a non-nil pointer, and leaves
// the value as encoding/json does; it leaves it to encoding/json for a nil
// pointer, a type with UnmarshalJSON or UnmarshalText and a promoted
// DecodeJSON.
func TestJSONCodecDecoder(t *testing.T) {
	for _, tc := range []struct {
		v     any // a pointer to the value to decode into, or nil
		data  string
		calls int
	}{
		{&counted{N: 1, S: "old"}, `{"N":-5,"s":"a<b"}`, 1},
		{&counted{N: 1, S: "old"}, ` { "s" : "x" } `, 1},
		{&counted{N: 1, S: "old"}, `{"N":1.5,"s":"x"}`, 1}, // encoding/json, through DecodeJSON
		{&counted{N: 1, S: "old"}, `{"n":2}`, 1},
		{(*counted)(nil), `{"N":1}`, 0},
		{&wrapped{counted{N: 1}, "x"}, `{"N":2,"Extra":"y"}`, 0},
		{&unmarshals{N: 1}, `{"N":2}`, 0},
		{&text{N: 1}, `"2"`, 0},
		{&dispatchtest.Deposited{Amount: 1}, `{"Amount":-3,"Reference":"r"}`, 0},
	} {
		want := clone(tc.v)
		werr := json.Unmarshal([]byte(tc.data), want)
		got := clone(tc.v)
		countedDecodes.Store(0)
		err := (es.JSONCodec{}).Unmarshal([]byte(tc.data), got)
		if (err != nil) != (werr != nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%T %s: JSONCodec %+v, %v; encoding/json %+v, %v", tc.v, tc.data, got, err, want, werr)
		}
		if n := countedDecodes.Load(); n != int64(tc.calls) {
			t.Errorf("%T %s: %d DecodeJSON calls, want %d", tc.v, tc.data, n, tc.calls)
		}
	}
	var c counted
	if err := (es.JSONCodec{}).Unmarshal([]byte(`{"N":1}`), c); err == nil {
		t.Error("JSONCodec decoded into a struct, not a pointer")
	}
}

// clone returns a pointer to a copy of what p points to, or p if it is nil.
func clone(p any) any {
	v := reflect.ValueOf(p)
	if v.IsNil() {
		return p
	}
	c := reflect.New(v.Type().Elem())
	c.Elem().Set(v.Elem())
	return c.Interface()
}

// JSONCodec decodes a generated event of internal/dispatchtest through its
// DecodeJSON: one allocation, the string, where encoding/json takes more.
func TestJSONCodecDecodeJSONAllocations(t *testing.T) {
	data := []byte(`{"Amount":12,"Reference":"ref-12345"}`)
	e := new(dispatchtest.Deposited)
	if n := testing.AllocsPerRun(100, func() {
		if err := (es.JSONCodec{}).Unmarshal(data, e); err != nil {
			t.Fatal(err)
		}
	}); n != 1 || *e != (dispatchtest.Deposited{Amount: 12, Reference: "ref-12345"}) {
		t.Errorf("%+v, %v allocations, want 1", *e, n)
	}
}

// many has AppendJSON, and manyMarshals MarshalJSON too, which JSONCodec
// calls instead: with their instances (kinds), more types than JSONCodec's
// cache of them has slots, so that some share one.
type (
	many[T any]         struct{ N int }
	manyMarshals[T any] struct{ N int }
)

func (m many[T]) AppendJSON(dst []byte) []byte {
	return append(strconv.AppendInt(append(dst, `{"N":`...), int64(m.N), 10), '}')
}
func (m manyMarshals[T]) AppendJSON(dst []byte) []byte { return append(dst, `"appended"`...) }
func (m manyMarshals[T]) MarshalJSON() ([]byte, error) { return []byte(`"marshalled"`), nil }

func kinds[T any]() []any {
	return []any{many[T]{}, manyMarshals[T]{}, many[*T]{}, manyMarshals[*T]{}, many[[]T]{}, manyMarshals[[]T]{},
		many[[1]T]{}, manyMarshals[[1]T]{}}
}

// JSONCodec's cache of which types' AppendJSON and DecodeJSON it may call
// gives each type its own answer, also when goroutines share it (run with
// -race).
func TestJSONCodecTypeCache(t *testing.T) {
	decoded := []any{&counted{N: 1}, &wrapped{counted{N: 1}, "x"}, &unmarshals{N: 1}, &text{N: 1},
		&dispatchtest.Deposited{Amount: 1}, &dispatchtest.Withdrawn{Amount: 1}}
	encoded := slices.Concat(kinds[int](), kinds[int8](), kinds[int16](), kinds[int32](), kinds[int64](),
		kinds[uint](), kinds[uint8](), kinds[uint16](), kinds[uint32](), kinds[string]())
	data := []byte(`{"N":2,"Extra":"y","Amount":3}`)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				v := decoded[(g+i)%len(decoded)]
				got, want := clone(v), clone(v)
				err := (es.JSONCodec{}).Unmarshal(data, got)
				werr := json.Unmarshal(data, want)
				if (err != nil) != (werr != nil) || !reflect.DeepEqual(got, want) {
					t.Errorf("%T: JSONCodec %+v, %v; encoding/json %+v, %v", v, got, err, want, werr)
					return
				}
				e := encoded[(g*7+i)%len(encoded)]
				b, err := (es.JSONCodec{}).Marshal(e)
				wb, werr := json.Marshal(e)
				if err != nil || werr != nil || !bytes.Equal(b, wb) {
					t.Errorf("%T: JSONCodec %s, %v; encoding/json %s, %v", e, b, err, wb, werr)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkJSONCodecMarshal encodes a small event with encoding/json and
// through JSONCodec, which uses its generated AppendJSON.
func BenchmarkJSONCodecMarshal(b *testing.B) {
	var e es.Event = dispatchtest.Deposited{Amount: 1, Reference: "ref-00000001"}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("JSONCodec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (es.JSONCodec{}).Marshal(e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkJSONCodecUnmarshal decodes a small event with encoding/json and
// through JSONCodec, which uses its generated DecodeJSON.
func BenchmarkJSONCodecUnmarshal(b *testing.B) {
	data := []byte(`{"Amount":1,"Reference":"ref-00000001"}`)
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e dispatchtest.Deposited
			if err := json.Unmarshal(data, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("JSONCodec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e dispatchtest.Deposited
			if err := (es.JSONCodec{}).Unmarshal(data, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeJSON", func(b *testing.B) {
		b.ReportAllocs()
		e := new(dispatchtest.Deposited)
		for b.Loop() {
			if err := e.DecodeJSON(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
