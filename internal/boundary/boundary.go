// Package boundary provides Cache, a bounded in-process memory of the latest
// commit boundary seen per stream, shared by the stores that keep one
// document or item per commit.
//
// Such a store appends a commit with a uniqueness guarantee on (stream, first
// sequence of the commit). Two writers appending after the same head collide,
// but an expected sequence that is ahead of the head or inside a commit would
// collide with nothing, so before inserting, the store must know that a
// commit ends exactly at the expected sequence. Stored commits are never
// changed or removed, so once the store has seen a commit end at some
// sequence (by writing or reading it), that stays true: remembering it lets
// the usual load-then-commit path skip the extra read.
package boundary

import "sync"

// Cache remembers, for each stream, the highest commit boundary (the last
// sequence of a commit) noted for it. It holds at most limit streams: when a
// new stream is noted while it is full, an arbitrary entry is dropped, which
// only costs that stream's next check one extra read. A Cache made with a
// limit <= 0 is disabled: it never stores anything and Known always reports
// false.
//
// A Cache is safe for concurrent use by multiple goroutines. The zero value
// and a nil *Cache are disabled Caches; use New.
type Cache struct {
	limit int

	mu sync.Mutex
	m  map[string]int64
}

// New returns an empty Cache holding at most limit streams; limit <= 0
// returns a disabled Cache.
func New(limit int) *Cache {
	return &Cache{limit: limit}
}

// Known reports whether seq is the highest commit boundary noted for stream.
// It reports false for a stream not held (never noted, or dropped since),
// for any other sequence, and always when c is disabled.
func (c *Cache) Known(stream string, seq int64) bool {
	if c == nil || c.limit <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[stream]
	return ok && v == seq
}

// Note records that a commit of stream ends at seq. The cache keeps the
// highest boundary noted per stream, so noting a lower one changes nothing.
// A seq <= 0 is ignored, as is every call when c is disabled.
func (c *Cache) Note(stream string, seq int64) {
	if c == nil || c.limit <= 0 || seq <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[stream]; ok {
		if seq > v {
			c.m[stream] = seq
		}
		return
	}
	if c.m == nil {
		c.m = make(map[string]int64)
	}
	if len(c.m) >= c.limit {
		for k := range c.m { // map order: an arbitrary victim
			delete(c.m, k)
			break
		}
	}
	c.m[stream] = seq
}

// Len returns the number of streams c holds.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Reset forgets every stream.
func (c *Cache) Reset() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}
