package eventsourcing_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/dispatchtest"
)

// counted appends as json.Marshal encodes it, and counts the calls.
type counted struct {
	N int64
	S string `json:"s,omitempty"`
}

var countedCalls int

func (c counted) AppendJSON(dst []byte) []byte {
	countedCalls++
	dst = append(dst, `{"N":`...)
	dst = strconv.AppendInt(dst, c.N, 10)
	if c.S != "" {
		dst = append(dst, `,"s":`...)
		dst = es.AppendJSONString(dst, c.S)
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
		countedCalls = 0
		got, err := c.Marshal(tc.v)
		want, werr := json.Marshal(tc.v)
		if err != nil || werr != nil || !bytes.Equal(got, want) {
			t.Errorf("%#v: JSONCodec %s, %v; encoding/json %s, %v", tc.v, got, err, want, werr)
		}
		if countedCalls != tc.calls {
			t.Errorf("%#v: %d AppendJSON calls, want %d", tc.v, countedCalls, tc.calls)
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

// AppendJSONString appends what json.Marshal writes for the string.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `"\`, "<>&", "\x00\x1f\x7f", "\b\f\n\r\t", "\u2028\u2029", "\u2027",
		"é日本\U0001F600", "\xff", "a\xc3", "\xed\xa0\x80", "\xef\xbf\xbd", "\xe2\x80\xa8\xe2\x80", strings.Repeat("ab", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := es.AppendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("%q: %s, encoding/json %s", s, got, want)
		}
	})
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
