package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ErrIndexMissing reports that a collection lacks an index the store needs
// for correctness, and that the store was told not to create it (see
// WithoutIndexCreation).
var ErrIndexMissing = errors.New("mongostore: required index missing")

// indexSpec is an ascending compound index the store requires.
type indexSpec struct {
	name   string
	keys   []string
	unique bool
}

// Indexes of the events collection.
var (
	// Exactly one commit may start at a given sequence of a stream: the
	// guarantee that makes racing appends safe.
	streamFirstIndex = indexSpec{name: "stream_first", keys: []string{fAggregate, fKey, fFirst}, unique: true}
	// The outbox: pending commits in marker order. An ordinary index, so
	// it also holds a null entry for every published commit; Pending reads
	// only the range of numbers.
	pendingIndex = indexSpec{name: "pending", keys: []string{fPending}}
)

// indexes returns the indexes the Backend needs: the pending index only if
// it writes the pending marker.
func (b *Backend) indexes() []indexSpec {
	if b.cfg.noMarker {
		return []indexSpec{streamFirstIndex}
	}
	return []indexSpec{streamFirstIndex, pendingIndex}
}

func (s indexSpec) String() string {
	parts := make([]string, len(s.keys))
	for i, k := range s.keys {
		parts[i] = k + ": 1"
	}
	u := ""
	if s.unique {
		u = ", unique"
	}
	return fmt.Sprintf("%s {%s}%s", s.name, strings.Join(parts, ", "), u)
}

// ensureIndexes makes sure every spec is served by an index of coll: an
// existing index with the same keys (under any name) and the same
// uniqueness, without a partial filter or a non-simple collation, counts.
// Missing ones are created if create is set, and reported with
// ErrIndexMissing otherwise.
func ensureIndexes(ctx context.Context, coll *mongo.Collection, specs []indexSpec, create bool) error {
	existing, err := listIndexes(ctx, coll)
	if err != nil {
		return fmt.Errorf("mongostore: list indexes of %s: %w", coll.Name(), err)
	}
	var missing []indexSpec
	for _, s := range specs {
		found := false
		for _, ix := range existing {
			if s.servedBy(ix) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if !create {
		names := make([]string, len(missing))
		for i, s := range missing {
			names[i] = s.String()
		}
		return fmt.Errorf("%w: collection %s.%s needs %s", ErrIndexMissing,
			coll.Database().Name(), coll.Name(), strings.Join(names, "; "))
	}
	models := make([]mongo.IndexModel, len(missing))
	for i, s := range missing {
		keys := make(bson.D, len(s.keys))
		for j, k := range s.keys {
			keys[j] = bson.E{Key: k, Value: int32(1)}
		}
		models[i] = mongo.IndexModel{Keys: keys, Options: options.Index().SetName(s.name).SetUnique(s.unique)}
	}
	if _, err := coll.Indexes().CreateMany(ctx, models); err != nil {
		return fmt.Errorf("mongostore: create indexes on %s: %w", coll.Name(), err)
	}
	return nil
}

// existingIndex is what the store checks of an index listIndexes reports.
type existingIndex struct {
	keys       []string // fields indexed in ascending order; nil if any is not ascending
	unique     bool
	restricted bool // partial, or with a non-simple collation
}

func (s indexSpec) servedBy(ix existingIndex) bool {
	if ix.restricted || ix.unique != s.unique || len(ix.keys) != len(s.keys) {
		return false
	}
	for i, k := range s.keys {
		if ix.keys[i] != k {
			return false
		}
	}
	return true
}

func listIndexes(ctx context.Context, coll *mongo.Collection) ([]existingIndex, error) {
	cur, err := coll.Indexes().List(ctx)
	if err != nil {
		var ce mongo.CommandError
		if errors.As(err, &ce) && ce.Code == 26 { // NamespaceNotFound: no collection yet
			return nil, nil
		}
		return nil, err
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	var out []existingIndex
	for cur.Next(ctx) {
		out = append(out, parseIndex(cur.Current))
	}
	return out, cur.Err()
}

func parseIndex(doc bson.Raw) existingIndex {
	var ix existingIndex
	if v, err := doc.LookupErr("unique"); err == nil {
		ix.unique, _ = v.BooleanOK()
	}
	if _, err := doc.LookupErr("partialFilterExpression"); err == nil {
		ix.restricted = true
	}
	if v, err := doc.LookupErr("collation"); err == nil {
		locale := ""
		if c, ok := v.DocumentOK(); ok {
			locale, _ = c.Lookup("locale").StringValueOK()
		}
		ix.restricted = ix.restricted || locale != "simple"
	}
	keyDoc, ok := doc.Lookup("key").DocumentOK()
	if !ok {
		return ix
	}
	elems, err := keyDoc.Elements()
	if err != nil {
		return ix
	}
	keys := make([]string, 0, len(elems))
	for _, e := range elems {
		if n, ok := e.Value().AsFloat64OK(); !ok || n != 1 {
			return ix
		}
		keys = append(keys, e.Key())
	}
	ix.keys = keys
	return ix
}
