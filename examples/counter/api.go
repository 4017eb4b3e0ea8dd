package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
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

// newRouter returns the HTTP API over counters:
//
//	POST /counters/:name/increment   body {"by": n} optional, n in 1..1000 (default 1)
//	GET  /counters/:name
//	GET  /healthz
func newRouter(counters *Counters, log *slog.Logger) *gin.Engine {
	h := &api{counters: counters, log: log}
	r := gin.New()
	r.HandleMethodNotAllowed = true // 405, not 404, for a known path with the wrong method
	r.RedirectTrailingSlash = false // 404 JSON rather than a redirect for "/counters/a/"
	r.Use(accessLog(log), recovery(log))
	r.NoRoute(func(c *gin.Context) { c.JSON(http.StatusNotFound, errorBody{"no such route"}) })
	r.NoMethod(func(c *gin.Context) { c.JSON(http.StatusMethodNotAllowed, errorBody{"method not allowed"}) })

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/counters/:name", h.handle(h.get))
	r.POST("/counters/:name/increment", h.handle(h.increment))
	return r
}

// api holds what the handlers need. It is safe for concurrent use.
type api struct {
	counters *Counters
	log      *slog.Logger
}

func (a *api) get(c *gin.Context) (any, error) {
	name, err := counterName(c)
	if err != nil {
		return nil, err
	}
	return a.counters.Get(c.Request.Context(), name)
}

func (a *api) increment(c *gin.Context) (any, error) {
	name, err := counterName(c)
	if err != nil {
		return nil, err
	}
	by, err := parseIncrement(c.Writer, c.Request)
	if err != nil {
		return nil, err
	}
	return a.counters.Increment(c.Request.Context(), name, by)
}

// handle turns a handler's result into a 200 JSON response, or its error
// into a JSON error with the matching status.
func (a *api) handle(fn func(*gin.Context) (any, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		v, err := fn(c)
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
	if status == http.StatusInternalServerError {
		a.log.ErrorContext(c.Request.Context(), "request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "error", err)
		msg = "internal server error" // details stay in the log
		if errors.Is(err, es.ErrUnknownOutcome) {
			msg = "the store did not confirm the increment: it may or may not have been applied; read the counter before retrying"
		}
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
// An empty body, {} and null mean by 1. It fails with an *http.MaxBytesError
// for a body over maxBodyBytes, and with errBadRequest for anything but one
// JSON object with at most the field "by", an integer in 1..maxIncrement.
func parseIncrement(w http.ResponseWriter, r *http.Request) (int64, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return 0, fmt.Errorf("%w: reading body: %w", errBadRequest, err) // 413 if too large: see statusOf
	}
	var req struct {
		By *int64 `json:"by"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return 0, fmt.Errorf("%w: body must be a JSON object like {\"by\": 1}: %v", errBadRequest, err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return 0, fmt.Errorf("%w: unexpected data after the JSON object", errBadRequest)
		}
	}
	if req.By == nil {
		return 1, nil
	}
	if by := *req.By; by < 1 || by > maxIncrement {
		return 0, fmt.Errorf("%w: \"by\" must be between 1 and %d, not %d", errBadRequest, maxIncrement, by)
	}
	return *req.By, nil
}

// accessLog logs one line per request.
func accessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		log.InfoContext(c.Request.Context(), "request", "method", c.Request.Method, "path", c.Request.URL.Path,
			"status", c.Writer.Status(), "duration", time.Since(start))
	}
}

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
