package mongostore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/stores/mongostore"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func pendingOf(t *testing.T, o backend.Outbox, limit int) ([]backend.Commit, error) {
	t.Helper()
	var out []backend.Commit
	for c, err := range o.Pending(context.Background(), limit) {
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

func mustPending(t *testing.T, o backend.Outbox, limit int) []backend.Commit {
	t.Helper()
	out, err := pendingOf(t, o, limit)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	return out
}

func commitIDs(cs []backend.Commit) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// marker returns the pending marker of the commit of s ending at last, or
// false if it has none.
func marker(t *testing.T, f *fixture, s backend.StreamID, last int64) (int64, bool) {
	t.Helper()
	raw, err := f.coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: docID(s, last)}}).Raw()
	if err != nil {
		t.Fatalf("find commit %s: %v", docID(s, last), err)
	}
	v, err := raw.LookupErr("pending")
	if err != nil {
		return 0, false
	}
	n, ok := v.Int64OK()
	if !ok {
		t.Fatalf("pending marker of %s is %s", docID(s, last), v.Type)
	}
	return n, true
}

// setMarker gives the commit of s ending at last another pending marker, as
// a Backend whose clock is off would have written it.
func setMarker(t *testing.T, f *fixture, s backend.StreamID, last, m int64) {
	t.Helper()
	res, err := f.coll.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: docID(s, last)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "pending", Value: m}}}})
	if err != nil || res.MatchedCount != 1 {
		t.Fatalf("set marker of %s: %v (%d matched)", docID(s, last), err, res.MatchedCount)
	}
}

