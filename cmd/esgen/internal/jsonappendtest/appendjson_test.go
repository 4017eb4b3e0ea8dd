package jsonappendtest

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
)

// eligible are the events esgen writes AppendJSON for, with their hidden
// fields set (encoding/json leaves them out, so must AppendJSON).
var eligible = []any{
	Plain{}, Kinds{}, OmitAll{}, Mixed{}, Nothing{}, Pointed{},
	Tagged{Skipped: 1.5, secret: 2.5, hidden: map[string]time.Time{"a": {}}},
	OnlyHidden{x: 7, Y: "y"},
}

// ineligible are the events it leaves to encoding/json (Embedded has the
// AppendJSON of Plain, promoted).
var ineligible = []any{
	Float{}, Time{}, Named{}, Pointer{}, Slice{}, Map{}, StringOpt{}, OmitZero{},
	UnknownOpt{}, MarshalJSON{}, MarshalText{}, UnmarshalJSON{}, UnmarshalText{}, Duplicate{}, Generic[int]{},
	NotStruct(""), FieldClash{}, DecodeClash{},
}

func TestWhichEventsAppend(t *testing.T) {
	for _, v := range eligible {
		if _, ok := v.(es.JSONAppender); !ok {
			t.Errorf("%T has no AppendJSON", v)
		}
		if _, ok := reflect.New(reflect.TypeOf(v)).Interface().(es.JSONAppender); !ok {
			t.Errorf("*%T has no AppendJSON", v)
		}
	}
	for _, v := range ineligible {
		if _, ok := v.(es.JSONAppender); ok {
			t.Errorf("%T has an AppendJSON", v)
		}
	}
}

// JSONCodec encodes the events without a generated AppendJSON as
// encoding/json does: it uses a hand-written AppendJSON, and leaves out a
// promoted one.
func TestCodecWithoutGeneratedAppendJSON(t *testing.T) {
	for _, v := range append(ineligible, Embedded{}, HandWritten{}) {
		for i, s := range trickyStrings {
			v := fill(v, []string{s}, trickyInts[i%len(trickyInts):], trickyUints[i%len(trickyUints):], []bool{i%2 == 0}, 0)
			p := reflect.New(reflect.TypeOf(v))
			p.Elem().Set(reflect.ValueOf(v))
			for _, x := range []any{v, p.Interface()} {
				want, err := json.Marshal(x) // *MarshalJSON differs from MarshalJSON
				if err != nil {
					t.Fatal(err)
				}
				if got, err := (es.JSONCodec{}).Marshal(x); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%#v\nJSONCodec.Marshal: %s, %v\njson.Marshal: %s", x, got, err, want)
				}
			}
		}
	}
	e := Embedded{Plain: Plain{Amount: 1}, Extra: "x"}
	if got := string(e.AppendJSON(nil)); got != `{"Amount":1,"Reference":""}` {
		t.Fatalf("Embedded.AppendJSON (promoted) is %s", got)
	}
}

// Strings encoding/json escapes, or copies though they look as if it might
// not.
var trickyStrings = []string{
	"", "a", "ref-1", `"`, `\`, `a"b\c`, "<", ">", "&", "<script>&amp;</script>",
	"\x00", "\x01\x1f", "\b\f\n\r\t", "\x7f", "tab\there", " ",
	"\u2028", "\u2029", "a\u2028b\u2029c", "\u2027\u202a", "\u00e9t\u00e9", "\u65e5\u672c", "\U0001F600",
	"\xff", "\xc3", "a\xc3(b", "\xed\xa0\x80", "\xef\xbf\xbd", "\xf4\x90\x80\x80", "\xe2\x80", "\xe2\x80\xa8\xe2",
	"\xc0\xaf", strings.Repeat("x", 300), strings.Repeat("<\u2028\xff", 50),
}

var trickyInts = []int64{0, 1, -1, 9, 10, -10, 99, 127, -128, 128, 255, 256, 32767, -32768, 65535,
	math.MaxInt32, math.MinInt32, math.MaxUint32, math.MaxInt64, math.MinInt64}

var trickyUints = []uint64{0, 1, 9, 10, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64, math.MaxUint64}

// fill returns v with its exported fields set from the inputs, field i
// left at its zero value when bit i of zero is set.
func fill(v any, strs []string, ints []int64, uints []uint64, bools []bool, zero uint64) any {
	p := reflect.New(reflect.TypeOf(v))
	p.Elem().Set(reflect.ValueOf(v))
	e := p.Elem()
	if e.Kind() != reflect.Struct {
		return v
	}
	for i := 0; i < e.NumField(); i++ {
		f := e.Field(i)
		if !f.CanSet() || zero&(1<<(i%64)) != 0 {
			continue
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString(strs[i%len(strs)])
		case reflect.Bool:
			f.SetBool(bools[i%len(bools)])
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			f.SetInt(ints[i%len(ints)]) // truncated to the field's size
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(uints[i%len(uints)])
		}
	}
	return e.Interface()
}

