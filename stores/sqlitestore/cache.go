package sqlitestore

import (
	"container/list"
	"sync"

	"github.com/aggregatekit/eventsourcing/backend"
)

// recordOverhead is what the cache counts for one record besides its
// variable-length fields: the Record struct, slice and map headers.
const recordOverhead = 160

// recordCache keeps, for the streams loaded most recently, the records
// loaded from the start of the stream: stored events never change, so a
// prefix read once stays true, and a later Load reads only the rows after
// it. It holds at most limit bytes (as recordSize counts them) and drops
// the least recently used streams beyond that; a stream larger than a
// quarter of the limit is not kept. A zero limit disables it. Safe for
// concurrent use; cached records are shared with callers, who treat them
// as read-only (backend.Record says so).
type recordCache struct {
	limit int

	mu    sync.Mutex
	size  int
	lru   list.List // of *cacheEntry, most recently used first
	items map[backend.StreamID]*cacheEntry
}

type cacheEntry struct {
	stream backend.StreamID
	recs   []backend.Record // sequences 1, 2, ..., len(recs); append-only
	size   int
	elem   *list.Element // nil once dropped
}

func recordSize(r backend.Record) int {
	n := recordOverhead + len(r.Data) + len(r.EventType) + len(r.CommitID)
	for k, v := range r.Metadata {
		n += len(k) + len(v)
	}
	return n
}

// get returns the cached records of stream (sequences 1 to len), to be
// read only; nil if none.
func (c *recordCache) get(stream backend.StreamID) []backend.Record {
	if c.limit <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.items[stream]
	if e == nil {
		return nil
	}
	c.lru.MoveToFront(e.elem)
	return e.recs[:len(e.recs):len(e.recs)]
}

// add offers records of stream just loaded, in order, the first of which
// follows sequence after. It keeps them if they extend the cached prefix
// contiguously (or start the stream), and drops the stream on anything
// else.
func (c *recordCache) add(stream backend.StreamID, after int64, recs []backend.Record) {
	if c.limit <= 0 || len(recs) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.items[stream]
	have := int64(0)
	if e != nil {
		have = int64(len(e.recs))
	}
	if after != have {
		return // not the continuation of what is cached: keep what is
	}
	added := 0
	for i, r := range recs {
		if r.Sequence != after+int64(i)+1 {
			c.drop(e)
			return
		}
		added += recordSize(r)
	}
	if e == nil {
		e = &cacheEntry{stream: stream}
		if c.items == nil {
			c.items = make(map[backend.StreamID]*cacheEntry)
		}
		c.items[stream] = e
		e.elem = c.lru.PushFront(e)
	} else {
		c.lru.MoveToFront(e.elem)
	}
	if e.size+added > c.limit/4 {
		c.drop(e)
		return
	}
	e.recs = append(e.recs, recs...)
	e.size += added
	c.size += added
	for c.size > c.limit {
		c.drop(c.lru.Back().Value.(*cacheEntry))
	}
}

func (c *recordCache) drop(e *cacheEntry) {
	if e == nil || e.elem == nil {
		return
	}
	c.lru.Remove(e.elem)
	e.elem = nil
	delete(c.items, e.stream)
	c.size -= e.size
}
