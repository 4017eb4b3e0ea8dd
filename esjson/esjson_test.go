package esjson_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aggregatekit/eventsourcing/esjson"
)

// ObjectReader fails, rather than panics, when it is misused.
func TestObjectReaderMisuse(t *testing.T) {
	data := []byte(`{"a":1,"b":"x"}`)
	for name, use := range map[string]func(r *esjson.ObjectReader){
		"value before Next":  func(r *esjson.ObjectReader) { r.Int(64) },
		"Next twice":         func(r *esjson.ObjectReader) { r.Next(); r.Next() },
		"two values":         func(r *esjson.ObjectReader) { r.Next(); r.Int(64); r.Int(64) },
		"Int of 65 bits":     func(r *esjson.ObjectReader) { r.Next(); r.Int(65) },
		"Int of -1 bits":     func(r *esjson.ObjectReader) { r.Next(); r.Int(-1) },
		"Uint of 65 bits":    func(r *esjson.ObjectReader) { r.Next(); r.Uint(65) },
		"Uint of -8 bits":    func(r *esjson.ObjectReader) { r.Next(); r.Uint(-8) },
		"a number as string": func(r *esjson.ObjectReader) { r.Next(); r.Str() },
		"Fail":               func(r *esjson.ObjectReader) { r.Next(); r.Fail() },
	} {
		r := esjson.ReadObject(data)
		use(&r)
		for r.Next() {
			r.Str()
		}
		if r.Done() || r.Key() != nil || r.Int(0) != 0 || r.Str() != "" || r.Bool() || r.Next() {
			t.Errorf("%s: the reader did not fail", name)
		}
	}
	r := esjson.ReadObject(data)
	for r.Next() {
		switch string(r.Key()) {
		case "a":
			if r.Uint(1) != 1 {
				t.Error("a 1-bit uint is not 1")
			}
		case "b":
			if r.Str() != "x" {
				t.Error("b is not x")
			}
		}
	}
	if !r.Done() || r.Next() || !r.Done() {
		t.Error("the reader did not stay done")
	}
}

// AppendString appends what json.Marshal writes for the string.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `"\`, "<>&", "\x00\x1f\x7f", "\b\f\n\r\t", "\u2028\u2029", "\u2027",
		"é日本\U0001F600", "\xff", "a\xc3", "\xed\xa0\x80", "\xef\xbf\xbd", "\xe2\x80\xa8\xe2\x80", strings.Repeat("ab", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := esjson.AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("%q: %s, encoding/json %s", s, got, want)
		}
	})
}
