package eventsourcing

import (
	"container/list"
	"context"
	"sync"
)

// instanceCache keeps loaded aggregate instances by key, the most recently
// used first, each lent to one caller at a time. It is safe for concurrent
// use.
type instanceCache[A Aggregate] struct {
	max     int
	mu      sync.Mutex // guards entries, lru and each entry's users and dropped
	entries map[string]*cached[A]
	lru     list.List // of *cached[A], most recently used at the front
}

// cached is one kept instance. turn holds a token while the instance is
// free; a caller takes it to use the instance.
type cached[A Aggregate] struct {
	key     string
	a       A
	ready   chan struct{} // closed once a is built (or failed)
	err     error         // the Factory's error
	turn    chan struct{}
	users   int  // callers holding or waiting for the instance
	dropped bool // no longer in entries: waiters must check out again
	elem    *list.Element
}

func newInstanceCache[A Aggregate](n int) *instanceCache[A] {
	return &instanceCache[A]{max: n, entries: map[string]*cached[A]{}}
}

// checkout returns the instance of key, built by build if it is not kept,
// once no other caller uses it, or ctx's error. The caller gives it back
// with release.
func (c *instanceCache[A]) checkout(ctx context.Context, key string, build func() (A, error)) (*cached[A], error) {
	for {
		e, fresh := c.enter(key)
		if fresh {
			e.a, e.err = build()
			close(e.ready)
			if e.err == nil {
				e.turn <- struct{}{}
			}
		}
		<-e.ready
		if e.err != nil {
			c.release(e, false)
			return nil, e.err
		}
		select {
		case <-e.turn:
		case <-ctx.Done():
			c.mu.Lock()
			e.users--
			c.mu.Unlock()
			return nil, ctx.Err()
		}
		c.mu.Lock()
		dropped := e.dropped
		if dropped {
			e.users--
		}
		c.mu.Unlock()
		if !dropped {
			return e, nil
		}
		e.turn <- struct{}{} // for the next waiter on the dropped instance
	}
}

// enter finds or adds the entry of key and counts the caller as its user.
func (c *instanceCache[A]) enter(key string) (e *cached[A], fresh bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e = c.entries[key]
	if e == nil {
		e = &cached[A]{key: key, ready: make(chan struct{}), turn: make(chan struct{}, 1)}
		e.elem = c.lru.PushFront(e)
		c.entries[key] = e
		fresh = true
	} else {
		c.lru.MoveToFront(e.elem)
	}
	e.users++
	c.evict()
	return e, fresh
}

// release gives the instance back; if keep is false (a panic, a Factory
// error) it is dropped, and callers waiting for it check out a new one.
func (c *instanceCache[A]) release(e *cached[A], keep bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.users--
	if !keep {
		c.drop(e)
	}
	if e.err == nil {
		e.turn <- struct{}{}
	}
	c.evict()
}

// drop removes e from the cache. c.mu is held.
func (c *instanceCache[A]) drop(e *cached[A]) {
	if !e.dropped {
		e.dropped = true
		delete(c.entries, e.key)
		c.lru.Remove(e.elem)
	}
}

// evict drops the least recently used instances nobody uses while there
// are more than max. c.mu is held.
func (c *instanceCache[A]) evict() {
	for el := c.lru.Back(); el != nil && len(c.entries) > c.max; {
		prev := el.Prev()
		if e := el.Value.(*cached[A]); e.users == 0 {
			c.drop(e)
		}
		el = prev
	}
}
