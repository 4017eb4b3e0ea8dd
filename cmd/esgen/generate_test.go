package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The committed dispatch files are what esgen writes today: a change to
// the generator, or to an aggregate's Handle and Replay methods, shows up
// here.
func TestGeneratedFileIsCurrent(t *testing.T) {
	for _, c := range []struct {
		dir   string
		types []string
	}{
		{dir: "internal/dispatchtest"},
		{dir: "examples/counter", types: []string{"Counter"}},
		{dir: "tools/bench/peers/internal/ours", types: []string{"GenAccount"}},
	} {
		dir := filepath.Join("..", "..", filepath.FromSlash(c.dir))
		got, err := generate(dir, "esgen_dispatch.go", c.types)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(dir, "esgen_dispatch.go"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s/esgen_dispatch.go is stale: run go generate ./%s\n--- generated now:\n%s", c.dir, c.dir, got)
		}
	}
}

func TestImportsAndAliases(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.go", `package shop

import (
	"context"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	cmds "example.com/shop/commands"
)

type Cart struct {
	es.AggregateBase
	Items int
}

type Added struct{ At time.Time }

func (c *Cart) HandleAdd(ctx context.Context, cmd cmds.Add) ([]es.Event, error) { return nil, nil }
func (c *Cart) ReplayAdded(e *Added) {}
func (c Cart) HandleIgnored(cmd cmds.Add) ([]es.Event, error) { return nil, nil }
func (c *Cart) helper() {}

type Plain struct{ N int }
`)
	write("b_test.go", "package shop\n") // test files are not read
	src, err := generate(dir, "esgen_dispatch.go", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`cmds "example.com/shop/commands"`,
		"case cmds.Add:\n\t\treturn a.HandleAdd(ctx, c)",
		"case *Added:\n\t\ta.ReplayAdded(e)",
		"func (a *Cart) DispatchCommand(",
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("generated code lacks %q:\n%s", want, src)
		}
	}
	for _, unwanted := range []string{"HandleIgnored", "Plain", `"time"`} {
		if strings.Contains(string(src), unwanted) {
			t.Errorf("generated code has %q:\n%s", unwanted, src)
		}
	}
	if _, err := generate(dir, "esgen_dispatch.go", []string{"Plain"}); err == nil {
		t.Error("-types with a type that is not an aggregate succeeded")
	}
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "x.go"), []byte("package x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := generate(empty, "esgen_dispatch.go", nil); err == nil {
		t.Error("a package without aggregates succeeded")
	}
}