// The marker is part of the commit's own document, written by its one
// insert; MarkPublished removes the field and leaves the events as they
// were.
func TestPendingMarkerInTheCommitDocument(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	s := stream("marker")
	c := commitOf(s, 0, 2)
	c.Records[1].Metadata = backend.Metadata{"k": "v"}
	if err := f.b.Append(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, ok := marker(t, f, s, 2); !ok {
		t.Fatal("a new commit has no pending marker")
	}
	if err := f.b.MarkPublished(ctx, []backend.CommitRef{c.Ref()}); err != nil {
		t.Fatal(err)
	}
	if m, ok := marker(t, f, s, 2); ok {
		t.Fatalf("a published commit still has the marker %d", m)
	}
	got, err := load(ctx, f.b, s, 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("load after MarkPublished: %d records, %v", len(got), err)
	}
	for i, r := range got {
		w := c.Records[i]
		if string(r.Data) != string(w.Data) || !r.Timestamp.Equal(w.Timestamp) || r.CommitID != c.ID || len(r.Metadata) != len(w.Metadata) {
			t.Fatalf("record %d changed by MarkPublished: %+v, want %+v", i+1, r, w)
		}
	}
	// Markers one Backend writes increase strictly.
	var last int64
	for i := int64(2); i < 12; i++ {
		if err := f.b.Append(ctx, commitOf(s, i, 1)); err != nil {
			t.Fatal(err)
		}
		m, _ := marker(t, f, s, i+1)
		if m <= last {
			t.Fatalf("marker of commit %d is %d, not after %d", i+1, m, last)
		}
		last = m
	}
}

// A Backend whose clock is behind another's writes markers that sort
// before those of earlier commits: Pending still yields each stream in
// order, and still makes progress with the smallest limit.
func TestPendingOrderWhateverTheClocks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	s, other := stream("skewed"), stream("steady")
	var cs []backend.Commit
	for i := int64(0); i < 4; i++ {
		c := commitOf(s, i, 1)
		if err := f.b.Append(ctx, c); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	o := commitOf(other, 0, 1)
	if err := f.b.Append(ctx, o); err != nil {
		t.Fatal(err)
	}
	// Commit 4 of s was appended an hour "before" commit 3, and commit 3
	// an hour before commits 1 and 2: markers 4 < 3 < other < 1 < 2.
	base, _ := marker(t, f, other, 1)
	const hour = int64(3600e9)
	setMarker(t, f, s, 1, base+1)
	setMarker(t, f, s, 2, base+2)
	setMarker(t, f, s, 3, base-hour)
	setMarker(t, f, s, 4, base-2*hour)

	all := mustPending(t, f.b, 0)
	if got := commitIDs(all); len(got) != 5 {
		t.Fatalf("Pending yields %v, want 5 commits", got)
	}
	var ofS []string
	for _, c := range all {
		if c.Stream == s {
			ofS = append(ofS, c.ID)
		}
	}
	if want := commitIDs(cs); !slices.Equal(ofS, want) {
		t.Fatalf("stream %s comes out as %v, want %v", s, ofS, want)
	}
	// Limit 1: the scan reads commit 4 of s alone; Pending must find its
	// way back to commit 1.
	for round, want := range cs {
		got := mustPending(t, f.b, 1)
		if len(got) != 1 || (got[0].ID != want.ID && got[0].ID != o.ID) {
			t.Fatalf("round %d: Pending(1) yields %v, want %s (or %s of the other stream)", round, commitIDs(got), want.ID, o.ID)
		}
		if err := f.b.MarkPublished(ctx, []backend.CommitRef{got[0].Ref()}); err != nil {
			t.Fatal(err)
		}
		if got[0].ID == o.ID {
			got = mustPending(t, f.b, 1)
			if len(got) != 1 || got[0].ID != want.ID {
				t.Fatalf("round %d: Pending(1) yields %v, want %s", round, commitIDs(got), want.ID)
			}
			if err := f.b.MarkPublished(ctx, []backend.CommitRef{got[0].Ref()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if left := mustPending(t, f.b, 0); len(left) != 1 && len(left) != 0 {
		t.Fatalf("left pending: %v", commitIDs(left))
	}
}

// A commit whose predecessor is pending but was not read (because the
// limit cut the scan, or it became visible while the scan ran) is not
// yielded before it: the predecessor is looked up and yielded first.
func TestPendingFetchesAnUnreadPredecessor(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	s := stream("behind")
	first, second := commitOf(s, 0, 2), commitOf(s, 2, 1)
	for _, c := range []backend.Commit{first, second} {
		if err := f.b.Append(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := marker(t, f, s, 3)
	setMarker(t, f, s, 2, m+1)
	if ids := commitIDs(mustPending(t, f.b, 1)); !slices.Equal(ids, []string{first.ID}) {
		t.Fatalf("Pending(1) yields %v, want %v", ids, []string{first.ID})
	}
	got := mustPending(t, f.b, 2)
	if ids := commitIDs(got); !slices.Equal(ids, []string{first.ID, second.ID}) {
		t.Fatalf("Pending yields %v, want %v", ids, []string{first.ID, second.ID})
	}
	if got[0].Expected != 0 || got[0].Last() != 2 || got[1].Expected != 2 || got[1].Last() != 3 || got[1].Records[0].CommitID != second.ID {
		t.Fatalf("commits read back as %+v", got)
	}
	// Once the first is published, the second goes alone.
	if err := f.b.MarkPublished(ctx, []backend.CommitRef{first.Ref()}); err != nil {
		t.Fatal(err)
	}
	if ids := commitIDs(mustPending(t, f.b, 1)); !slices.Equal(ids, []string{second.ID}) {
		t.Fatalf("Pending yields %v, want %v", ids, []string{second.ID})
	}
}

// A damaged pending document yields a *backend.CorruptError after what can
// be yielded; the commits of its stream after it are held back, other
// streams go on.
func TestPendingCorruptDocument(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	good, bad := stream("good"), stream("bad")
	g := commitOf(good, 0, 1)
	if err := f.b.Append(ctx, g); err != nil {
		t.Fatal(err)
	}
	b1 := commitOf(bad, 0, 1)
	if err := f.b.Append(ctx, b1); err != nil {
		t.Fatal(err)
	}
	if err := f.b.MarkPublished(ctx, []backend.CommitRef{b1.Ref()}); err != nil {
		t.Fatal(err)
	}
	d := handWritten(bad, 2, 2, bson.A{bson.D{{Key: "type", Value: "Added"}, {Key: "data", Value: "not binary"}}})
	if _, err := f.coll.InsertOne(ctx, append(d, bson.E{Key: "cid", Value: "damaged"}, bson.E{Key: "pending", Value: int64(1)})); err != nil {
		t.Fatal(err)
	}
	if err := f.b.Append(ctx, commitOf(bad, 2, 1)); err != nil {
		t.Fatal(err)
	}
	got, err := pendingOf(t, f.b, 0)
	var ce *backend.CorruptError
	if !errors.As(err, &ce) || ce.Stream != bad || !strings.Contains(err.Error(), docID(bad, 2)) {
		t.Fatalf("Pending over a damaged document: got %v, want a *backend.CorruptError naming %s", err, docID(bad, 2))
	}
	if ids := commitIDs(got); !slices.Equal(ids, []string{g.ID}) {
		t.Fatalf("Pending yields %v before the error, want only %s", ids, g.ID)
	}
}

// MarkPublished clears only the commits its refs name: the commit ID must
// match too. An invalid stream is an error, and marks nothing.
func TestMarkPublishedMatchesCommitIDs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	s := stream("mark")
	c := commitOf(s, 0, 1)
	if err := f.b.Append(ctx, c); err != nil {
		t.Fatal(err)
	}
	stale := c.Ref()
	stale.ID = "another-commit"
	if err := f.b.MarkPublished(ctx, []backend.CommitRef{stale, {Stream: s, First: 0, Last: -3, ID: c.ID}}); err != nil {
		t.Fatalf("MarkPublished of commits that do not exist: %v", err)
	}
	if _, ok := marker(t, f, s, 1); !ok {
		t.Fatal("a ref with another commit ID cleared the marker")
	}
	if err := f.b.MarkPublished(ctx, []backend.CommitRef{c.Ref(), {Stream: backend.StreamID{AggregateType: "Probe"}, First: 1, Last: 1, ID: "x"}}); !errors.Is(err, backend.ErrInvalidStream) {
		t.Fatalf("MarkPublished with an invalid stream: got %v, want ErrInvalidStream", err)
	}
	if _, ok := marker(t, f, s, 1); !ok {
		t.Fatal("a refused MarkPublished cleared a marker")
	}
	// Many refs at once, in several updates.
	refs := []backend.CommitRef{c.Ref()}
	for i := 0; i < 2500; i++ {
		refs = append(refs, backend.CommitRef{Stream: s, First: int64(i + 2), Last: int64(i + 2), ID: fmt.Sprint("ghost-", i)})
	}
	if err := f.b.MarkPublished(ctx, refs); err != nil {
		t.Fatal(err)
	}
	if _, ok := marker(t, f, s, 1); ok {
		t.Fatal("MarkPublished of many refs left the marker")
	}
}

// WithoutOutbox: the Backend's commits are never pending, while
// commits another Backend marked on the same collection still are, and the
// marker-less Backend can relay them.
func TestWithoutOutbox(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	quiet := f.open(t, mongostore.WithoutOutbox())
	s := stream("quiet")
	q := commitOf(s, 0, 2)
	if err := quiet.Append(ctx, q); err != nil {
		t.Fatal(err)
	}
	if _, ok := marker(t, f, s, 2); ok {
		t.Fatal("a Backend without the marker wrote one")
	}
	loud := commitOf(s, 2, 1)
	if err := f.b.Append(ctx, loud); err != nil {
		t.Fatal(err)
	}
	for _, o := range []*mongostore.Backend{f.b, quiet} {
		if ids := commitIDs(mustPending(t, o, 0)); !slices.Equal(ids, []string{loud.ID}) {
			t.Fatalf("Pending yields %v, want only %s", ids, loud.ID)
		}
	}
	if err := quiet.MarkPublished(ctx, []backend.CommitRef{loud.Ref()}); err != nil {
		t.Fatal(err)
	}
	if left := mustPending(t, f.b, 0); len(left) != 0 {
		t.Fatalf("still pending: %v", commitIDs(left))
	}
}

// After Close, Pending and MarkPublished fail with ErrClosed.
func TestOutboxClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := f.b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pendingOf(t, f.b, 0); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Pending after Close: %v", err)
	}
	if err := f.b.MarkPublished(context.Background(), []backend.CommitRef{{Stream: stream("x"), First: 1, Last: 1, ID: "x"}}); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("MarkPublished after Close: %v", err)
	}
}

// Many writers whose clocks are each further behind: every commit's marker
// sorts below its predecessor's. Pending(1) still starts the stream.
func TestPendingLongDescendingChain(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	s := stream("descending")
	const n = 20
	var cs []backend.Commit
	for i := int64(0); i < n; i++ {
		c := commitOf(s, i, 1)
		if err := f.b.Append(ctx, c); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	top, _ := marker(t, f, s, n)
	for i := int64(1); i <= n; i++ {
		setMarker(t, f, s, i, top-i*1e9)
	}
	for _, want := range cs[:3] {
		got := mustPending(t, f.b, 1)
		if len(got) != 1 || got[0].ID != want.ID {
			t.Fatalf("Pending(1) yields %v, want %s", commitIDs(got), want.ID)
		}
		if err := f.b.MarkPublished(ctx, []backend.CommitRef{got[0].Ref()}); err != nil {
			t.Fatal(err)
		}
	}
	if got := commitIDs(mustPending(t, f.b, 0)); !slices.Equal(got, commitIDs(cs[3:])) {
		t.Fatalf("Pending yields %v, want %v", got, commitIDs(cs[3:]))
	}
}
