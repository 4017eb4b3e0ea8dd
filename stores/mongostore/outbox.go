package mongostore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"iter"
	"math"
	"slices"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// DefaultPendingLimit is the number of commits Pending yields at most when
// called with a limit <= 0.
const DefaultPendingLimit = 100

// markBatch is the number of commits one MarkPublished update names.
const markBatch = 1000

// maxPredecessorRounds bounds how many times one Pending call looks further
// back for earlier pending commits of a stream (see Pending): a safety net,
// as each round needs another commit whose marker is below its
// predecessor's.
const maxPredecessorRounds = 1000

// isPending is the filter of commit documents that carry the pending
// marker. A comparison matches only values of its own type bracket (numbers
// here), so on the pending index it reads the marked entries only, never
// the null entries of published commits.
var isPending = bson.D{{Key: fPending, Value: bson.D{{Key: "$gte", Value: int64(math.MinInt64)}}}}

// stamp returns the pending marker of a new commit: the Backend's clock in
// Unix nanoseconds, made strictly increasing per Backend so that the
// commits one Backend appends keep their order in the pending index.
func (b *Backend) stamp() int64 {
	now := time.Now().UnixNano()
	for {
		last := b.clock.Load()
		next := max(now, last+1)
		if b.clock.CompareAndSwap(last, next) {
			return next
		}
	}
}

// pendingCommit is a commit read from a document with the pending marker.
type pendingCommit struct {
	backend.Commit
	docID  string
	marker int64 // the pending marker: the appending Backend's clock
	order  int64 // the marker, raised to the order of the stream's earlier commits
}

// streamChain is what one Pending call knows of a stream's pending commits.
type streamChain struct {
	commits []*pendingCommit // sorted by First once gathered
	ids     map[string]bool  // docIDs of commits
	cleared map[int64]bool   // Expected sequences whose commit is known not to be pending
	err     error            // a damaged pending document of the stream, if any
	errAt   int64            // its last sequence (commits from there on are held back)
}

// Pending yields up to limit commits whose pending marker is set (limit <=
// 0: DefaultPendingLimit), roughly oldest first across streams and in
// stream order within each stream. It implements backend.Outbox: it never
// yields a commit while an earlier commit of its stream is pending and not
// yielded before it, whatever the clocks of the Backends that appended
// them.
//
// It reads the pending index in marker order (each marker is the
// appending Backend's clock, so the order across Backends is only as good as
// their clocks), then makes sure of each stream's order: for every stream
// whose earliest commit read does not start the stream, and for every gap
// between the commits read, it looks up the commit just before by _id. If
// that one is still pending (its Backend's clock was behind, it was
// appended while the index scan ran, or the limit cut it off), it is
// yielded first, after the same check of its own predecessor, and so on
// back to a commit whose predecessor is published or that starts its
// stream. (What is still unresolved after 1,000 such rounds is held back
// for a later call.)
//
// A damaged pending document yields a *backend.CorruptError after the
// commits that can be yielded; the commits of its stream after it are held
// back until it is repaired or its marker cleared by hand.
//
// Round trips and reads: one find on the pending index (one batch of at
// most limit documents, more getMores only when they exceed the server's
// 16 MiB reply), plus, when a yielded stream's earliest commit does not
// start the stream (the usual case once a relay runs), one find by _id
// ($in of at most one _id per stream) reading the predecessors that are
// still pending, usually none; one more such find per further round (each
// needs one more commit whose marker sorts below its predecessor's). No
// write.
func (b *Backend) Pending(ctx context.Context, limit int) iter.Seq2[backend.Commit, error] {
	return func(yield func(backend.Commit, error) bool) {
		if b.closed.Load() {
			yield(backend.Commit{}, backend.ErrClosed)
			return
		}
		if err := ctx.Err(); err != nil {
			yield(backend.Commit{}, fmt.Errorf("mongostore: pending: %w", err))
			return
		}
		if limit <= 0 {
			limit = DefaultPendingLimit
		}
		out, err := b.pending(ctx, limit)
		for _, c := range out {
			if err := ctx.Err(); err != nil {
				yield(backend.Commit{}, fmt.Errorf("mongostore: pending: %w", err))
				return
			}
			if !yield(c, nil) {
				return
			}
		}
		if err != nil {
			yield(backend.Commit{}, err)
		}
	}
}

