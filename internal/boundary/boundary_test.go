package boundary

import (
	"fmt"
	"sync"
	"testing"
)

func TestKnownOnlyAtTheHighestBoundary(t *testing.T) {
	c := New(10)
	if c.Known("s", 0) || c.Known("s", 3) {
		t.Fatal("an empty cache knows a boundary")
	}
	c.Note("s", 3)
	if !c.Known("s", 3) {
		t.Fatal("noted boundary 3 not known")
	}
	for _, seq := range []int64{0, 1, 2, 4, -3} {
		if c.Known("s", seq) {
			t.Fatalf("boundary %d known after noting 3", seq)
		}
	}
	if c.Known("other", 3) {
		t.Fatal("another stream's boundary known")
	}
	c.Note("s", 7)
	if !c.Known("s", 7) || c.Known("s", 3) {
		t.Fatal("after noting 7: want only 7 known")
	}
	c.Note("s", 5) // lower: ignored
	if !c.Known("s", 7) || c.Known("s", 5) {
		t.Fatal("noting a lower boundary replaced the higher one")
	}
	c.Note("s", 7)
	if !c.Known("s", 7) {
		t.Fatal("noting the same boundary again lost it")
	}
}

func TestNonPositiveSequencesIgnored(t *testing.T) {
	c := New(10)
	c.Note("s", 0)
	c.Note("t", -1)
	if c.Len() != 0 {
		t.Fatalf("noting sequences <= 0 stored %d streams", c.Len())
	}
	if c.Known("s", 0) || c.Known("t", -1) {
		t.Fatal("a sequence <= 0 is known")
	}
}

func TestDisabled(t *testing.T) {
	var nilCache *Cache
	for name, c := range map[string]*Cache{
		"New(0)": New(0), "New(-5)": New(-5), "zero value": {}, "nil": nilCache,
	} {
		c.Note("s", 3)
		if c.Known("s", 3) {
			t.Errorf("%s: knows a noted boundary", name)
		}
		if c.Len() != 0 {
			t.Errorf("%s: holds %d streams", name, c.Len())
		}
		c.Reset()
	}
}

func TestBoundedSize(t *testing.T) {
	const limit = 8
	c := New(limit)
	for i := range 1000 {
		c.Note(fmt.Sprint("s", i), int64(i+1))
		if n := c.Len(); n > limit {
			t.Fatalf("after %d streams the cache holds %d, above its limit %d", i+1, n, limit)
		}
	}
	if c.Len() != limit {
		t.Fatalf("holds %d streams, want %d", c.Len(), limit)
	}
	// The stream noted last is always kept, and whatever is held is right.
	if !c.Known("s999", 1000) {
		t.Fatal("the stream noted last was dropped")
	}
	held := 0
	for i := range 1000 {
		if c.Known(fmt.Sprint("s", i), int64(i+1)) {
			held++
		}
	}
	if held != limit {
		t.Fatalf("%d streams known, want %d", held, limit)
	}
	// Raising the boundary of a held stream when full drops nothing.
	c.Note("s999", 2000)
	if c.Len() != limit || !c.Known("s999", 2000) {
		t.Fatalf("raising a held stream: %d streams, known %v", c.Len(), c.Known("s999", 2000))
	}
}

func TestLimitOne(t *testing.T) {
	c := New(1)
	c.Note("a", 1)
	c.Note("b", 2)
	if c.Known("a", 1) || !c.Known("b", 2) || c.Len() != 1 {
		t.Fatal("a limit of 1 must hold only the latest stream")
	}
}

func TestReset(t *testing.T) {
	c := New(4)
	c.Note("s", 3)
	c.Reset()
	if c.Known("s", 3) || c.Len() != 0 {
		t.Fatal("Reset kept a boundary")
	}
	c.Note("s", 1) // usable after Reset, and not held back by the old 3
	if !c.Known("s", 1) {
		t.Fatal("boundary noted after Reset not known")
	}
}

// Concurrent notes and lookups on shared and separate streams, under -race:
// the size stays bounded and each stream ends at its highest boundary, if
// held.
func TestConcurrentUse(t *testing.T) {
	const (
		workers = 8
		streams = 16
		limit   = 12
		rounds  = 500
	)
	c := New(limit)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				s := fmt.Sprint("s", (w+i)%streams)
				c.Note(s, int64(i+1))
				c.Known(s, int64(i+1))
				if c.Len() > limit {
					t.Errorf("holds %d streams, above %d", c.Len(), limit)
					return
				}
				if i%97 == 0 && w == 0 {
					c.Reset()
				}
			}
		})
	}
	wg.Wait()
	if c.Len() > limit {
		t.Fatalf("holds %d streams, above %d", c.Len(), limit)
	}
	// Without Reset, racing notes of one stream leave the highest.
	d := New(limit)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				d.Note("shared", int64(w*rounds+i+1))
			}
		})
	}
	wg.Wait()
	if !d.Known("shared", workers*rounds) {
		t.Fatal("racing notes did not leave the highest boundary")
	}
}
