package sqlitestore

import (
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
)

// decodeTime takes exactly what encodeTime writes, and nothing else
// without an error (no panic either).
func FuzzDecodeTime(f *testing.F) {
	for _, s := range []string{"2026-01-02T03:04:05.987654321Z", "0001-01-01T00:00:00.000000000Z", "9999-12-31T23:59:59.999999999Z",
		"2026-02-30T00:00:00.000000000Z", "2026-1-02T03:04:05.987654321Z", "", "2026-01-02T03:04:05Z", "+026-01-02T03:04:05.987654321Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := decodeTime(s)
		if err != nil {
			return
		}
		if back := encodeTime(tm); back != s {
			t.Fatalf("%q decodes to %v, which encodes as %q", s, tm, back)
		}
		if tm.Before(backend.MinTime) || tm.After(backend.MaxTime) {
			t.Fatalf("%q decodes to %v, outside the range", s, tm)
		}
	})
}

func TestTimeRoundTrip(t *testing.T) {
	for _, tm := range []time.Time{{}, time.Unix(0, 0), backend.MaxTime, time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2262, 4, 11, 23, 47, 16, 854775808, time.UTC), time.Date(2026, 11, 30, 12, 0, 0, 123456789, time.FixedZone("", -7*3600))} {
		got, err := decodeTime(encodeTime(tm))
		if err != nil || !got.Equal(tm) || got.IsZero() != tm.IsZero() {
			t.Fatalf("%v: got %v, %v", tm, got, err)
		}
	}
}

// The fast path of metadata decoding agrees with encoding/json wherever it
// answers, and what the encoder writes decodes to the same headers.
func FuzzDecodeMetadata(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"b"}`, `{"a":"b","c":""}`, `{"a":"b",}`, `{"a":"b""c":"d"}`, `{"a":1}`, `{"a":"\u00e9"}`,
		`{"a":"b"} `, `{"a" :"b"}`, `{"":""}`, `{"a":"b","a":"c"}`, "{\"a\":\"\x01\"}", `{"a":"<&>"}`, `null`, `{"a":"b"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast, ok := decodePlainObject(s)
		var slow map[string]string
		err := json.Unmarshal([]byte(s), &slow)
		if ok && (err != nil || !maps.Equal(fast, slow)) {
			t.Fatalf("%q: fast path %v, encoding/json %v (%v)", s, fast, slow, err)
		}
		var d metaDecoder
		if md, err := d.decode(&s); err == nil {
			var e metaEncoder
			enc, err := e.encode(md)
			if err != nil {
				t.Fatal(err)
			}
			if len(md) == 0 {
				return
			}
			text := enc.(string)
			var d2 metaDecoder
			again, err := d2.decode(&text)
			if err != nil || !maps.Equal(again, md) {
				t.Fatalf("%q: re-encoded as %q, decodes to %v, %v", s, text, again, err)
			}
		}
	})
}

func FuzzDecodePosition(f *testing.F) {
	for _, s := range []string{"", "00000000000000000001", "9223372036854775807", "09223372036854775807", "99999999999999999999", "-0000000000000000001", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := decodePosition(backend.Position(s))
		if err != nil || s == "" {
			return
		}
		if back := encodePosition(n); string(back) != s || n < 0 {
			t.Fatalf("%q decodes to %d, which encodes as %q", s, n, back)
		}
	})
}