// pending returns the commits Pending yields, in order, and the error to
// yield after them, if any.
func (b *Backend) pending(ctx context.Context, limit int) ([]backend.Commit, error) {
	opts := options.Find().SetSort(bson.D{{Key: fPending, Value: 1}}).SetLimit(int64(limit)).SetBatchSize(int32(min(limit, math.MaxInt32)))
	chains := map[backend.StreamID]*streamChain{}
	if err := b.readPending(ctx, isPending, opts, chains); err != nil {
		return nil, b.wrap(fmt.Errorf("mongostore: pending: %w", err))
	}
	for round := 0; ; round++ {
		// The commits whose predecessor is neither read nor known to be
		// published, by the _id of that predecessor.
		waiting := map[string]*streamChain{}
		for s, ch := range chains {
			slices.SortFunc(ch.commits, func(x, y *pendingCommit) int { return cmp.Compare(x.First(), y.First()) })
			for i, c := range ch.commits {
				if ch.err != nil && c.First() > ch.errAt {
					break
				}
				if c.Expected == 0 || ch.cleared[c.Expected] || (i > 0 && ch.commits[i-1].Last() == c.Expected) {
					continue
				}
				waiting[docID(s, c.Expected)] = ch
				break // the rest of the stream waits for this one anyway
			}
		}
		if len(waiting) == 0 || round == maxPredecessorRounds {
			break
		}
		ids := make([]string, 0, len(waiting))
		for id := range waiting {
			ids = append(ids, id)
		}
		found := map[backend.StreamID]*streamChain{}
		filter := append(bson.D{{Key: fID, Value: bson.D{{Key: "$in", Value: ids}}}}, isPending...)
		if err := b.readPending(ctx, filter, options.Find(), found); err != nil {
			return nil, b.wrap(fmt.Errorf("mongostore: pending: check earlier commits: %w", err))
		}
		for s, fch := range found {
			ch := chains[s]
			if ch == nil { // a damaged document names another stream
				chains[s] = fch
				continue
			}
			for _, c := range fch.commits {
				if !ch.ids[c.docID] {
					ch.ids[c.docID] = true
					ch.commits = append(ch.commits, c)
				}
			}
			if fch.err != nil && (ch.err == nil || fch.errAt < ch.errAt) {
				ch.err, ch.errAt = fch.err, fch.errAt
			}
		}
		// A predecessor looked up and not found pending is published (or
		// was never marked): the commit after it may go.
		for id, ch := range waiting {
			for _, c := range ch.commits {
				if docID(c.Stream, c.Expected) == id && !ch.ids[id] {
					if ch.cleared == nil {
						ch.cleared = map[int64]bool{}
					}
					ch.cleared[c.Expected] = true
				}
			}
		}
	}

	var out []*pendingCommit
	var firstErr error
	var errStream backend.StreamID
	for s, ch := range chains {
		order := int64(math.MinInt64)
		for i, c := range ch.commits {
			if ch.err != nil && c.First() > ch.errAt {
				break
			}
			if c.Expected != 0 && !ch.cleared[c.Expected] && (i == 0 || ch.commits[i-1].Last() != c.Expected) {
				break // its predecessor may still be pending
			}
			order = max(order, c.marker)
			c.order = order
			out = append(out, c)
		}
		if ch.err != nil && (firstErr == nil || s.String() < errStream.String()) {
			firstErr, errStream = ch.err, s // the same one every call
		}
	}
	slices.SortFunc(out, func(x, y *pendingCommit) int {
		return cmp.Or(cmp.Compare(x.order, y.order), cmp.Compare(x.Stream.String(), y.Stream.String()), cmp.Compare(x.First(), y.First()))
	})
	commits := make([]backend.Commit, 0, min(len(out), limit))
	for _, c := range out[:min(len(out), limit)] {
		commits = append(commits, c.Commit)
	}
	return commits, firstErr
}

// readPending reads the commit documents filter matches into chains, by
// stream. A document that cannot be read as a pending commit is noted on
// its stream's chain (or, when it names no valid stream, returned as the
// error of a chain of its own).
func (b *Backend) readPending(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder, chains map[backend.StreamID]*streamChain) error {
	cur, err := b.coll.Find(ctx, filter, opts)
	if err != nil {
		return err
	}
	defer closeCursor(ctx, cur)
	for cur.Next(ctx) {
		doc := bson.Raw(bytes.Clone(cur.Current))
		c, last, err := decodePending(doc)
		ch := chains[c.Stream]
		if ch == nil {
			ch = &streamChain{ids: map[string]bool{}}
			chains[c.Stream] = ch
		}
		if err != nil {
			if ch.err == nil || last < ch.errAt {
				ch.err, ch.errAt = err, last
			}
			continue
		}
		if !ch.ids[c.docID] {
			ch.ids[c.docID] = true
			ch.commits = append(ch.commits, c)
		}
	}
	return cur.Err()
}

