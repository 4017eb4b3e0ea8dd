package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// The domain API, without HTTP: Counters runs commands against counters kept
// in any event store.
func ExampleCounters() {
	ctx := context.Background()
	counters, err := NewCounters(es.NewStore(memory.NewBackend()), 10, es.DefaultRetryPolicy(), 100)
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := counters.Increment(ctx, "visits", 7)
	fmt.Printf("%+v %v\n", v, err)

	_, err = counters.Increment(ctx, "visits", 4)
	fmt.Println(errors.Is(err, ErrMaxExceeded), err)

	v, err = counters.Get(ctx, "visits")
	fmt.Printf("%+v %v\n", v, err)
	// Output:
	// {Name:visits Count:7 Sequence:1} <nil>
	// true counter maximum exceeded: 7 + 4 is more than 10
	// {Name:visits Count:7 Sequence:1} <nil>
}

// The HTTP API, as a curl session would see it.
func Example_http() {
	counters, err := NewCounters(es.NewStore(memory.NewBackend()), 10, exampleRetryPolicy(), 100)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(newRouter(counters, slog.New(slog.DiscardHandler), 5*time.Second))
	defer srv.Close()

	send := func(method, path, body string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		fmt.Print(resp.StatusCode, " ")
		io.Copy(os.Stdout, resp.Body)
		fmt.Println()
	}
	send("POST", "/counters/visits/increment", "")
	send("POST", "/counters/visits/increment", `{"by": 5}`)
	send("GET", "/counters/visits", "")
	send("POST", "/counters/visits/increment", `{"by": 5}`)
	send("POST", "/counters/visits/increment", `{"by": 0}`)
	send("GET", "/counters/nobody", "")
	// Output:
	// 200 {"name":"visits","count":1,"sequence":1}
	// 200 {"name":"visits","count":6,"sequence":2}
	// 200 {"name":"visits","count":6,"sequence":2}
	// 422 {"error":"counter maximum exceeded: 6 + 5 is more than 10"}
	// 400 {"error":"bad request: \"by\" must be between 1 and 1000, not 0"}
	// 404 {"error":"counter not found: \"nobody\""}
}
