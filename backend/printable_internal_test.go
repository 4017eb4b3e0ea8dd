package backend

import (
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
