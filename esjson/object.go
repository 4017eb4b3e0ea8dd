package esjson

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// ObjectReader reads the members of a JSON object in the plain form
// AppendJSON methods write, for the DecodeJSON methods cmd/esgen writes:
// optional whitespace between tokens, keys without escapes, and values that
// are integers without a fraction or an exponent, true or false, or strings
// without escapes, control characters or invalid UTF-8, with nothing but
// whitespace after the object. Anything else, a value that does not fit the
// type it is read as, and any misuse make it fail, and the DecodeJSON method
// then hands the data to encoding/json (Unmarshal). Whatever it accepts is
// valid JSON that encoding/json decodes to the same values, member by member
// in order (a key given twice: the last one counts). A DecodeJSON method
// reads into a copy of the value and stores the copy once the whole object
// was read:
//
//	func (e *Deposited) DecodeJSON(data []byte) error {
//		x, r := *e, esjson.ReadObject(data)
//		for r.Next() {
//			switch string(r.Key()) {
//			case "Amount":
//				x.Amount = r.Int(64)
//			case "Reference":
//				x.Reference = r.Str()
//			default:
//				r.Fail() // a key of no field, or one that matches only in another case
//			}
//		}
//		if !r.Done() {
//			return r.Unmarshal(e)
//		}
//		*e = x
//		return nil
//	}
//
// Its exported methods are fuzzed against encoding/json through the methods
// esgen writes (cmd/esgen/internal/jsonappendtest).
type ObjectReader struct {
	data  []byte
	i     int    // the next byte to read
	key   []byte // the key of the member whose value is next
	state objectState
}

// objectState is where an ObjectReader is in the object.
type objectState uint8

const (
	objectStart objectState = iota // before the opening brace
	objectValue                    // after a key and its colon
	objectNext                     // after a value
	objectDone                     // the object and the data read
	objectFailed
)

// ReadObject returns a reader of the object data holds. The reader keeps
// data, which must not change while it is read: Key returns slices of it.
func ReadObject(data []byte) ObjectReader {
	return ObjectReader{data: data}
}

// Next reads up to the value of the next member, and reports whether there
// is one; its key is then Key and its value is to be read next, with one of
// Int, Uint, Bool or Str. It returns false at the end of the object, and
// from then on, or once the reader failed.
func (r *ObjectReader) Next() bool {
	switch r.state {
	case objectStart:
		r.space()
		if !r.byte('{') {
			return r.fail()
		}
		r.space()
		if r.byte('}') {
			return r.end()
		}
	case objectNext:
		r.space()
		if r.byte('}') {
			return r.end()
		}
		if !r.byte(',') {
			return r.fail()
		}
		r.space()
	case objectDone:
		return false
	default: // objectValue: the value was not read
		return r.fail()
	}
	key, _, ok := r.quoted()
	if !ok {
		return r.fail()
	}
	r.key = key
	r.space()
	if !r.byte(':') {
		return r.fail()
	}
	r.space()
	r.state = objectValue
	return true
}

// Key returns the key of the member Next read up to, as it is in the data
// (it has no escapes); nil once the reader failed.
func (r *ObjectReader) Key() []byte { return r.key }

// Int reads the value as an integer of bits bits (8, 16, 32, 64, or 0 for
// int): -?(0|[1-9][0-9]*) in the range of that type. It returns 0 when it
// fails.
func (r *ObjectReader) Int(bits int) int64 {
	if !r.value() {
		return 0
	}
	if bits == 0 {
		bits = strconv.IntSize
	}
	neg := r.byte('-')
	u, ok := r.digits()
	if !ok || bits < 1 || bits > 64 {
		r.fail()
		return 0
	}
	limit := uint64(1)<<(bits-1) - 1 // the largest value; the smallest is -limit-1
	if neg {
		limit++
	}
	if u > limit {
		r.fail()
		return 0
	}
	if neg {
		return -int64(u) // for 1<<63, int64(u) is -1<<63, its own negation
	}
	return int64(u)
}

