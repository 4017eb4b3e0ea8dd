package jsonappendtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	es "github.com/aggregatekit/eventsourcing"
)

func TestWhichEventsDecode(t *testing.T) {
	for _, v := range eligible {
		if _, ok := reflect.New(reflect.TypeOf(v)).Interface().(es.JSONDecoder); !ok {
			t.Errorf("*%T has no DecodeJSON", v)
		}
	}
	for _, v := range ineligible {
		if _, ok := reflect.New(reflect.TypeOf(v)).Interface().(es.JSONDecoder); ok {
			t.Errorf("*%T has a DecodeJSON", v)
		}
	}
}

// checkDecode compares DecodeJSON, and JSONCodec.Unmarshal, with
// json.Unmarshal, each into a pointer to a copy of pre: an error when
// json.Unmarshal fails (for the generated DecodeJSON, the same error) and the
// same value after. (Embedded has the DecodeJSON of Plain, promoted, which
// JSONCodec must not call; HandDecoded's errors name another type.)
func checkDecode(t *testing.T, pre any, data []byte) {
	t.Helper()
	ptr := func() reflect.Value {
		p := reflect.New(reflect.TypeOf(pre))
		p.Elem().Set(reflect.ValueOf(pre))
		return p
	}
	want := ptr()
	werr := json.Unmarshal(data, want.Interface())
	for _, how := range []string{"DecodeJSON", "JSONCodec.Unmarshal"} {
		got := ptr()
		var err error
		_, promoted := pre.(Embedded)
		if d, ok := got.Interface().(es.JSONDecoder); ok && how == "DecodeJSON" && !promoted {
			err = d.DecodeJSON(data)
		} else {
			err = es.JSONCodec{}.Unmarshal(data, got.Interface())
		}
		_, hand := pre.(HandDecoded)
		if (err == nil) != (werr == nil) || !hand && fmt.Sprint(err) != fmt.Sprint(werr) ||
			!reflect.DeepEqual(got.Elem().Interface(), want.Elem().Interface()) {
			t.Fatalf("%s of %q into %#v\ngot  %#v, %v\nwant %#v, %v", how, data, pre, got.Elem().Interface(), err, want.Elem().Interface(), werr)
		}
	}
}

// member is a key and a value of an object, as JSON.
type member struct{ key, value string }

// members returns the members of the object AppendJSON writes for v, in
// order.
func members(t testing.TB, v any) []member {
	data := v.(es.JSONAppender).AppendJSON(nil)
	dec := json.NewDecoder(bytes.NewReader(data))
	var ms []member
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s: %v, %v", data, tok, err)
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		key, _ := json.Marshal(k)
		ms = append(ms, member{string(key), string(raw)})
	}
	return ms
}

// odd are values and parts of JSON that encoding/json decodes in its own
// way, refuses, or that are not JSON.
var odd = []string{
	"null", "0", "-0", "01", "-", "1.0", "1e2", "1E2", "1.5", "-1e-2", "9223372036854775807", "9223372036854775808",
	"-9223372036854775808", "-9223372036854775809", "18446744073709551615", "18446744073709551616", "1" + strings.Repeat("0", 30),
	"128", "-129", "256", "65536", "4294967296", "true", "false", "tru", "True", "nul", `""`, `"x"`, `"1"`, `"true"`,
	`"\u0041"`, `"a\"b"`, `"\\"`, "\"\t\"", "\"\x00\"", "\"\xff\"", "\"\xed\xa0\x80\"", "\"\xef\xbf\xbd\"", "\"\u2028<&>\"",
	`"\ud800"`, `"\/"`, "[]", "[1,2]", "{}", `{"a":{"b":[1,"}"]}}`, `"unterminated`, "+1", ".5", "0x10", "NaN", "Infinity",
}

