package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/gin-gonic/gin"
)

// Limits on requests.
const (
	maxBodyBytes = 1 << 10 // larger increment bodies get 413
	maxIncrement = 1000    // largest "by" one request may ask for
	maxNameLen   = 64
)

// errBadRequest marks errors caused by a malformed request (400).
var errBadRequest = errors.New("bad request")

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// idempotencyHeader names the request header that makes an increment
// idempotent: repeated with the same value, it applies once.
const idempotencyHeader = "Idempotency-Key"

// healthTimeout bounds the store check of GET /healthz.
const healthTimeout = 2 * time.Second

// newRouter returns the HTTP API over counters:
//
//	POST /counters/:name/increment   body {"by": n} optional, n in 1..1000 (default 1);
//	                                 header Idempotency-Key optional
//	GET  /counters/:name
//	GET  /counters                   ?after=<name>&limit=<n>: all counters, paged, in name order
//	GET  /healthz                    checks that the store answers
//
// Every request's work is bounded by timeout: a store that does not answer in
// time gets the client a 503 (nothing was written) or, when the increment was
// sent but not confirmed, a 500 that says so. It is bounded by timeout only:
// a client that hangs up does not cancel it, so an increment it started
// finishes (or times out) rather than being cut off mid-write, where its
// outcome would become unknown.
func newRouter(counters *Counters, log *slog.Logger, timeout time.Duration) *gin.Engine {
	h := &api{counters: counters, log: log, timeout: timeout}
	r := gin.New()
	r.HandleMethodNotAllowed = true // 405, not 404, for a known path with the wrong method
	r.RedirectTrailingSlash = false // 404 JSON rather than a redirect for "/counters/a/"
	r.Use(accessLog(log), recovery(log))
	r.NoRoute(func(c *gin.Context) { c.JSON(http.StatusNotFound, errorBody{"no such route"}) })
	r.NoMethod(func(c *gin.Context) { c.JSON(http.StatusMethodNotAllowed, errorBody{"method not allowed"}) })

	r.GET("/healthz", h.handle(h.health))
	r.GET("/counters", h.handle(h.list))
	r.GET("/counters/:name", h.handle(h.get))
	r.POST("/counters/:name/increment", h.handle(h.increment))
	return r
}

// api holds what the handlers need. It is safe for concurrent use.
type api struct {
	counters *Counters
	log      *slog.Logger
	timeout  time.Duration // of each request's work
}

func (a *api) health(ctx context.Context, c *gin.Context) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	if err := a.counters.Health(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", errUnhealthy, err)
	}
	return gin.H{"status": "ok"}, nil
}

// errUnhealthy marks a failed store check (503).
var errUnhealthy = errors.New("the store does not answer")

func (a *api) get(ctx context.Context, c *gin.Context) (any, error) {
	name, err := counterName(c)
	if err != nil {
		return nil, err
	}
	return a.counters.Get(ctx, name)
}

// listPage is the answer of GET /counters.
type listPage struct {
	Counters []CounterView `json:"counters"`
	Next     string        `json:"next,omitempty"` // the after of the next page, if there may be one
}

// Limits of GET /counters.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

func (a *api) list(ctx context.Context, c *gin.Context) (any, error) {
	after := c.Query("after")
	if after != "" && !validName(after) {
		return nil, fmt.Errorf("%w: after must be a counter name", errBadRequest)
	}
	limit := defaultListLimit
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListLimit {
			return nil, fmt.Errorf("%w: limit must be an integer from 1 to %d", errBadRequest, maxListLimit)
		}
		limit = n
	}
	views, err := a.counters.List(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	page := listPage{Counters: views}
	if len(views) == limit {
		page.Next = views[len(views)-1].Name
	}
	return page, nil
}

func (a *api) increment(ctx context.Context, c *gin.Context) (any, error) {
	name, err := counterName(c)
	if err != nil {
		return nil, err
	}
	by, err := parseIncrement(c.Writer, c.Request)
	if err != nil {
		return nil, err
	}
	ctx, err = commandContext(ctx, name, c.GetHeader(idempotencyHeader))
	if err != nil {
		return nil, err
	}
	return a.counters.Increment(ctx, name, by)
}

// commandContext returns ctx carrying the command ID of an increment with
// the given Idempotency-Key, if any. The ID is qualified with the counter,
// since a client may use one key for increments of several counters and
// command IDs are unique across the store; keys too long for a command ID
// are replaced by a hash of themselves.
func commandContext(ctx context.Context, name, key string) (context.Context, error) {
	if key == "" {
		return ctx, nil
	}
	if len(key) > 255 {
		return nil, fmt.Errorf("%w: %s is longer than 255 characters", errBadRequest, idempotencyHeader)
	}
	id := "counter/" + name + "/" + key
	if len(id) > 128 {
		sum := sha256.Sum256([]byte(key))
		id = "counter/" + name + "/sha256:" + hex.EncodeToString(sum[:16])
	}
	if err := es.ValidCommitID(id); err != nil {
		return nil, fmt.Errorf("%w: %s must be printable ASCII without spaces", errBadRequest, idempotencyHeader)
	}
	return es.WithCommandID(ctx, id), nil
}

// handle runs fn with a context bounded by the request timeout (see
// newRouter), and turns its result into a 200 JSON response, or its error
// into a JSON error with the matching status.
func (a *api) handle(fn func(context.Context, *gin.Context) (any, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), a.timeout)
		defer cancel()
		v, err := fn(ctx, c)
		if err != nil {
			a.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, v)
	}
}