// Uint reads the value as an unsigned integer of bits bits (8, 16, 32, 64,
// or 0 for uint): 0|[1-9][0-9]* in the range of that type. It returns 0 when
// it fails.
func (r *ObjectReader) Uint(bits int) uint64 {
	if !r.value() {
		return 0
	}
	if bits == 0 {
		bits = strconv.IntSize
	}
	u, ok := r.digits()
	if !ok || bits < 1 || bits > 64 || u > math.MaxUint64>>(64-bits) {
		r.fail()
		return 0
	}
	return u
}

// Bool reads the value as true or false. It returns false when it fails.
func (r *ObjectReader) Bool() bool {
	switch {
	case !r.value():
	case r.literal("true"):
		return true
	case !r.literal("false"):
		r.fail()
	}
	return false
}

// Str reads the value as a string without escapes, control characters or
// invalid UTF-8, and returns a copy of it; "" when it fails.
func (r *ObjectReader) Str() string {
	if !r.value() {
		return ""
	}
	s, ascii, ok := r.quoted()
	if !ok || !ascii && !utf8.Valid(s) { // encoding/json replaces invalid UTF-8
		r.fail()
		return ""
	}
	return string(s)
}

// Fail makes the reader fail: DecodeJSON calls it for a key of no field.
func (r *ObjectReader) Fail() { r.fail() }

// Done reports whether the reader read the whole object, and nothing but
// whitespace after it, without failing.
func (r *ObjectReader) Done() bool { return r.state == objectDone }

// Unmarshal is json.Unmarshal of the data the reader was given into v:
// where DecodeJSON goes when the reader failed.
func (r *ObjectReader) Unmarshal(v any) error { return json.Unmarshal(r.data, v) }

// fail makes the reader fail, and returns false.
func (r *ObjectReader) fail() bool {
	r.state, r.key = objectFailed, nil
	return false
}

// end is Next after the closing brace.
func (r *ObjectReader) end() bool {
	r.space()
	if r.i != len(r.data) {
		return r.fail()
	}
	r.state = objectDone
	return false
}

// value starts reading a value, and reports whether one is to be read.
func (r *ObjectReader) value() bool {
	if r.state != objectValue {
		return r.fail()
	}
	r.state = objectNext
	return true
}

// space skips JSON whitespace.
func (r *ObjectReader) space() {
	for r.i < len(r.data) {
		switch r.data[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// byte reads c, if it is next.
func (r *ObjectReader) byte(c byte) bool {
	if r.i < len(r.data) && r.data[r.i] == c {
		r.i++
		return true
	}
	return false
}

// literal reads s, if it is next.
func (r *ObjectReader) literal(s string) bool {
	if len(r.data)-r.i >= len(s) && string(r.data[r.i:r.i+len(s)]) == s {
		r.i += len(s)
		return true
	}
	return false
}

// quoted reads a string without escapes or control characters, and returns
// what is between the quotes and whether it is ASCII; false if there is no
// such string next.
func (r *ObjectReader) quoted() (s []byte, ascii, ok bool) {
	if !r.byte('"') {
		return nil, false, false
	}
	data, i := r.data, r.i
	var or byte // of the bytes read, for the high bit
	for ; i < len(data) && !stringStop[data[i]]; i++ {
		or |= data[i]
	}
	if i == len(data) || data[i] != '"' {
		return nil, false, false
	}
	s, r.i = data[r.i:i], i+1
	return s, or < utf8.RuneSelf, true
}

// stringStop holds the bytes that end a string ObjectReader reads:
// the quote, and the backslash and control characters it does not read.
var stringStop = func() (t [256]bool) {
	for c := range ' ' {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// digits reads 0|[1-9][0-9]* and returns its value, or false if there is
// none or it does not fit in a uint64.
func (r *ObjectReader) digits() (uint64, bool) {
	start := r.i
	var u uint64
	for ; r.i < len(r.data); r.i++ {
		d := r.data[r.i] - '0'
		if d > 9 {
			break
		}
		if u > math.MaxUint64/10 || u == math.MaxUint64/10 && d > math.MaxUint64%10 {
			return 0, false
		}
		u = u*10 + uint64(d)
	}
	if n := r.i - start; n == 0 || n > 1 && r.data[start] == '0' {
		return 0, false
	}
	return u, true
}