// mutate returns the object of ms (a copy, of random order) written with
// random changes: whitespace, repeated keys, keys in another case or with
// escapes, odd values, strings not escaped, unknown keys, members left out,
// trailing data.
func mutate(r *rand.Rand, ms []member) []byte {
	ms = slices.Clone(ms)
	r.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
	for range r.IntN(3) {
		if len(ms) == 0 {
			break
		}
		i := r.IntN(len(ms))
		m := &ms[i]
		switch r.IntN(10) {
		case 0: // repeat the member, with another value
			ms = slices.Insert(ms, r.IntN(len(ms)+1), member{m.key, odd[r.IntN(len(odd))]})
		case 1: // repeat it as it is
			ms = slices.Insert(ms, r.IntN(len(ms)+1), *m)
		case 2: // leave it out
			ms = slices.Delete(ms, i, i+1)
		case 3:
			m.value = odd[r.IntN(len(odd))]
		case 4: // change the case of a letter of the key
			m.key = changeCase(r, m.key)
		case 5: // escape a character of the key or the value
			if r.IntN(2) == 0 {
				m.key = escapeOne(r, m.key)
			} else {
				m.value = escapeOne(r, m.value)
			}
		case 6: // an unknown key
			ms = slices.Insert(ms, r.IntN(len(ms)+1), member{`"unknown"`, odd[r.IntN(len(odd))]})
		case 7: // the value of another member
			m.value = ms[r.IntN(len(ms))].value
		case 8: // a byte of the value changed
			if m.value != "" {
				const bytes = "\x00\x1f\xff\"\\ -.e0aA{}[],:"
				b := []byte(m.value)
				b[r.IntN(len(b))] = bytes[r.IntN(len(bytes))]
				m.value = string(b)
			}
		case 9: // a string as it is, unescaped
			m.value = `"` + trickyStrings[r.IntN(len(trickyStrings))] + `"`
		}
	}
	ws := func() string {
		if r.IntN(3) != 0 {
			return ""
		}
		spaces := []string{" ", "\t", "\n", "\r", "  \n\t", "\v", "\f", "\u00a0", "\ufeff"}
		s := spaces[r.IntN(len(spaces))]
		if r.IntN(8) != 0 {
			s = strings.Trim(s, "\v\f\u00a0\ufeff") // mostly JSON whitespace
		}
		return s
	}
	var b strings.Builder
	b.WriteString(ws() + "{" + ws())
	for i, m := range ms {
		if i > 0 {
			b.WriteString(ws() + "," + ws())
		}
		b.WriteString(m.key + ws() + ":" + ws() + m.value)
	}
	b.WriteString(ws() + "}" + ws())
	out := b.String()
	switch r.IntN(12) {
	case 0:
		out += []string{"x", "{}", "}", ",", "\x00", "null", " 1"}[r.IntN(7)]
	case 1:
		out = out[:r.IntN(len(out)+1)]
	case 2:
		out = strings.Replace(out, ",", ",,", 1)
	case 3:
		out = strings.Replace(out, "}", ",}", 1)
	}
	return []byte(out)
}

// changeCase changes the case of one letter of key, or writes one of the
// letters encoding/json folds specially (K, S as the Kelvin sign and long s).
func changeCase(r *rand.Rand, key string) string {
	runes := []rune(key)
	if len(runes) <= 2 {
		return key
	}
	i := 1 + r.IntN(len(runes)-2)
	switch c := runes[i]; {
	case c == 'k' || c == 'K':
		runes[i] = '\u212a'
	case c == 's' || c == 'S':
		runes[i] = '\u017f'
	case unicode.IsUpper(c):
		runes[i] = unicode.ToLower(c)
	default:
		runes[i] = unicode.ToUpper(c)
	}
	return string(runes)
}

