package backend

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// printableRef is printable written plainly.
func printableRef(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Every byte value at every offset of strings around the word size, in a
// run of printable ASCII, and some multi-byte runes across word boundaries.
func TestPrintableMatchesReference(t *testing.T) {
	for n := 1; n <= 19; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("~", n)) // 0x7e, the highest printable byte
				b[pos] = byte(c)
				if got, want := printable(string(b)), printableRef(string(b)); got != want {
					t.Fatalf("printable(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
	for _, s := range []string{"abcdefgé", "abcdefghé", "ünïcödé-kéy-ünïcödé", "abc\u2028def", "abcdefg\u0085", "12345678\xff", " !\"#$%&'()*+,-./"} {
		if got, want := printable(s), printableRef(s); got != want {
			t.Fatalf("printable(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzPrintable(f *testing.F) {
	f.Add("Account")
	f.Add("0195f7c2-3b7a-7cc3-9a8e-0d4f6e2b1a90")
	f.Add("k\x7fey-with-del")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := printable(s), printableRef(s); got != want {
			t.Fatalf("printable(%q) = %v, want %v", s, got, want)
		}
	})
}
