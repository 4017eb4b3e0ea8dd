package dynamostore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aggregatekit/eventsourcing/backend"
)

// DefaultPendingLimit is the number of commits Pending yields at most when
// it is given a limit <= 0.
const DefaultPendingLimit = 100

// outboxShards is the number of values the outbox marker takes (0 to
// outboxShards-1, by a hash of the stream). Each is one partition of the
// outbox index, so index writes spread over that many partitions. It is
// part of the table's format: every backend writes and reads the same
// shards.
const outboxShards = 4

// markWorkers bounds how many streams MarkPublished marks at once.
const markWorkers = 8

// shardOf returns the outbox shard of the partition key pk (FNV-1a).
func shardOf(pk string) int {
	h := uint32(2166136261)
	for i := 0; i < len(pk); i++ {
		h ^= uint32(pk[i])
		h *= 16777619
	}
	return int(h % outboxShards)
}

// indexEntry is a pending commit as the outbox index lists it.
type indexEntry struct {
	pk  string
	seq int64
	at  int64
}

func (e indexEntry) key() string { return e.pk + "\x00" + strconv.FormatInt(e.seq, 10) }

// Pending yields at most limit pending commits (limit <= 0:
// DefaultPendingLimit): commits appended with the outbox marker and not yet
// marked published. Within one stream it yields them in stream order, and it
// never yields a commit while an earlier commit of the same stream is pending
// but not yielded before it. Across streams the order is roughly by append
// time, by the clocks of the appending backends. It implements
// backend.Outbox.
//
// Pending reads the outbox index, which real DynamoDB updates a moment
// after each write (a global secondary index is eventually consistent), so
// a commit may be pending a moment before Pending sees it, and a commit
// marked published may still be listed for a moment. Pending therefore
// checks every listed commit against the table with strongly consistent
// reads, and for each stream it yields, that the commit before the first one
// it yields has been published: if that one is pending too (listed late,
// or later in the index because the appending clocks disagree), Pending
// yields it first, walking back up to limit commits (a stream that needs
// more waits for the index to catch up). Entries the index still lists
// after their commit was published take places within limit, so Pending
// may yield fewer than limit commits while more are pending; callers read
// again. Commits marked out of stream order (MarkPublished of a commit while
// an earlier one of its stream is pending, which Pending's callers never
// need to do) defeat the check.
//
// Round trips and costs:
//
//   - one Query of the index per shard (4, run at once; eventually
//     consistent, keys only: about 0.5 read units each for up to limit
//     entries);
//   - one BatchGetItem per 100 listed commits, strongly consistent: each
//     commit item costs its size in 4 KB read units;
//   - per stream yielded whose previous commit this backend has not seen
//     published (it marked it, or checked it, earlier), one strongly
//     consistent Query (Limit 1) reading that commit item, and one more per
//     step back when it is pending too.
//
// A relay that runs Pending and MarkPublished on one Backend thus pays the
// predecessor check once per stream, not on every call (see
// WithBoundaryCache).
func (b *Backend) Pending(ctx context.Context, limit int) iter.Seq2[backend.Commit, error] {
	return func(yield func(backend.Commit, error) bool) {
		fail := func(err error) {
			yield(backend.Commit{}, fmt.Errorf("dynamostore: pending commits of table %q: %w", *b.table, err))
		}
		if b.closed.Load() {
			fail(backend.ErrClosed)
			return
		}
		if err := ctx.Err(); err != nil {
			fail(err)
			return
		}
		if !b.hasIndex {
			fail(&SchemaError{Table: *b.table, Problem: fmt.Sprintf("no global secondary index %q for the outbox", OutboxIndex)})
			return
		}
		if limit <= 0 {
			limit = DefaultPendingLimit
		}
		entries, err := b.indexEntries(ctx, limit)
		if err != nil {
			fail(err)
			return
		}
		if len(entries) == 0 {
			return
		}
		items, err := b.batchGet(ctx, entries)
		if err != nil {
			fail(err)
			return
		}
		// Group the listed commits by stream. Each stream's commits are
		// yielded in stream order, in the places (ranks) its listed commits
		// hold in the index's order, so that across streams the order stays
		// that of the index.
		type group struct {
			stream  backend.StreamID
			pk      string
			commits []storedCommit
			ranks   []int
		}
		var groups []*group
		byPK := map[string]*group{}
		for rank, e := range entries {
			item, ok := items[e.key()]
			if !ok {
				continue // deleted since the index listed it
			}
			stream, ok := parseStream(e.pk)
			if !ok {
				fail(&backend.CorruptError{Where: "table " + strconv.Quote(*b.table) + ", item stream=" + strconv.Quote(e.pk),
					Reason: "the partition key is not a stream"})
				return
			}
			c, err := newDecoder(*b.table, stream).commit(item)
			if err != nil {
				fail(err)
				return
			}
			if !c.pending {
				continue // published since the index listed it
			}
			g := byPK[e.pk]
			if g == nil {
				g = &group{stream: stream, pk: e.pk}
				byPK[e.pk] = g
				groups = append(groups, g)
			}
			g.commits = append(g.commits, c)
			g.ranks = append(g.ranks, rank)
		}
		type placed struct {
			rank, sub int
			stream    backend.StreamID
			c         storedCommit
		}
		var out []placed
		for _, g := range groups {
			slices.SortFunc(g.commits, func(x, y storedCommit) int { return cmp.Compare(x.first, y.first) })
			for i := 1; i < len(g.commits); i++ {
				if g.commits[i].first != g.commits[i-1].last+1 {
					g.commits = g.commits[:i] // the commits between are not listed yet
					break
				}
			}
			earlier, err := b.pendingBefore(ctx, g.stream, g.pk, g.commits[0].first, limit)
			if err != nil {
				fail(err)
				return
			}
			if earlier == nil {
				continue // too many earlier pending commits to walk back over now
			}
			for i, c := range earlier {
				out = append(out, placed{rank: g.ranks[0], sub: i - len(earlier), stream: g.stream, c: c})
			}
			for i, c := range g.commits {
				out = append(out, placed{rank: g.ranks[i], stream: g.stream, c: c})
			}
		}
		slices.SortFunc(out, func(x, y placed) int { return cmp.Or(cmp.Compare(x.rank, y.rank), cmp.Compare(x.sub, y.sub)) })
		for _, p := range out[:min(len(out), limit)] {
			if !yield(p.c.commit(p.stream), nil) {
				return
			}
		}
	}
}