// check compares AppendJSON, on a value and a pointer, with and without
// bytes before, and JSONCodec.Marshal, with json.Marshal.
func check(t *testing.T, v any) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := reflect.New(reflect.TypeOf(v))
	p.Elem().Set(reflect.ValueOf(v))
	for _, x := range []any{v, p.Interface()} {
		a := x.(es.JSONAppender)
		if got := a.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("%#v\nAppendJSON: %s\njson.Marshal: %s", x, got, want)
		}
		prefix := []byte("prefix,")
		if got := a.AppendJSON(prefix[:len(prefix):len(prefix)]); string(got) != string(prefix)+string(want) {
			t.Fatalf("%#v\nAppendJSON after a prefix: %s\njson.Marshal: %s", x, got, want)
		}
		if got := a.AppendJSON(make([]byte, 3, 1000)); string(got) != "\x00\x00\x00"+string(want) {
			t.Fatalf("%#v\nAppendJSON with room: %q\njson.Marshal: %q", x, got, want)
		}
		if got, err := (es.JSONCodec{}).Marshal(x); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%#v\nJSONCodec.Marshal: %s, %v\njson.Marshal: %s", x, got, err, want)
		}
	}
}

func TestAppendJSONIsEncodingJSON(t *testing.T) {
	bools := []bool{true, false}
	n := 0
	for _, v := range eligible {
		check(t, v) // zero values
		for i, s := range trickyStrings {
			strs := []string{s, trickyStrings[(i+7)%len(trickyStrings)]}
			ints := []int64{trickyInts[i%len(trickyInts)], trickyInts[(i+3)%len(trickyInts)]}
			uints := []uint64{trickyUints[i%len(trickyUints)], trickyUints[(i+5)%len(trickyUints)]}
			for _, zero := range []uint64{0, 1, 2, 5, 0xAAAA, 0x5555, math.MaxUint64 - 1, math.MaxUint64} {
				check(t, fill(v, strs, ints, uints, bools[i%2:], zero))
				n++
			}
		}
		// Every min and max of every integer field, and the rest of the
		// integers, alone.
		for i := range max(len(trickyInts), len(trickyUints)) {
			check(t, fill(v, trickyStrings, trickyInts[i%len(trickyInts):], trickyUints[i%len(trickyUints):], bools, 0))
			n++
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		v := eligible[r.IntN(len(eligible))]
		check(t, fill(v, []string{randomString(r), randomString(r)},
			[]int64{int64(r.Uint64()), int64(r.Uint64() >> r.IntN(64))}, []uint64{r.Uint64(), r.Uint64() >> r.IntN(64)},
			[]bool{r.IntN(2) == 0, r.IntN(2) == 0}, r.Uint64()))
		n++
	}
	t.Logf("%d values compared", n)
}

// randomString draws from the bytes and runes encoding/json treats apart.
func randomString(r *rand.Rand) string {
	pieces := []string{"a", "Z", "0", " ", "~", "\x7f", `"`, `\`, "<", ">", "&", "\x00", "\n", "\x1f",
		"\u00e9", "\u2028", "\u2029", "\U0001F600", "\ufffd", "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80"}
	var b strings.Builder
	for range r.IntN(12) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func FuzzAppendJSON(f *testing.F) {
	for i, s := range trickyStrings {
		f.Add(s, trickyStrings[(i+1)%len(trickyStrings)], trickyInts[i%len(trickyInts)], trickyUints[i%len(trickyUints)], i%2 == 0, uint64(i))
	}
	f.Fuzz(func(t *testing.T, s1, s2 string, i int64, u uint64, b bool, zero uint64) {
		for _, v := range eligible {
			check(t, fill(v, []string{s1, s2}, []int64{i, -i}, []uint64{u, u >> 7}, []bool{b, !b}, zero))
		}
	})
}

// JSONCodec encodes an event of the generated path with one allocation, the
// bytes it returns, of the capacity json.Marshal gives them; an event whose
// longest JSON is longer than AppendJSON's buffer on the stack, with one
// allocation too.
func TestAppendJSONAllocations(t *testing.T) {
	c := es.JSONCodec{}
	for _, e := range []es.Event{
		Plain{Amount: 12, Reference: "ref-12345"},
		Plain{Amount: math.MinInt64, Reference: strings.Repeat("r", 300)},
		&Kinds{S: "s", I64: -1},
	} {
		got, _ := c.Marshal(e)
		want, _ := json.Marshal(e)
		if !bytes.Equal(got, want) || len(want) < 256 && cap(got) != cap(want) {
			t.Errorf("%#v: %q (capacity %d), json.Marshal %q (capacity %d)", e, got, cap(got), want, cap(want))
		}
		if n := testing.AllocsPerRun(100, func() {
			if _, err := c.Marshal(e); err != nil {
				t.Fatal(err)
			}
		}); n != 1 {
			t.Errorf("%#v: %v allocations, want 1", e, n)
		}
	}
}
