package eventsourcing

import (
	"context"
	"errors"
	"fmt"
	"reflect"
)

// ErrNotFound reports a key whose stream has no events where the caller
// asked for an existing aggregate (Repository.Load and
// Repository.HandleExisting). Nothing was stored.
var ErrNotFound = errors.New("eventsourcing: aggregate not found")

// Aggregate is what a Repository holds: a pointer to a struct that embeds
// AggregateBase, such as *Account for
//
//	type Account struct {
//		eventsourcing.AggregateBase `json:"-"`
//		Balance int64
//	}
//
// Every such pointer implements it through the methods AggregateBase
// promotes; no other type can.
type Aggregate interface {
	Handle(ctx context.Context, cmd any) error
	Refresh(ctx context.Context) error
	Key() string
	StreamID() StreamID
	SequenceNumber() int64
	aggregateBase() *AggregateBase
}

func (b *AggregateBase) aggregateBase() *AggregateBase { return b }

// Factory returns a new aggregate instance for key, bound to registry and
// store with Initialize, wired with AutomaticWireup (or
// DefineCommandHandler and DefineReplayMethod), and configured (aggregate
// type, retry policy, ignored events, dependencies in unexported fields),
// but not loaded. It is the constructor an application writes once per
// aggregate type and shares between its Repository and its tests (see
// package aggregatetest):
//
//	func NewAccount(key string, registry es.EventRegistry, store es.EventStore) (*Account, error) {
//		a := &Account{}
//		a.Initialize(key, registry, store, func() any { return a })
//		return a, a.AutomaticWireup(a)
//	}
//
// It is called once per Repository call, so it should do no I/O. What an
// instance costs: the struct, the state closure, the instance's own
// binding (one allocation), and AutomaticWireup, which after the first
// instance of a type is a cache lookup, with no reflection over methods. A
// Factory that binds with a Kind made over the same registry and store
// costs the struct alone:
//
//	func(key string, _ es.EventRegistry, _ es.EventStore) (*Account, error) {
//		a := &Account{}
//		return a, accounts.Bind(a, key) // accounts: es.NewKind[*Account](registry, store)
//	}
type Factory[A Aggregate] func(key string, registry EventRegistry, store EventStore) (A, error)

// Repository loads aggregates of one type by key and runs commands on
// them, one fresh instance per call built by its Factory, so an instance
// never outlives a call and its configuration never depends on what an
// earlier call left in it (Do with WithInstanceCache is the exception: it
// keeps loaded instances between calls). A Repository is safe for
// concurrent use (if its Factory is): concurrent calls work on their own
// instances and the store arbitrates between them, retrying a command that
// lost a conflict from fresh state as AggregateBase.Handle does.
//
// The context of a call may carry a command ID (WithCommandID: the command
// then applies once however often it is repeated), a retry policy
// (WithRetryPolicy: it replaces the one the Factory set, for that call),
// and metadata (WithMetadata).
type Repository[A Aggregate] struct {
	registry EventRegistry
	store    EventStore
	factory  Factory[A]
	cache    *instanceCache[A] // nil: no cache (see WithInstanceCache)
}

// RepositoryOption configures NewRepository.
type RepositoryOption func(*repositoryConfig)

type repositoryConfig struct{ cache int }

// WithInstanceCache makes the Repository keep up to n loaded instances, the
// most recently used, for Do: a call for a key whose instance is kept loads
// only the events stored since its last use instead of the whole stream (or
// a snapshot and its tail), and calls for one key in one process take turns
// on its instance instead of racing each other through the store. n <= 0
// means no cache. Instances are kept between calls, so their Factory must
// not give them anything a call must not share (a request's data); the
// other methods still build a fresh instance per call. A kept instance
// recognises a repeated command ID within its idempotency window (see
// WithCommandID), as any long-lived instance does. The cache holds memory
// in proportion to n times an aggregate's state; it is per Repository,
// never shared between processes, and needs no invalidation: every call
// loads what other writers stored since.
func WithInstanceCache(n int) RepositoryOption {
	return func(c *repositoryConfig) { c.cache = n }
}

// NewRepository returns a Repository of the aggregates factory builds over
// registry and store. A nil argument makes every call fail with an error
// matching ErrNotInitialized.
func NewRepository[A Aggregate](registry EventRegistry, store EventStore, factory Factory[A], opts ...RepositoryOption) *Repository[A] {
	var cfg repositoryConfig
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	r := &Repository[A]{registry: registry, store: store, factory: factory}
	if cfg.cache > 0 {
		r.cache = newInstanceCache[A](cfg.cache)
	}
	return r
}

