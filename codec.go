package eventsourcing

import (
	"encoding"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
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

// Marshal encodes v with encoding/json, or with v's AppendJSON method when v
// (as passed: a value or a pointer) implements JSONAppender and is not a nil
// pointer, unless its type also has a MarshalJSON or MarshalText method, or
// is a struct embedding a field that has an AppendJSON method (see
// JSONAppender). Either way the bytes are the same.
func (JSONCodec) Marshal(v any) ([]byte, error) {
	if a, ok := v.(JSONAppender); ok && appends(v) {
		return a.AppendJSON(nil), nil
	}
	return json.Marshal(v)
}

// appends reports whether JSONCodec calls the AppendJSON method of v.
func appends(v any) bool {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && rv.IsNil() {
		return false // encoding/json writes null
	}
	return ownAppenders.of(rv.Type())
}

// ownAppenders caches ownAppender.
var ownAppenders = typeMemo{fn: ownAppender}

// ownAppender reports whether the AppendJSON method of t, a type that has
// one, may stand for encoding/json: t has no MarshalJSON or MarshalText
// method (encoding/json would call it; this also keeps a generated AppendJSON
// from outliving one added later), and is not a struct with an embedded
// field that has an AppendJSON method, which may be the one t has, promoted,
// leaving out the other fields of t.
func ownAppender(t reflect.Type) bool {
	if t.Implements(typeJSONMarshaler) || t.Implements(typeTextMarshaler) {
		return false
	}
	return !embedsMethod(t, "AppendJSON")
}

// embedsMethod reports whether t, or the type t points to, is a struct with
// an embedded field that has the method name (on its pointer, if it is not
// a pointer or an interface itself): a method t may have only promoted.
func embedsMethod(t reflect.Type, name string) bool {
	st := indirect(t)
	if st.Kind() != reflect.Struct {
		return false
	}
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		if !f.Anonymous {
			continue
		}
		m := f.Type
		if m.Kind() != reflect.Pointer && m.Kind() != reflect.Interface {
			m = reflect.PointerTo(m)
		}
		if _, ok := m.MethodByName(name); ok {
			return true
		}
	}
	return false
}

// Unmarshal decodes data into v with encoding/json, or with v's DecodeJSON
// method when v implements JSONDecoder and is a non-nil pointer, unless its
// type also has an UnmarshalJSON or UnmarshalText method, or is a pointer to
// a struct embedding a field that has a DecodeJSON method (see
// JSONDecoder). Either way *v ends up the same, and so does the error.
func (JSONCodec) Unmarshal(data []byte, v any) error {
	if d, ok := v.(JSONDecoder); ok && decodes(v) {
		return d.DecodeJSON(data)
	}
	return json.Unmarshal(data, v)
}

// decodes reports whether JSONCodec calls the DecodeJSON method of v.
func decodes(v any) bool {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return false // encoding/json fails
	}
	return ownDecoders.of(reflect.TypeOf(v))
}

// ownDecoders caches ownDecoder.
var ownDecoders = typeMemo{fn: ownDecoder}

// typeMemo caches a function of types, for JSONCodec to call once per
// event. A sync.Map alone hashes the type, an interface, on every lookup,
// which showed in the profile of a rebuild (a tenth of the time of loading
// events with DecodeJSON); in front of it, a direct-mapped array of the
// types seen last, indexed and compared by the address of the type's
// descriptor, takes about half as long.
type typeMemo struct {
	fn     func(reflect.Type) bool
	recent [64]atomic.Pointer[typeResult]
	all    sync.Map // reflect.Type -> *typeResult
}

// typeResult is fn of t, whose descriptor is at addr. Since it keeps t
// alive, no other type can have that address.
type typeResult struct {
	t    reflect.Type
	addr uintptr
	ok   bool
}

// of returns m.fn(t), computed once.
func (m *typeMemo) of(t reflect.Type) bool {
	addr := reflect.ValueOf(t).Pointer()
	slot := &m.recent[addr>>4%uintptr(len(m.recent))]
	if r := slot.Load(); r != nil && r.addr == addr {
		return r.ok
	}
	r, found := m.all.Load(t)
	if !found {
		r, _ = m.all.LoadOrStore(t, &typeResult{t: t, addr: addr, ok: m.fn(t)})
	}
	slot.Store(r.(*typeResult))
	return r.(*typeResult).ok
}