func (a *api) fail(c *gin.Context, err error) {
	status := statusOf(err)
	msg := err.Error()
	switch status {
	case http.StatusInternalServerError:
		a.log.ErrorContext(c.Request.Context(), "request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "error", err)
		msg = "internal server error" // details stay in the log
		if errors.Is(err, es.ErrUnknownOutcome) {
			msg = "the store did not confirm the increment: it may or may not have been applied; " +
				"repeat it with the same Idempotency-Key to apply it exactly once, or read the counter before retrying"
		}
	case http.StatusServiceUnavailable:
		a.log.WarnContext(c.Request.Context(), "store unavailable", "method", c.Request.Method, "path", c.Request.URL.Path, "error", err)
		msg = "the store did not answer in time; nothing was written; try again"
	}
	c.JSON(status, errorBody{msg})
}

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errBadRequest), errors.Is(err, ErrInvalidIncrement):
		return http.StatusBadRequest
	case errors.Is(err, ErrCounterNotFound):
		return http.StatusNotFound
	case errors.Is(err, es.ErrConcurrency): // still conflicting after every retry
		return http.StatusConflict
	case errors.Is(err, ErrMaxExceeded):
		return http.StatusUnprocessableEntity
	case errors.Is(err, es.ErrUnknownOutcome):
		return http.StatusInternalServerError
	case errors.Is(err, errUnhealthy), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	case errors.Is(err, errNoList):
		return http.StatusNotImplemented
	default:
		return http.StatusInternalServerError
	}
}

// counterName returns the :name parameter if it is 1 to 64 characters of
// [A-Za-z0-9_-].
func counterName(c *gin.Context) (string, error) {
	name := c.Param("name")
	if !validName(name) {
		return "", fmt.Errorf("%w: counter names are 1 to %d characters of A-Z, a-z, 0-9, '_' and '-'", errBadRequest, maxNameLen)
	}
	return name, nil
}

func validName(name string) bool {
	if len(name) == 0 || len(name) > maxNameLen {
		return false
	}
	for _, r := range name {
		ok := 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

// parseIncrement reads the optional body {"by": n} of an increment request.
// An empty body, {}, null and {"by": null} mean by 1. It fails with an
// *http.MaxBytesError for a body over maxBodyBytes, and with errBadRequest
// for anything but one JSON object whose only member, if any, is "by"
// (exactly so: JSON field names are case-sensitive here, unlike in
// encoding/json, and a repeated "by" is refused rather than resolved), an
// integer in 1..maxIncrement.
func parseIncrement(w http.ResponseWriter, r *http.Request) (int64, error) {
	if r.Body == nil || r.Body == http.NoBody { // the server's body of a request without one
		return 1, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return 0, fmt.Errorf("%w: reading body: %w", errBadRequest, err) // 413 if too large: see statusOf
	}
	by, err := incrementOf(body)
	if err != nil {
		return 0, fmt.Errorf("%w: body must be a JSON object like {\"by\": 1}: %v", errBadRequest, err)
	}
	if by < 1 || by > maxIncrement {
		return 0, fmt.Errorf("%w: \"by\" must be between 1 and %d, not %d", errBadRequest, maxIncrement, by)
	}
	return by, nil
}

// incrementOf parses an increment body token by token, so that it sees what
// encoding/json would forgive: field names in another case and repeated
// fields.
func incrementOf(body []byte) (int64, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return 1, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	by := int64(1)
	tok, err := dec.Token()
	switch {
	case err != nil:
		return 0, err
	case tok == nil: // null
	case tok != json.Delim('{'):
		return 0, fmt.Errorf("found %v", tok)
	default:
		seen := false
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return 0, err
			}
			if key != "by" {
				return 0, fmt.Errorf("unknown field %q", key)
			}
			if seen {
				return 0, errors.New(`"by" appears twice`)
			}
			seen = true
			val, err := dec.Token()
			if err != nil {
				return 0, err
			}
			switch v := val.(type) {
			case nil:
			case json.Number:
				n, err := strconv.ParseInt(string(v), 10, 64)
				if err != nil {
					return 0, fmt.Errorf(`"by" is %s, not an integer`, v)
				}
				by = n
			default:
				return 0, fmt.Errorf(`"by" is %v, not a number`, v)
			}
		}
		if _, err := dec.Token(); err != nil { // the closing brace
			return 0, err
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return 0, errors.New("unexpected data after the JSON value")
	}
	return by, nil
}

// accessLog logs one line per request: at Debug level, or at Info if it
// failed (status 400 and up) or was slow, so that the log of a busy server
// at the default level holds the requests worth a look and costs nothing
// for the others (a line per request costs about a quarter of the server's
// CPU per increment; see docs/PERFORMANCE.md).
func accessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		d := time.Since(start)
		status := c.Writer.Status()
		level := slog.LevelDebug
		if status >= 400 || d >= slowRequest {
			level = slog.LevelInfo
		}
		ctx := c.Request.Context()
		if !log.Enabled(ctx, level) {
			return
		}
		log.LogAttrs(ctx, level, "request", slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path), slog.Int("status", status), slog.Duration("duration", d))
	}
}

// slowRequest is how long a successful request may take before the access
// log reports it at Info level.
const slowRequest = 500 * time.Millisecond

// recovery turns a panic in a handler into a logged 500 with a JSON body,
// instead of a dropped connection.
func recovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { // net/http's way to abort a response: let it through
				panic(v)
			}
			log.ErrorContext(c.Request.Context(), "panic serving request", "method", c.Request.Method,
				"path", c.Request.URL.Path, "panic", v, "stack", string(debug.Stack()))
			c.AbortWithStatusJSON(http.StatusInternalServerError, errorBody{"internal server error"})
		}()
		c.Next()
	}
}
