package integration_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	// What the README's snippets use, so that go.mod keeps it.
	_ "github.com/aggregatekit/eventsourcing/middleware/publish/natsjs"
	_ "github.com/aggregatekit/eventsourcing/middleware/telemetry"
	_ "github.com/nats-io/nats.go/jetstream"
	_ "go.opentelemetry.io/otel/sdk/metric"
	_ "go.opentelemetry.io/otel/sdk/trace"
)

// readmePrelude declares what the README's fragments use without declaring:
// a fragment is checked as it is printed, inside a function of a package
// where these names exist. Blocks that are whole programs compile alone.
const readmePrelude = `package snippets

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/aggregatetest"
	"github.com/aggregatekit/eventsourcing/middleware/publish/natsjs"
	"github.com/aggregatekit/eventsourcing/middleware/telemetry"
	"github.com/aggregatekit/eventsourcing/relay"
)

var (
	_ = json.Marshal
	_ = natsjs.New
	_ = relay.New
	_ = telemetry.New
	_ = aggregatetest.New[*Account]
)

type (
	Deposited struct{ Amount int64 }
	Withdrawn struct{ Amount int64 }
	Withdraw  struct{ Amount int64 }
	Credited  struct{ Cents int64 }
	Account   struct {
		es.AggregateBase
		Balance int64
	}
)

func NewAccount(string, es.EventRegistry, es.EventStore) (*Account, error) { return nil, nil }

var (
	ctx       context.Context
	js        jetstream.JetStream
	store     es.EventStore
	backend   es.Backend
	snapshots es.Middleware
	registry  *es.StandardEventRegistry
	tp        *sdktrace.TracerProvider
	mp        *sdkmetric.MeterProvider
)
`

// TestReadmeSnippetsCompile compiles every Go block of the README.
func TestReadmeSnippetsCompile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, part := range strings.Split(string(raw), "```go\n")[1:] {
		blocks = append(blocks, part[:strings.Index(part, "```")])
	}
	if len(blocks) < 4 {
		t.Fatalf("found %d Go blocks in README.md", len(blocks))
	}
	dir, err := os.MkdirTemp(".", "_readme") // inside this module, for its dependencies
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var fragments, pkgs []string
	for i, b := range blocks {
		if !strings.HasPrefix(b, "package main") {
			fragments = append(fragments, b)
			continue
		}
		pkg := filepath.Join(dir, "program"+string(rune('a'+i)))
		pkgs = append(pkgs, "./"+pkg)
		if err := os.MkdirAll(pkg, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkg, "main.go"), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var src strings.Builder
	src.WriteString(readmePrelude)
	for i, f := range fragments {
		if strings.HasPrefix(f, "func ") { // a whole function (a test)
			src.WriteString("\n" + f)
			continue
		}
		src.WriteString("\nfunc fragment" + string(rune('a'+i)) + "() error {\n" + f + "\nreturn err\n}\n")
	}
	if err := os.MkdirAll(filepath.Join(dir, "snippets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "snippets", "snippets.go"), []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	pkgs = append(pkgs, "./"+filepath.Join(dir, "snippets"))
	out, err := exec.Command("go", append([]string{"vet"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("README snippets do not compile:\n%s", out)
	}
	// The quick start runs and prints what the README says.
	for i, b := range blocks {
		if !strings.HasPrefix(b, "package main") {
			continue
		}
		out, err := exec.Command("go", "run", "./"+filepath.Join(filepath.Base(dir), "program"+string(rune('a'+i)))).CombinedOutput()
		if err != nil {
			t.Fatalf("README program %d: %v\n%s", i, err, out)
		}
		for _, line := range strings.Split(b, "\n") {
			if _, want, ok := strings.Cut(line, "fmt.Println("); ok {
				if _, comment, ok := strings.Cut(want, "// "); ok && !strings.Contains(string(out), comment) {
					t.Errorf("README program %d prints\n%s\nwhich lacks %q", i, out, comment)
				}
			}
		}
	}
}