// escapeOne writes one character of the JSON string s as \uXXXX.
func escapeOne(r *rand.Rand, s string) string {
	if len(s) < 3 || s[0] != '"' {
		return s
	}
	i := 1 + r.IntN(len(s)-2)
	c, size := utf8.DecodeRuneInString(s[i:])
	if c == utf8.RuneError || c > 0xffff || strings.ContainsRune(`"\`, c) {
		return s
	}
	return s[:i] + fmt.Sprintf(`\u%04x`, c) + s[i+size:]
}

// randomValues returns a random value of the type of v, and another, for a
// decoder to start from.
func randomValues(r *rand.Rand, v any) (val, pre any) {
	rnd := func() any {
		return fill(v, []string{randomString(r), randomString(r)},
			[]int64{int64(r.Uint64()) >> r.IntN(64), -int64(r.Uint64() >> r.IntN(64))}, []uint64{r.Uint64() >> r.IntN(64), r.Uint64()},
			[]bool{r.IntN(2) == 0, r.IntN(2) == 0}, r.Uint64())
	}
	return rnd(), rnd()
}

func TestDecodeJSONIsEncodingJSON(t *testing.T) {
	n := 0
	for _, v := range slices.Concat(eligible, ineligible, []any{Embedded{}, HandDecoded{}}) {
		for _, data := range []string{"", " ", "null", " null ", "{}", " {\n} ", "[]", `"x"`, "1", "{", "}", "{}{}", "{} x",
			`{"":1}`, `{"-":1}`, `{"Skipped":1}`, `{"secret":1}`, `{"x":1}`, `{"Y":"y"}`, `{"a":}`, `{,}`, `{"a" 1}`, "\ufeff{}"} {
			checkDecode(t, v, []byte(data))
			checkDecode(t, fill(v, []string{"pre"}, []int64{7}, []uint64{8}, []bool{true}, 0), []byte(data))
			n += 2
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, v := range eligible {
		for i, s := range trickyStrings {
			val := fill(v, []string{s}, trickyInts[i%len(trickyInts):], trickyUints[i%len(trickyUints):], []bool{i%2 == 0}, 0)
			pre := fill(v, []string{"pre"}, []int64{-1}, []uint64{1}, []bool{true}, 0)
			data := val.(es.JSONAppender).AppendJSON(nil)
			checkDecode(t, pre, data)
			for range 20 {
				checkDecode(t, pre, mutate(r, members(t, val)))
			}
			n += 21
		}
	}
	for range 30000 {
		val, pre := randomValues(r, eligible[r.IntN(len(eligible))])
		data := val.(es.JSONAppender).AppendJSON(nil)
		if r.IntN(2) == 0 {
			data = mutate(r, members(t, val))
		}
		checkDecode(t, pre, data)
		n++
	}
	t.Logf("%d inputs compared", n)
}

// The fast path takes the plain form, with whitespace and keys in any
// order, and encoding/json the rest: here the result alone cannot tell,
// the allocations can.
func TestDecodeJSONFastPath(t *testing.T) {
	c := es.JSONCodec{}
	for _, tc := range []struct {
		data   string
		fast   bool
		allocs float64
	}{
		{`{"Amount":-12,"Reference":"ref-12345"}`, true, 1},
		{" {\"Reference\" : \"\u00e9\u65e5\" ,\n\t\"Amount\":9223372036854775807\r} ", true, 1},
		{`{"Amount":1}`, true, 0},
		{`{}`, true, 0},
		{`{"Amount":1,"Amount":2}`, true, 0},
		{`{"amount":1}`, false, 0},
		{`{"Amount":1.0}`, false, 0},
		{`{"Amount":null}`, false, 0},
		{`{"Reference":"\u0041"}`, false, 0},
		{`{"Amount":1,"Other":2}`, false, 0},
		{"{\"Reference\":\"a\tb\"}", false, 0},
		{"{\"Reference\":\"\x1f\"}", false, 0},
		{"{\"Reference\":\"\xff\"}", false, 0},
		{"{\"Reference\":\"\x7f\u00e9<&>\u2028\"}", true, 1},
	} {
		e, data := new(Plain), []byte(tc.data)
		allocs := testing.AllocsPerRun(10, func() {
			*e = Plain{}
			_ = c.Unmarshal(data, e) // compared with encoding/json below
		})
		checkDecode(t, Plain{}, data)
		t.Logf("%q: %v allocations", tc.data, allocs)
		if tc.fast && allocs != tc.allocs || !tc.fast && allocs <= 2 {
			t.Errorf("%q: %v allocations (fast path: %v)", tc.data, allocs, tc.fast)
		}
	}
}

// DecodeJSON against json.Unmarshal for any input, into every event esgen
// writes DecodeJSON for, each pre-filled.
func FuzzDecodeJSON(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, v := range eligible {
		for range 20 {
			val, _ := randomValues(r, v)
			f.Add(val.(es.JSONAppender).AppendJSON(nil))
			f.Add(mutate(r, members(f, val)))
		}
	}
	for _, s := range odd {
		f.Add([]byte(s))
		f.Add([]byte(`{"Amount":` + s + `}`))
		f.Add([]byte(`{"S":` + s + `,"B":` + s + `,"U8":` + s + "}"))
	}
	pres := make([]any, len(eligible))
	for i, v := range eligible {
		pres[i] = fill(v, []string{"pre"}, []int64{math.MinInt64 + 3}, []uint64{3}, []bool{true}, 0)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, pre := range pres {
			checkDecode(t, pre, data)
		}
	})
}

// DecodeJSON against json.Unmarshal for what AppendJSON writes for any
// values, changed as the seed picks.
func FuzzDecodeJSONMutated(f *testing.F) {
	for i, s := range trickyStrings {
		f.Add(s, trickyStrings[(i+1)%len(trickyStrings)], trickyInts[i%len(trickyInts)], trickyUints[i%len(trickyUints)], i%2 == 0, uint64(i), uint64(i))
	}
	f.Fuzz(func(t *testing.T, s1, s2 string, i int64, u uint64, b bool, zero, seed uint64) {
		r := rand.New(rand.NewPCG(seed, zero))
		for _, v := range eligible {
			val := fill(v, []string{s1, s2}, []int64{i, -i}, []uint64{u, u >> 7}, []bool{b, !b}, zero)
			pre := fill(v, []string{s2}, []int64{i >> 3}, []uint64{^u}, []bool{!b}, ^zero)
			checkDecode(t, pre, val.(es.JSONAppender).AppendJSON(nil))
			for range 4 {
				checkDecode(t, pre, mutate(r, members(t, val)))
			}
		}
	})
}