// decodePending reads a commit document with the pending marker. On error,
// the result still names the stream, as far as it could be read, and last
// is the commit's last sequence if known (else 0, which holds back the
// whole stream).
func decodePending(doc bson.Raw) (c *pendingCommit, last int64, err error) {
	id, _ := lookup(doc, fID)
	c = &pendingCommit{}
	agg, err1 := stringField(doc, fAggregate)
	key, err2 := stringField(doc, fKey)
	c.Stream = backend.StreamID{AggregateType: agg, Key: key}
	if err := cmp.Or(err1, err2, c.Stream.Validate()); err != nil {
		return c, 0, &backend.CorruptError{Stream: c.Stream, Where: "mongostore: pending commit document " + idString(id), Reason: err.Error()}
	}
	if last, err = intField(doc, fLast); err != nil || last < 1 {
		return c, 0, corruptDoc(c.Stream, id, "pending, but %v", cmp.Or(err, fmt.Errorf("field %q is %d", fLast, last)))
	}
	if c.marker, err = intField(doc, fPending); err != nil {
		return c, last, corruptDoc(c.Stream, id, "%v", err)
	}
	recs, err := decodeCommit(c.Stream, doc, 0, nil)
	if err != nil {
		return c, last, err
	}
	c.Expected = recs[0].Sequence - 1
	c.ID = recs[0].CommitID
	c.Records = recs
	c.docID = docID(c.Stream, last)
	return c, last, nil
}

// MarkPublished clears the pending marker of the commits named, each found
// by _id and commit ID. Marking a commit twice, or one that does not exist,
// is not an error; a ref whose stream is invalid is (and nothing is
// marked).
//
// One updateMany marks up to 1,000 commits, walking the _id index (a hint),
// so that on MongoDB it clears the markers of one stream's commits in
// stream order: a write cut short by a server failure leaves each stream's
// later commits pending, not its earlier ones. Commits left pending are
// yielded again (the publisher drops them by commit ID).
//
// Round trips and writes: one update per 1,000 refs, none for no refs.
// Each commit still pending costs one _id index lookup and one document
// update ($unset of one field), which on the pending index replaces its
// marker entry by a null entry; a commit already published costs the
// lookup only.
func (b *Backend) MarkPublished(ctx context.Context, refs []backend.CommitRef) error {
	if b.closed.Load() {
		return backend.ErrClosed
	}
	if len(refs) == 0 {
		return nil
	}
	for _, r := range refs {
		if err := r.Stream.Validate(); err != nil {
			return fmt.Errorf("mongostore: mark published: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mongostore: mark %d commits of %s and others published: %w", len(refs), refs[0].Stream, err)
	}
	unset := bson.D{{Key: "$unset", Value: bson.D{{Key: fPending, Value: ""}}}}
	for start := 0; start < len(refs); start += markBatch {
		chunk := refs[start:min(start+markBatch, len(refs))]
		ids, cids := make([]string, 0, len(chunk)), make([]string, 0, len(chunk))
		for _, r := range chunk {
			if r.First < 1 || r.Last < r.First {
				continue // names no commit
			}
			ids, cids = append(ids, docID(r.Stream, r.Last)), append(cids, r.ID)
		}
		if len(ids) == 0 {
			continue
		}
		// Commit IDs are unique across the store, so the two $in lists
		// match exactly the documents the refs name.
		filter := append(bson.D{
			{Key: fID, Value: bson.D{{Key: "$in", Value: ids}}},
			{Key: fCommitID, Value: bson.D{{Key: "$in", Value: cids}}},
		}, isPending...)
		if _, err := b.coll.UpdateMany(ctx, filter, unset, b.markOpt); err != nil {
			return b.wrap(fmt.Errorf("mongostore: mark %d commits of %s and others published: %w", len(chunk), chunk[0].Stream, err))
		}
	}
	return nil
}

var _ backend.Outbox = (*Backend)(nil)
