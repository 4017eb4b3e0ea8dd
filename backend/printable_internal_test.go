package backend

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// printable agrees with printableUTF8, its path without the ASCII shortcuts
// (it decodes every rune), for every byte value at every offset of strings
// around the word size, in a run of printable ASCII, and for some
// multi-byte runes across word boundaries.
func TestPrintableMatchesReference(t *testing.T) {
	for n := 1; n <= 19; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("~", n)) // 0x7e, the highest printable byte
				b[pos] = byte(c)
				if got, want := printable(string(b)), printableUTF8(string(b)); got != want {
					t.Fatalf("printable(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
	for _, s := range []string{"abcdefgé", "abcdefghé", "ünïcödé-kéy-ünïcödé", "abc\u2028def", "abcdefg\u0085", "12345678\xff", " !\"#$%&'()*+,-./"} {
		if got, want := printable(s), printableUTF8(s); got != want {
			t.Fatalf("printable(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzPrintable(f *testing.F) {
	f.Add("Account")
	f.Add("0195f7c2-3b7a-7cc3-9a8e-0d4f6e2b1a90")
	f.Add("k\x7fey-with-del")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := printable(s), printableUTF8(s); got != want {
			t.Fatalf("printable(%q) = %v, want %v", s, got, want)
		}
	})
}

// asciiInPlain is asciiIn one byte at a time.
func asciiInPlain(s string, lo, hi byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < lo || s[i] > hi {
			return false
		}
	}
	return true
}

// asciiIn agrees with asciiInPlain, for the ranges the checks use, for
// every byte value at every offset of strings of 0 to 19 bytes made of
// either end of the range, and for random strings of bytes around the
// ends (several bytes out of range in one word included).
func TestASCIIInMatchesPlain(t *testing.T) {
	check := func(s string, lo, hi byte) {
		t.Helper()
		if got, want := asciiIn(s, lo, hi), asciiInPlain(s, lo, hi); got != want {
			t.Fatalf("asciiIn(%q, %#x, %#x) = %v, want %v", s, lo, hi, got, want)
		}
	}
	for _, r := range [][2]byte{{' ', '~'}, {'!', '~'}} {
		lo, hi := r[0], r[1]
		for _, fill := range []byte{lo, hi} {
			for n := 0; n <= 19; n++ {
				check(strings.Repeat(string(fill), n), lo, hi)
				for pos := 0; pos < n; pos++ {
					for c := 0; c < 256; c++ {
						b := []byte(strings.Repeat(string(fill), n))
						b[pos] = byte(c)
						check(string(b), lo, hi)
					}
				}
			}
		}
		near := []byte{0, 1, lo - 1, lo, lo + 1, '/', hi - 1, hi, hi + 1, 0x80, 0xfe, 0xff}
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 200000; i++ {
			b := make([]byte, rng.IntN(20))
			for j := range b {
				if rng.IntN(4) == 0 {
					b[j] = near[rng.IntN(len(near))]
				} else {
					b[j] = lo + byte(rng.IntN(int(hi-lo)+1))
				}
			}
			check(string(b), lo, hi)
		}
	}
}
