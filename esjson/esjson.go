// Package esjson is the runtime of the AppendJSON and DecodeJSON methods
// cmd/esgen writes for events (eventsourcing.JSONAppender and
// eventsourcing.JSONDecoder, with which eventsourcing.JSONCodec encodes and
// decodes an event without reflection). AppendString encodes a string as
// encoding/json does; ObjectReader reads a JSON object in the plain form
// those AppendJSON methods write.
//
// It is exact where it accepts input: AppendString writes the bytes
// json.Marshal writes, and what ObjectReader reads decodes to the values
// json.Unmarshal gives. Everything else, ObjectReader refuses by failing,
// and the DecodeJSON method then hands the data to encoding/json
// (ObjectReader.Unmarshal), so that the result, error included, is
// encoding/json's.
//
// AppendString is safe for concurrent use. An ObjectReader is used by one
// goroutine at a time; it does not modify the data it reads, so any number
// of readers may read the same data at once, as long as nothing writes to
// it.
//
// Hand-written AppendJSON and DecodeJSON methods may use the package too
// (see the example); they must honour the same contracts, and are best
// tested against encoding/json over many values and inputs, valid and not.
// The package imports only the standard library.
package esjson

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// AppendString appends s to dst as encoding/json encodes a string with its
// default HTML escaping: quoted, with '"', '\\' and control characters
// escaped, '<', '>' and '&' written as \u003c, \u003e and \u0026, U+2028 and
// U+2029 as \u2028 and \u2029, and each byte of invalid UTF-8 replaced by
// \ufffd. The AppendJSON methods cmd/esgen writes call it for string fields.
func AppendString(dst []byte, s string) []byte {
	i := 0
	for ; i+8 <= len(s) && plain8(load64(s[i:])); i += 8 {
	}
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if !plain[c] {
				return appendStringSlow(dst, s)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return appendStringSlow(dst, s)
		}
		i += size
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendStringSlow is AppendString for a string that needs escaping:
// encoding/json itself encodes it.
func appendStringSlow(dst []byte, s string) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // encoding/json encodes every string
	}
	return append(dst, b...)
}

// plain holds the ASCII bytes encoding/json copies into a string as they
// are when it escapes HTML: printable, except '"', '\\', '<', '>' and '&'.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = !strings.ContainsRune(`"\<>&`, c)
	}
	return t
}()

// Bytes broadcast to every byte of a word, for plain8.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain8 reports whether the eight bytes of w are all plain (see plain):
// ASCII, not below ' ', and none of '"', '\\', '<', '>' and '&'. A
// subtraction borrows from the next byte only out of a byte that is already
// a hit, so the answer is exact (TestPlain8).
func plain8(w uint64) bool {
	if w&highs != 0 || (w-ones*' ')&^w&highs != 0 { // a byte >= 0x80, or (all being < 0x80) one < ' '
		return false
	}
	return !hasZero(w^(ones*'"')) && !hasZero(w^(ones*'\\')) && !hasZero(w^(ones*'<')) &&
		!hasZero(w^(ones*'>')) && !hasZero(w^(ones*'&'))
}

// hasZero reports whether a byte of w is zero (never false when one is).
func hasZero(w uint64) bool { return (w-ones)&^w&highs != 0 }

// load64 returns the first eight bytes of s (at least 8) as a
// little-endian word, in one load.
func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}