// Do gives fn exclusive use of the aggregate with key, refreshed from the
// store: fn may run commands on it (a.Handle, a.Run) and read its state,
// which no other call changes until fn returns. Do returns fn's error, or the
// error of the refresh (fn does not run then). The first command fn runs
// with Do's context decides on the state Do loaded, without loading again
// (if another process writes in between, its commit conflicts and is
// retried from fresh state as usual).
//
// With WithInstanceCache the instance comes from the cache and stays there
// for the next call (fn must not keep it beyond its return); without, it is
// a fresh instance from the Factory. If fn panics, the instance is dropped
// from the cache and the panic goes on. The context's command ID and retry
// policy apply to the commands fn runs with that context.
func (r *Repository[A]) Do(ctx context.Context, key string, fn func(ctx context.Context, a A) error) error {
	if fn == nil {
		return fmt.Errorf("%w: nil function", ErrInvalidCommand)
	}
	if r.cache == nil {
		a, b, err := r.instance(ctx, key)
		if err != nil {
			return err
		}
		if err := b.prime(ctx); err != nil {
			return err
		}
		return fn(ctx, a)
	}
	e, err := r.cache.checkout(ctx, key, func() (A, error) { // an error is not kept
		a, _, err := r.instance(context.Background(), key)
		return a, err
	})
	if err != nil {
		return err
	}
	ok := false
	defer func() { r.cache.release(e, ok) }()
	b := e.a.aggregateBase()
	var saved *RetryPolicy
	if p, has := RetryPolicyFrom(ctx); has { // for this call only
		prev := b.options().retry
		saved, b.ext().retry = &prev, p
	}
	err = b.prime(ctx)
	if err == nil {
		err = fn(ctx, e.a)
		b.unprime()
	}
	if saved != nil {
		b.ext().retry = *saved
	}
	ok = true
	return err
}

// New returns a new, unloaded instance for key from the Factory, with the
// context's retry policy applied, for a caller that wants to drive it
// itself (AggregateBase.Run, say).
func (r *Repository[A]) New(ctx context.Context, key string) (A, error) {
	a, _, err := r.instance(ctx, key)
	return a, err
}

// Load returns the aggregate with key loaded from the store, or an error
// matching ErrNotFound if its stream has no events.
func (r *Repository[A]) Load(ctx context.Context, key string) (A, error) {
	var zero A
	a, b, err := r.instance(ctx, key)
	if err != nil {
		return zero, err
	}
	if err := b.Refresh(ctx); err != nil {
		return zero, err
	}
	if b.run.seq == 0 {
		return zero, fmt.Errorf("%w: %s", ErrNotFound, b.StreamID())
	}
	return a, nil
}

// Handle loads the aggregate with key and runs cmd on it
// (AggregateBase.Handle), creating the stream if it has no events yet, and
// returns the aggregate with the command's events applied. On error it
// returns the zero A and the error of Handle.
func (r *Repository[A]) Handle(ctx context.Context, key string, cmd any) (A, error) {
	var zero A
	a, b, err := r.instance(ctx, key)
	if err != nil {
		return zero, err
	}
	if err := b.Handle(ctx, cmd); err != nil {
		return zero, err
	}
	return a, nil
}

// HandleExisting is Handle for an aggregate that must already exist: if
// the stream of key has no events it runs no handler, stores nothing and
// returns an error matching ErrNotFound. The check is made on the state
// each attempt decides on, so it holds under concurrent writers.
func (r *Repository[A]) HandleExisting(ctx context.Context, key string, cmd any) (A, error) {
	var zero A
	a, b, err := r.instance(ctx, key)
	if err != nil {
		return zero, err
	}
	decide, err := b.handlerFor(cmd)
	if err != nil {
		return zero, err
	}
	err = b.Run(ctx, func(ctx context.Context) ([]Event, error) {
		if b.run.seq == 0 {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, b.run.stream)
		}
		return decide(ctx)
	})
	if err != nil {
		return zero, err
	}
	return a, nil
}

// instance builds a fresh instance for key and applies the context's
// retry policy.
func (r *Repository[A]) instance(ctx context.Context, key string) (A, *AggregateBase, error) {
	var zero A
	if r.registry == nil || r.store == nil || r.factory == nil {
		return zero, nil, fmt.Errorf("%w: NewRepository needs a registry, a store and a factory", ErrNotInitialized)
	}
	a, err := r.factory(key, r.registry, r.store)
	if err != nil {
		return zero, nil, err
	}
	if v := reflect.ValueOf(a); !v.IsValid() || (v.Kind() == reflect.Pointer && v.IsNil()) {
		return zero, nil, fmt.Errorf("%w: the factory returned a nil %T for key %q", ErrNotInitialized, a, key)
	}
	b := a.aggregateBase()
	if b == nil {
		return zero, nil, fmt.Errorf("%w: the factory returned a %T without an AggregateBase for key %q", ErrNotInitialized, a, key)
	}
	if b.Key() != key {
		return zero, nil, fmt.Errorf("%w: the factory built key %q when asked for %q", ErrNotInitialized, b.Key(), key)
	}
	if p, ok := RetryPolicyFrom(ctx); ok {
		b.options().retry = p
	}
	return a, b, nil
}

type retryPolicyKey struct{}

// WithRetryPolicy returns a context that makes the Repository calls made
// with it retry conflicting commands under p instead of the policy their
// Factory set. An aggregate used directly keeps the policy given to
// SetRetryPolicy.
func WithRetryPolicy(ctx context.Context, p RetryPolicy) context.Context {
	return context.WithValue(ctx, retryPolicyKey{}, p)
}

// RetryPolicyFrom returns the retry policy carried by ctx, if any.
func RetryPolicyFrom(ctx context.Context) (RetryPolicy, bool) {
	p, ok := ctx.Value(retryPolicyKey{}).(RetryPolicy)
	return p, ok
}