// pendingBefore returns the pending commits of the stream just before
// first, oldest first, reading back until a commit that is not pending (or
// the start of the stream): an empty, non-nil slice when the commit before
// first is published. It returns nil when more than limit commits would
// have to be read.
func (b *Backend) pendingBefore(ctx context.Context, stream backend.StreamID, pk string, first int64, limit int) ([]storedCommit, error) {
	var earlier []storedCommit
	d := newDecoder(*b.table, stream)
	for steps := 0; first > 1 && !b.published.Known(pk, first-1); steps++ {
		if steps == limit {
			return nil, nil
		}
		item, err := b.commitBefore(ctx, pk, first)
		if err != nil {
			return nil, err
		}
		if item == nil {
			return nil, d.corrupt(first, "no commit before the one at sequence "+strconv.FormatInt(first, 10))
		}
		c, err := d.commit(item)
		if err != nil {
			return nil, err
		}
		if c.last != first-1 {
			return nil, d.corrupt(c.first, "the commit ends at sequence "+strconv.FormatInt(c.last, 10)+
				", but the next one starts at "+strconv.FormatInt(first, 10))
		}
		if !c.pending {
			b.published.Note(pk, c.last)
			break
		}
		earlier = append(earlier, c)
		first = c.first
	}
	slices.Reverse(earlier)
	if earlier == nil {
		earlier = []storedCommit{}
	}
	return earlier, nil
}

// indexEntries reads the oldest limit entries of the outbox index, over all
// shards, sorted by append time.
func (b *Backend) indexEntries(ctx context.Context, limit int) ([]indexEntry, error) {
	var (
		wg      sync.WaitGroup
		results [outboxShards][]indexEntry
		errs    [outboxShards]error
	)
	for shard := range outboxShards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[shard], errs[shard] = b.shardEntries(ctx, shard, limit)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	var all []indexEntry
	for _, r := range results {
		all = append(all, r...)
	}
	slices.SortFunc(all, func(x, y indexEntry) int {
		return cmp.Or(cmp.Compare(x.at, y.at), cmp.Compare(x.pk, y.pk), cmp.Compare(x.seq, y.seq))
	})
	return all[:min(len(all), limit)], nil
}

