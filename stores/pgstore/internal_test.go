package pgstore

import (
	"maps"
	"math"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
)

func TestPositions(t *testing.T) {
	for _, c := range []struct {
		tx  uint64
		pos int64
	}{{0, 0}, {3, 1}, {1<<32 + 7, 99}, {math.MaxUint64, math.MaxInt64}} {
		p := formatPosition(c.tx, c.pos)
		if len(p) != positionLen {
			t.Fatalf("%v: %q has %d bytes", c, p, len(p))
		}
		tx, pos, err := parsePosition(p)
		if err != nil || tx != c.tx || pos != c.pos {
			t.Fatalf("%q parses as %d, %d, %v; want %d, %d", p, tx, pos, err, c.tx, c.pos)
		}
	}
	// Positions sort as strings like (tx, position) pairs.
	ordered := []backend.Position{formatPosition(1, 5), formatPosition(1, 6), formatPosition(2, 1), formatPosition(10, 0), formatPosition(1<<40, 3)}
	for i := 1; i < len(ordered); i++ {
		if !(ordered[i-1] < ordered[i]) {
			t.Fatalf("%q does not sort before %q", ordered[i-1], ordered[i])
		}
	}
}

// FuzzParsePosition: a position either fails to parse with
// ErrInvalidPosition or is exactly what formatPosition makes of its parts.
func FuzzParsePosition(f *testing.F) {
	f.Add("")
	f.Add(string(formatPosition(12, 34)))
	f.Add("00000000000000000001/0000000000000000000x")
	f.Add("+0000000000000000001/00000000000000000001")
	f.Add("99999999999999999999/99999999999999999999")
	f.Fuzz(func(t *testing.T, s string) {
		tx, pos, err := parsePosition(backend.Position(s))
		if err != nil {
			return
		}
		if s == "" {
			return
		}
		if pos < 0 || formatPosition(tx, pos) != backend.Position(s) {
			t.Fatalf("%q parsed as %d, %d, which formats as %q", s, tx, pos, formatPosition(tx, pos))
		}
	})
}

// FuzzDecodeMetadata: stored metadata bytes decode to headers that encode
// and decode again to the same headers, or fail; never a panic.
func FuzzDecodeMetadata(f *testing.F) {
	for _, md := range []backend.Metadata{{"a": "b"}, {"nul": "\x00", "ünï": "✓", "<>&": "\u2028"}} {
		b, _ := encodeMetadata(md)
		f.Add(b)
	}
	f.Add([]byte("null"))
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := decodeMetadata(b)
		if err != nil {
			return
		}
		enc, err := encodeMetadata(md)
		if err != nil {
			t.Fatalf("decoded %q to %q, which does not encode: %v", b, md, err)
		}
		again, err := decodeMetadata(enc)
		if err != nil || !maps.Equal(again, md) {
			t.Fatalf("%q -> %q -> %q -> %q, %v", b, md, enc, again, err)
		}
	})
}

// FuzzTime: every time CheckAppend accepts survives the split into
// microseconds and nanoseconds and back.
func FuzzTime(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(backend.MinTime.Unix(), int64(1))
	f.Add(backend.MaxTime.Unix(), int64(999999999))
	f.Add(int64(-1), int64(999999999))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		in := time.Unix(sec, nsec%1e9)
		if in.Before(backend.MinTime) || in.After(backend.MaxTime) {
			return
		}
		ts, ns := splitTime(in)
		if ts.Nanosecond()%1000 != 0 || ns < 0 || ns > 999 {
			t.Fatalf("%v split into %v and %d", in, ts, ns)
		}
		out, err := joinTime(ts, ns)
		if err != nil || !out.Equal(in) {
			t.Fatalf("%v -> %v + %d -> %v, %v", in, ts, ns, out, err)
		}
	})
}

func TestJoinTimeRefuses(t *testing.T) {
	for _, ns := range []int16{-1, 1000} {
		if _, err := joinTime(time.Unix(0, 0), ns); err == nil {
			t.Errorf("time_ns %d accepted", ns)
		}
	}
	if _, err := joinTime(backend.MaxTime.Add(time.Microsecond).Truncate(time.Microsecond), 0); err == nil {
		t.Error("a time after year 9999 accepted")
	}
}

func TestChannelName(t *testing.T) {
	if c := channelName("eventsourcing"); c != "pgstore.eventsourcing" {
		t.Fatalf("got %q", c)
	}
	long := channelName(string(make([]byte, 63)))
	if len(long) > 63 || long == channelName(string(make([]byte, 62))) {
		t.Fatalf("long names: %q", long)
	}
}
