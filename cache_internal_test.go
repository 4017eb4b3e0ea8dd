package eventsourcing

import (
	"context"
	"runtime"
	"testing"
)

type cacheItem struct{ AggregateBase }

// len returns the number of kept instances.
func (c *instanceCache[A]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// users waits until the entry of key counts n users.
func waitUsers[A Aggregate](c *instanceCache[A], key string, n int) {
	for {
		c.mu.Lock()
		e := c.entries[key]
		ok := e != nil && e.users == n
		c.mu.Unlock()
		if ok {
			return
		}
		runtime.Gosched()
	}
}

// A caller waiting for an instance that its holder drops (a panic) checks
// out a new one instead of the dropped one.
func TestInstanceCacheDropWhileWaiting(t *testing.T) {
	c := newInstanceCache[*cacheItem](4)
	builds := 0
	build := func() (*cacheItem, error) { builds++; return &cacheItem{}, nil }
	ctx := context.Background()
	held, err := c.checkout(ctx, "k", build)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *cached[*cacheItem])
	go func() {
		e, err := c.checkout(ctx, "k", build)
		if err != nil {
			t.Error(err)
		}
		got <- e
	}()
	waitUsers(c, "k", 2)
	c.release(held, false)
	e := <-got
	if e == held || e.a == held.a || builds != 2 {
		t.Fatalf("the waiter got the dropped instance (builds %d)", builds)
	}
	c.release(e, true)
	if c.len() != 1 {
		t.Fatalf("%d entries kept, want 1", c.len())
	}
}

// Eviction spares instances in use, and catches up once they are released.
func TestInstanceCacheEvictsOnlyFree(t *testing.T) {
	c := newInstanceCache[*cacheItem](1)
	build := func() (*cacheItem, error) { return &cacheItem{}, nil }
	ctx := context.Background()
	a, _ := c.checkout(ctx, "a", build)
	b, _ := c.checkout(ctx, "b", build)
	if c.len() != 2 {
		t.Fatalf("%d entries with two in use", c.len())
	}
	c.release(a, true)
	if c.len() != 1 {
		t.Fatalf("%d entries after releasing the least recently used", c.len())
	}
	c.release(b, true)
	again, _ := c.checkout(ctx, "b", build)
	if again != b {
		t.Fatal("the most recently used instance was evicted")
	}
	c.release(again, true)
}