// shardEntries reads the oldest limit entries of one shard of the index.
func (b *Backend) shardEntries(ctx context.Context, shard, limit int) ([]indexEntry, error) {
	in := &dynamodb.QueryInput{
		TableName:                 b.table,
		IndexName:                 aws.String(OutboxIndex),
		KeyConditionExpression:    aws.String("#ob = :shard"),
		ExpressionAttributeNames:  map[string]string{"#ob": attrShard},
		ExpressionAttributeValues: map[string]types.AttributeValue{":shard": num(int64(shard))},
		ScanIndexForward:          aws.Bool(true),
		Limit:                     aws.Int32(int32(min(limit, 1<<20))),
	}
	var out []indexEntry
	for {
		page, err := b.client.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("query shard %d of index %q: %w", shard, OutboxIndex, err)
		}
		for _, item := range page.Items {
			pk, ok1 := item[attrStream].(*types.AttributeValueMemberS)
			seq, ok2 := item[attrSeq].(*types.AttributeValueMemberN)
			at, ok3 := item[attrPendAt].(*types.AttributeValueMemberN)
			if !ok1 || !ok2 || !ok3 {
				return nil, fmt.Errorf("index %q lists an entry without its keys", OutboxIndex)
			}
			e := indexEntry{pk: pk.Value}
			var err error
			if e.seq, err = strconv.ParseInt(seq.Value, 10, 64); err != nil {
				continue // not a sort key Append writes (Load reports the item)
			}
			// An append time Append did not write sorts first (as 0); the
			// item itself is checked when it is read.
			e.at, _ = strconv.ParseInt(at.Value, 10, 64)
			out = append(out, e)
			if len(out) == limit {
				return out, nil
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// batchGet reads the items of entries with strongly consistent
// BatchGetItem calls of up to 100 keys, retrying unprocessed keys.
func (b *Backend) batchGet(ctx context.Context, entries []indexEntry) (map[string]map[string]types.AttributeValue, error) {
	items := make(map[string]map[string]types.AttributeValue, len(entries))
	for chunk := range slices.Chunk(entries, 100) {
		keys := make([]map[string]types.AttributeValue, len(chunk))
		for i, e := range chunk {
			keys[i] = map[string]types.AttributeValue{attrStream: str(e.pk), attrSeq: num(e.seq)}
		}
		req := map[string]types.KeysAndAttributes{*b.table: {Keys: keys, ConsistentRead: aws.Bool(true)}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt > 0 {
				if err := sleep(ctx, backoff(attempt)); err != nil {
					return nil, err
				}
			}
			if attempt == 10 {
				return nil, fmt.Errorf("batch get: %d keys still unprocessed after %d attempts", len(req[*b.table].Keys), attempt)
			}
			out, err := b.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("batch get: %w", err)
			}
			for _, item := range out.Responses[*b.table] {
				pk, ok1 := item[attrStream].(*types.AttributeValueMemberS)
				seq, ok2 := item[attrSeq].(*types.AttributeValueMemberN)
				if ok1 && ok2 {
					items[pk.Value+"\x00"+seq.Value] = item
				}
			}
			req = out.UnprocessedKeys
		}
	}
	return items, nil
}

// backoff returns the delay before retry attempt n (1, 2, ...) of
// unprocessed keys: 10 ms doubling, at most one second.
func backoff(n int) time.Duration {
	return min(10*time.Millisecond<<min(n-1, 7), time.Second)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// MarkPublished clears the outbox marker of the commits named, so that
// Pending no longer yields them. Marking a commit twice, or one that does
// not exist (no item at (stream, First) with that last sequence and commit
// ID), is not an error. It implements backend.Outbox.
//
// Each commit costs one UpdateItem (REMOVE of the marker, conditional on
// the item's last sequence and commit ID), which DynamoDB bills by the size
// of the whole item in 1 KB write units, plus one write to the outbox index.
// The commits of one stream are marked one after another in stream order,
// stopping at the stream's first failure; up to 8 streams are marked at
// once. Errors of every stream are joined, each naming its commit; a
// failed call may be repeated.
func (b *Backend) MarkPublished(ctx context.Context, refs []backend.CommitRef) error {
	if b.closed.Load() {
		return fmt.Errorf("dynamostore: mark commits published: %w", backend.ErrClosed)
	}
	if len(refs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dynamostore: mark commits published: %w", err)
	}
	byStream := map[backend.StreamID][]backend.CommitRef{}
	var streams []backend.StreamID
	for _, r := range refs {
		if err := r.Stream.Validate(); err != nil {
			return fmt.Errorf("dynamostore: mark commit %q published: %w", r.ID, err)
		}
		if _, ok := byStream[r.Stream]; !ok {
			streams = append(streams, r.Stream)
		}
		byStream[r.Stream] = append(byStream[r.Stream], r)
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, markWorkers)
	)
	for _, s := range streams {
		rs := byStream[s]
		slices.SortFunc(rs, func(x, y backend.CommitRef) int { return cmp.Compare(x.First, y.First) })
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := b.markStream(ctx, rs); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// markStream marks refs, all of one stream and in stream order.
func (b *Backend) markStream(ctx context.Context, refs []backend.CommitRef) error {
	for _, r := range refs {
		if r.First < 1 || r.Last < r.First || backend.ValidCommitID(r.ID) != nil {
			continue // names no commit with a pending marker
		}
		pk := r.Stream.String()
		_, err := b.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                b.table,
			Key:                      map[string]types.AttributeValue{attrStream: str(pk), attrSeq: num(r.First)},
			UpdateExpression:         aws.String("REMOVE #ob, #obt"),
			ConditionExpression:      aws.String("#last = :last AND #id = :id"),
			ExpressionAttributeNames: map[string]string{"#ob": attrShard, "#obt": attrPendAt, "#last": attrLast, "#id": attrCommitID},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":last": num(r.Last),
				":id":   str(r.ID),
			},
		})
		var ccf *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &ccf):
			continue // no such commit
		case err != nil:
			return fmt.Errorf("dynamostore: mark commit %q of %s (sequences %d to %d) published: %w", r.ID, r.Stream, r.First, r.Last, err)
		}
		b.published.Note(pk, r.Last)
	}
	return nil
}
