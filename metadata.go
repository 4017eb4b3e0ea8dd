package eventsourcing

import (
	"context"
	"maps"

	"github.com/aggregatekit/eventsourcing/backend"
)

// Well-known metadata keys.
const (
	MetadataCorrelationID = "correlation_id"
	MetadataCausationID   = "causation_id"
)

type metadataKey struct{}

// WithMetadata returns a context carrying the header key=value in addition to
// any already on ctx. Every event committed with that context (or one derived
// from it) is stored with the headers. The parent's headers are not modified.
// A commit whose headers no store can keep exactly (an empty key, a key or
// value that is not valid UTF-8) fails with ErrInvalidMetadata and stores
// nothing.
func WithMetadata(ctx context.Context, key, value string) context.Context {
	parent, _ := ctx.Value(metadataKey{}).(Metadata)
	md := make(Metadata, len(parent)+1)
	maps.Copy(md, parent)
	md[key] = value
	return context.WithValue(ctx, metadataKey{}, md)
}

// WithCorrelationID returns a context whose commits carry the correlation ID.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return WithMetadata(ctx, MetadataCorrelationID, id)
}

// WithCausationID returns a context whose commits carry the causation ID.
func WithCausationID(ctx context.Context, id string) context.Context {
	return WithMetadata(ctx, MetadataCausationID, id)
}

// MetadataFrom returns a copy of the headers carried by ctx, or nil if none.
func MetadataFrom(ctx context.Context) Metadata {
	return maps.Clone(metadataOf(ctx))
}

// metadataOf returns the headers carried by ctx without copying them: the
// map is never modified after WithMetadata made it.
func metadataOf(ctx context.Context) Metadata {
	md, _ := ctx.Value(metadataKey{}).(Metadata)
	return md
}

type commandIDKey struct{}

// WithCommandID returns a context that makes the command run with it
// idempotent: its commit is stored with id as its commit ID, and if a
// commit with that ID is already stored in the aggregate's stream, Handle
// and Run report success without running the handler again (the aggregate
// then reflects the stored events). Repeat a command with the same ID after
// ErrUnknownOutcome, a timeout or a crash, and it applies exactly once.
//
// A repeat is recognised when its commit is among the commits the aggregate
// loads while handling it, or among the latest commits of the stream it
// remembers (the idempotency window, 100 commits by default: see
// AggregateBase.SetIdempotencyWindow), which snapshots keep. So it is
// recognised at any distance when the instance is fresh and the stream has
// no snapshot, and within the window otherwise.
//
// The ID must be unique across the store, since commit IDs are the
// de-duplication key downstream (brokers, projections): derive it from the
// request (an Idempotency-Key header, a message ID), and qualify it with the
// aggregate if the same key may reach several aggregates. It must be 1 to
// 128 bytes of printable ASCII without spaces (ValidCommitID); otherwise
// Handle fails with ErrInvalidCommitID. Without a command ID, each commit
// gets a new time-ordered ID (a UUID version 7).
func WithCommandID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, commandIDKey{}, id)
}

// CommandIDFrom returns the command ID carried by ctx, or "".
func CommandIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(commandIDKey{}).(string)
	return id
}

// ValidCommitID reports whether id can be a command or commit ID: 1 to 128
// bytes of printable ASCII without spaces. Errors wrap ErrInvalidCommitID.
func ValidCommitID(id string) error { return backend.ValidCommitID(id) }
