package eventsourcing

import (
	"context"
	"maps"
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
	md, _ := ctx.Value(metadataKey{}).(Metadata)
	if md == nil {
		return nil
	}
	return maps.Clone(md)
}