// ownDecoder reports whether the DecodeJSON method of t, a pointer type that
// has one, may stand for encoding/json: t has no UnmarshalJSON or
// UnmarshalText method (encoding/json would call it), and does not point to
// a struct with an embedded field that has a DecodeJSON method, which may be
// the one t has, promoted, leaving the other fields of the struct alone.
func ownDecoder(t reflect.Type) bool {
	if t.Implements(typeJSONUnmarshaler) || t.Implements(typeTextUnmarshaler) {
		return false
	}
	return !embedsMethod(t, "DecodeJSON")
}

// JSONAppender is implemented by an event type that encodes itself for
// JSONCodec without reflection. AppendJSON appends to dst exactly the bytes
// json.Marshal returns for the value it is called on, and returns the
// extended slice: the same keys in the same order, the same escaping (HTML
// characters included), the same omitted fields, no spaces and no newline.
// It must not keep dst. JSONCodec.Marshal calls it with a nil dst and stores
// the result as it is, so a difference from encoding/json is a difference in
// the stored bytes, and another codec, which ignores AppendJSON, would store
// other bytes than JSONCodec for the same event.
//
// cmd/esgen writes AppendJSON, with a value receiver, for the events of an
// aggregate whose encoding it can reproduce exactly from the source alone
// (struct fields of the predeclared string, bool and integer types, tags
// with a name, "-" and omitempty only), and a compile-time check that fails
// when the struct's fields or tags change until it is rerun. A hand-written
// AppendJSON must honour the same contract and is best tested against
// json.Marshal over many values; AppendJSONString encodes a string field.
// JSONCodec ignores AppendJSON on a type that also has a MarshalJSON or
// MarshalText method encoding/json would call, and on a struct type with an
// embedded field that has an AppendJSON method: embedding an event in
// another struct promotes its AppendJSON, which knows nothing of the other
// fields.
type JSONAppender interface {
	AppendJSON(dst []byte) []byte
}

// AppendJSONString appends s to dst as encoding/json encodes a string with
// its default HTML escaping: quoted, with '"', '\\' and control characters
// escaped, '<', '>' and '&' written as \u003c, \u003e and \u0026, U+2028 and
// U+2029 as \u2028 and \u2029, and each byte of invalid UTF-8 replaced by
// \ufffd. The AppendJSON methods cmd/esgen writes call it for string fields.
func AppendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !jsonPlain[c] {
				return appendJSONStringSlow(dst, s)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return appendJSONStringSlow(dst, s)
		}
		i += size
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendJSONStringSlow is AppendJSONString for a string that needs escaping:
// encoding/json itself encodes it.
func appendJSONStringSlow(dst []byte, s string) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // encoding/json encodes every string
	}
	return append(dst, b...)
}

// jsonPlain holds the ASCII bytes encoding/json copies into a string as they
// are when it escapes HTML: printable, except '"', '\\', '<', '>' and '&'.
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = !strings.ContainsRune(`"\<>&`, c)
	}
	return t
}()

// JSONDecoder is implemented, on the pointer, by an event type that decodes
// itself for JSONCodec without reflection. DecodeJSON leaves the value its
// receiver points to exactly as json.Unmarshal(data, receiver) would: the
// same fields set to the same values, every other field as it was (when
// decoding into a struct, encoding/json keeps the fields the data does not
// mention); and it returns an error exactly when json.Unmarshal would (the
// error value may be json.Unmarshal's own). JSONCodec.Unmarshal calls it
// with a non-nil pointer, usually to a new value, so a difference from
// encoding/json is a difference in the events an aggregate replays, and in
// what another codec, which ignores DecodeJSON, would decode.
//
// cmd/esgen writes DecodeJSON for the events it writes AppendJSON for: a
// fast path for the objects such events are stored as (see
// JSONObjectReader), falling back to json.Unmarshal for anything else. A
// hand-written DecodeJSON must honour the same contract and is best tested
// against json.Unmarshal over many inputs, valid and not. JSONCodec ignores
// DecodeJSON on a type that also has an UnmarshalJSON or UnmarshalText
// method encoding/json would call, and on a pointer to a struct type with an
// embedded field that has a DecodeJSON method: embedding an event in another
// struct promotes its DecodeJSON, which knows nothing of the other fields.
type JSONDecoder interface {
	DecodeJSON(data []byte) error
}

