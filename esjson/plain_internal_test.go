package esjson

import (
	"math/rand/v2"
	"testing"
)

// plain8Bytewise is plain8 byte by byte.
func plain8Bytewise(w uint64) bool {
	for i := 0; i < 8; i++ {
		if c := byte(w >> (8 * i)); c >= 0x80 || !plain[c] {
			return false
		}
	}
	return true
}

// TestPlain8 checks plain8 against plain byte by byte: every byte value at
// every position among plain bytes and among other ones, and random words.
func TestPlain8(t *testing.T) {
	for _, fill := range []byte{'a', ' ', '~', '!', '%', '\'', ';', '=', '?', '[', ']'} {
		for c := 0; c < 256; c++ {
			for p := 0; p < 8; p++ {
				w := uint64(ones) * uint64(fill)
				w = w&^(0xff<<(8*p)) | uint64(c)<<(8*p)
				if got, want := plain8(w), plain8Bytewise(w); got != want {
					t.Fatalf("plain8(%#016x) = %v, want %v", w, got, want)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1_000_000; i++ {
		w := r.Uint64()
		if i%2 == 0 {
			w &^= highs // mostly ASCII
		}
		if got, want := plain8(w), plain8Bytewise(w); got != want {
			t.Fatalf("plain8(%#016x) = %v, want %v", w, got, want)
		}
	}
}
