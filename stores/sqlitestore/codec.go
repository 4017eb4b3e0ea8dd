package sqlitestore

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aggregatekit/eventsourcing/backend"
)

// Timestamps are stored as text in UTC with nine fractional digits,
// "2006-01-02T15:04:05.000000000Z": fixed width, so they sort as instants,
// exact to the nanosecond over years 1 to 9999 (where Unix nanoseconds in
// one int64 stop in 2262), and readable by SQLite's date functions.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func encodeTime(t time.Time) string {
	var buf [len(timeLayout)]byte
	return string(t.UTC().AppendFormat(buf[:0], timeLayout))
}

// decodeTime parses what encodeTime writes, strictly.
func decodeTime(s string) (time.Time, error) {
	bad := func() (time.Time, error) {
		return time.Time{}, fmt.Errorf("%q is not a time as the store writes it (%s)", s, timeLayout)
	}
	if len(s) != len(timeLayout) {
		return bad()
	}
	num := func(from, to int) int {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	if s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != '.' || s[29] != 'Z' {
		return bad()
	}
	y, mo, d, h, mi, sec, ns := num(0, 4), num(5, 7), num(8, 10), num(11, 13), num(14, 16), num(17, 19), num(20, 29)
	if y < 1 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 || ns < 0 {
		return bad()
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC)
	if t.Day() != d { // February 30 and the like
		return bad()
	}
	return t, nil
}

// metaEncoder encodes the metadata of a commit's records as JSON objects
// (NULL when empty). A commit's records usually share one set of headers:
// it encodes each distinct set once.
type metaEncoder struct {
	last    backend.Metadata
	encoded any
}

func (e *metaEncoder) encode(md backend.Metadata) (any, error) {
	if len(md) == 0 {
		return nil, nil
	}
	if e.encoded != nil && maps.Equal(md, e.last) {
		return e.encoded, nil
	}
	b, err := json.Marshal(map[string]string(md))
	if err != nil {
		return nil, err
	}
	e.last, e.encoded = md, string(b)
	return e.encoded, nil
}

// metaDecoder decodes stored metadata. Records of one commit usually carry
// the same text; they then share one decoded map (records are read-only).
type metaDecoder struct {
	text string
	md   backend.Metadata
}

func (d *metaDecoder) decode(text *string) (backend.Metadata, error) {
	if text == nil {
		return nil, nil
	}
	if d.md != nil && *text == d.text {
		return d.md, nil
	}
	md, ok := decodePlainObject(*text)
	if !ok {
		if err := json.Unmarshal([]byte(*text), &md); err != nil {
			return nil, fmt.Errorf("metadata is not a JSON object of strings: %w", err)
		}
		if md == nil {
			return nil, fmt.Errorf("metadata is JSON null")
		}
	}
	d.text, d.md = *text, md
	return md, nil
}

// decodePlainObject decodes the JSON that encoding/json writes for a map of
// strings none of which needs an escape ({"k":"v","k2":""}), which is what
// metadata almost always is, without reflection. It reports false for
// anything else (escapes, spaces, invalid text), which encoding/json then
// decodes or refuses.
func decodePlainObject(s string) (map[string]string, bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || strings.IndexByte(s, '\\') >= 0 || !utf8.ValidString(s) {
		return nil, false
	}
	m := make(map[string]string)
	if len(s) == 2 {
		return m, true
	}
	// str reads a string starting at s[i] == '"' and returns it and the
	// index after its closing quote.
	str := func(i int) (string, int, bool) {
		if i >= len(s) || s[i] != '"' {
			return "", 0, false
		}
		for j := i + 1; j < len(s); j++ {
			switch c := s[j]; {
			case c == '"':
				return s[i+1 : j], j + 1, true
			case c < 0x20:
				return "", 0, false
			}
		}
		return "", 0, false
	}
	i := 1
	for {
		k, next, ok := str(i)
		if !ok || next >= len(s) || s[next] != ':' {
			return nil, false
		}
		v, next, ok := str(next + 1)
		if !ok || next >= len(s) {
			return nil, false
		}
		m[k] = v
		switch {
		case s[next] == ',':
			i = next + 1
		case next == len(s)-1: // the closing brace
			return m, true
		default:
			return nil, false
		}
	}
}

// Feed positions are the rowid of a commit's last event row, as 20 decimal
// digits so that they sort like the feed.
const positionLen = 20

func encodePosition(rowid int64) backend.Position {
	var buf [positionLen]byte
	s := strconv.AppendInt(buf[:0], rowid, 10)
	out := make([]byte, positionLen)
	pad := positionLen - len(s)
	for i := 0; i < pad; i++ {
		out[i] = '0'
	}
	copy(out[pad:], s)
	return backend.Position(out)
}

func decodePosition(p backend.Position) (int64, error) {
	if p == "" {
		return 0, nil
	}
	if len(p) != positionLen {
		return 0, fmt.Errorf("%w: %q is not an SQLite feed position (want %d digits)", backend.ErrInvalidPosition, p, positionLen)
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return 0, fmt.Errorf("%w: %q is not an SQLite feed position (want %d digits)", backend.ErrInvalidPosition, p, positionLen)
		}
	}
	n, err := strconv.ParseInt(string(p), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not an SQLite feed position: %v", backend.ErrInvalidPosition, p, err)
	}
	return n, nil
}