// JSONObjectReader reads the members of a JSON object in the plain form
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
//		x, r := *e, eventsourcing.ReadJSONObject(data)
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
type JSONObjectReader struct {
	data  []byte
	i     int    // the next byte to read
	key   []byte // the key of the member whose value is next
	state objectState
}

// objectState is where a JSONObjectReader is in the object.
type objectState uint8

const (
	objectStart objectState = iota // before the opening brace
	objectValue                    // after a key and its colon
	objectNext                     // after a value
	objectDone                     // the object and the data read
	objectFailed
)

// ReadJSONObject returns a reader of the object data holds.
func ReadJSONObject(data []byte) JSONObjectReader {
	return JSONObjectReader{data: data}
}

// Next reads up to the value of the next member, and reports whether there
// is one; its key is then Key and its value is to be read next, with one of
// Int, Uint, Bool or Str. It returns false at the end of the object, and
// from then on, or once the reader failed.
func (r *JSONObjectReader) Next() bool {
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
func (r *JSONObjectReader) Key() []byte { return r.key }

// Int reads the value as an integer of bits bits (8, 16, 32, 64, or 0 for
// int): -?(0|[1-9][0-9]*) in the range of that type. It returns 0 when it
// fails.
func (r *JSONObjectReader) Int(bits int) int64 {
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
func (r *JSONObjectReader) Uint(bits int) uint64 {
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
func (r *JSONObjectReader) Bool() bool {
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
func (r *JSONObjectReader) Str() string {
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
func (r *JSONObjectReader) Fail() { r.fail() }

// Done reports whether the reader read the whole object, and nothing but
// whitespace after it, without failing.
func (r *JSONObjectReader) Done() bool { return r.state == objectDone }

// Unmarshal is json.Unmarshal of the data the reader was given into v:
// where DecodeJSON goes when the reader failed.
func (r *JSONObjectReader) Unmarshal(v any) error { return json.Unmarshal(r.data, v) }

// fail makes the reader fail, and returns false.
func (r *JSONObjectReader) fail() bool {
	r.state, r.key = objectFailed, nil
	return false
}

// end is Next after the closing brace.
func (r *JSONObjectReader) end() bool {
	r.space()
	if r.i != len(r.data) {
		return r.fail()
	}
	r.state = objectDone
	return false
}

// value starts reading a value, and reports whether one is to be read.
func (r *JSONObjectReader) value() bool {
	if r.state != objectValue {
		return r.fail()
	}
	r.state = objectNext
	return true
}

// space skips JSON whitespace.
func (r *JSONObjectReader) space() {
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
func (r *JSONObjectReader) byte(c byte) bool {
	if r.i < len(r.data) && r.data[r.i] == c {
		r.i++
		return true
	}
	return false
}

// literal reads s, if it is next.
func (r *JSONObjectReader) literal(s string) bool {
	if len(r.data)-r.i >= len(s) && string(r.data[r.i:r.i+len(s)]) == s {
		r.i += len(s)
		return true
	}
	return false
}

// quoted reads a string without escapes or control characters, and returns
// what is between the quotes and whether it is ASCII; false if there is no
// such string next.
func (r *JSONObjectReader) quoted() (s []byte, ascii, ok bool) {
	if !r.byte('"') {
		return nil, false, false
	}
	data, i := r.data, r.i
	var or byte // of the bytes read, for the high bit
	for ; i < len(data) && !jsonStringStop[data[i]]; i++ {
		or |= data[i]
	}
	if i == len(data) || data[i] != '"' {
		return nil, false, false
	}
	s, r.i = data[r.i:i], i+1
	return s, or < utf8.RuneSelf, true
}

// jsonStringStop holds the bytes that end a string JSONObjectReader reads:
// the quote, and the backslash and control characters it does not read.
var jsonStringStop = func() (t [256]bool) {
	for c := range ' ' {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// digits reads 0|[1-9][0-9]* and returns its value, or false if there is
// none or it does not fit in a uint64.
func (r *JSONObjectReader) digits() (uint64, bool) {
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

var (
	typeJSONMarshaler   = reflect.TypeFor[json.Marshaler]()
	typeTextMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
	typeJSONUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	typeTextUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
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
