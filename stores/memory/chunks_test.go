package memory

import "testing"

// from(i) yields exactly the elements i.. of a view, for every i and every
// length around the chunk boundaries.
func TestChunksFrom(t *testing.T) {
	var c chunks[int]
	for n := 0; n <= 700; n++ {
		v := c.view()
		for i := -1; i <= n+1; i++ {
			want := max(i, 0)
			for p := range v.from(i) {
				if *p != want {
					t.Fatalf("length %d, from(%d): got %d, want %d", n, i, *p, want)
				}
				want++
			}
			if want != max(n, max(i, 0)) {
				t.Fatalf("length %d, from(%d): stopped before %d", n, i, want)
			}
		}
		c.push(n)
	}
}

func TestPositionRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 123456789, 1<<62 - 1} {
		p := position(n)
		if len(p) != 20 {
			t.Fatalf("position(%d) = %q", n, p)
		}
		if got, err := index(p); err != nil || got != n {
			t.Fatalf("index(position(%d)) = %d, %v", n, got, err)
		}
	}
	if position(9) >= position(10) {
		t.Fatal("positions do not sort as numbers")
	}
}
