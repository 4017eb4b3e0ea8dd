package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
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
		{dir: "cmd/esgen/internal/jsonappendtest"},
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

// AppendJSON and DecodeJSON are written for the events of the aggregates
// esgen is asked for, and not where the package's declarations could make
// them wrong or not compile. (What it writes is compared with encoding/json by the tests
// of internal/jsonappendtest.)
func TestAppendJSONWhere(t *testing.T) {
	gen := func(src string, only ...string) string {
		t.Helper()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "a.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := generate(dir, "esgen_dispatch.go", only)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	const head = `package shop

import (
	"time"

	es "github.com/aggregatekit/eventsourcing"
)

type Cart struct{ es.AggregateBase }
type Till struct{ es.AggregateBase }

type Added struct {
	N  int64
	at time.Time
}
type Rung struct{ N int64 }

func (c *Cart) ReplayAdded(e *Added) {}
func (t *Till) ReplayRung(e Rung)    {}
`
	src := gen(head, "Cart")
	for _, want := range []string{"func (e Added) AppendJSON(dst []byte) []byte {", "\ttime \"time\"\n", "\t\"strconv\"\n",
		"func (e *Added) DecodeJSON(data []byte) error {", "\t\tcase \"N\":\n\t\t\tx.N = r.Int(64)\n",
		"var _ Added = struct {\n\tN  int64\n\tat time.Time\n}{}"} {
		if !strings.Contains(src, want) {
			t.Errorf("generated code lacks %q:\n%s", want, src)
		}
	}
	if strings.Contains(src, "Rung") {
		t.Errorf("AppendJSON for the event of an aggregate not asked for:\n%s", src)
	}
	for decl, reason := range map[string]string{
		"type int64 = float64": "Added: field N is int64, which the package redeclares",
		"var strconv = 1":      "Added: the package declares or imports another strconv",
		"func esjson() {}":     "Added: the package declares or imports another esjson",
		"func (Added) MarshalText() ([]byte, error) { return nil, nil }": "Added: has a MarshalText method",
		"func (*Added) AppendJSON(b []byte) []byte { return b }":         "Added: has an AppendJSON method already",
		"func (Added) appendJSON() {}":                                   "Added: has an appendJSON method",
		"func (*Added) UnmarshalJSON([]byte) error { return nil }":       "Added: has an UnmarshalJSON method",
		"func (*Added) UnmarshalText([]byte) error { return nil }":       "Added: has an UnmarshalText method",
		"func (*Added) DecodeJSON([]byte) error { return nil }":          "Added: has a DecodeJSON method already",
	} {
		src := gen(head+decl+"\n", "Cart")
		if strings.Contains(src, "AppendJSON(dst") || strings.Contains(src, "DecodeJSON(data") || !strings.Contains(src, "//   - "+reason+"\n") {
			t.Errorf("with %s: generated code has AppendJSON, or lacks the reason %q:\n%s", decl, reason, src)
		}
	}
	src = gen(`package shop

import (
	context "example.com/ctx"

	es "github.com/aggregatekit/eventsourcing"
)

type Cart struct{ es.AggregateBase }
type Added struct {
	N int64
	c context.T
}

func (c *Cart) ReplayAdded(e Added) {}
`)
	if reason := "Added: its file imports example.com/ctx as context, a name the generated file gives another package"; strings.Contains(src, "AppendJSON(dst") || !strings.Contains(src, reason) {
		t.Errorf("generated code has AppendJSON, or lacks the reason %q:\n%s", reason, src)
	}
	// A Handle method taking a type of another package named esjson: the
	// generated file, which imports it for the method's type switch, could
	// not import package esjson as well.
	src = gen(`package shop

import (
	"example.com/esjson"

	es "github.com/aggregatekit/eventsourcing"
)

type Cart struct{ es.AggregateBase }
type Added struct{ N int64 }

func (c *Cart) HandleAdd(cmd esjson.Add) ([]es.Event, error) { return nil, nil }
func (c *Cart) ReplayAdded(e Added)                         {}
`)
	if reason := "Added: the package declares or imports another esjson"; strings.Contains(src, "AppendJSON(dst") || !strings.Contains(src, reason) {
		t.Errorf("generated code has AppendJSON, or lacks the reason %q:\n%s", reason, src)
	}
	// Packages esjson and strconv, used by the package's own methods and
	// events as well as by AppendJSON and DecodeJSON, are imported once.
	src = gen(`package shop

import (
	"strconv"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/esjson"
)

type Cart struct{ es.AggregateBase }
type Added struct {
	N int64
	S string
	r esjson.ObjectReader
	e strconv.NumError
}

func (c *Cart) HandleAdd(cmd esjson.ObjectReader) ([]es.Event, error) { return nil, nil }
func (c *Cart) HandleParse(cmd strconv.NumError) ([]es.Event, error)  { return nil, nil }
func (c *Cart) ReplayAdded(e Added)                                   {}
`)
	for _, imp := range []string{`"github.com/aggregatekit/eventsourcing/esjson"`, `"strconv"`} {
		if n := strings.Count(src, imp); n != 1 || !strings.Contains(src, "AppendJSON(dst") {
			t.Errorf("generated code imports %s %d times, or has no AppendJSON:\n%s", imp, n, src)
		}
	}
}

// fieldKey names a field as encoding/json does, for any json tag.
func FuzzFieldKey(f *testing.F) {
	for _, tag := range []string{"", "-", "-,", "-,omitempty", "a", "a,omitempty", ",omitempty", "a,", "a,,omitempty",
		"a<b>&c", "a\"b", `a\b`, "with space", "naïve", "\u2028", "\xff", "a,string", "a,omitzero", "1", "!#$%&()*+-./:;<=>?@[]^_{|}~ "} {
		f.Add(tag)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		name, key, omit, reason := fieldKey("Field", tag)
		if reason != "" {
			return
		}
		if key != "" {
			if lit, err := strconv.Unquote(goString(key)); err != nil || lit != key {
				t.Fatalf("tag %q: key %q as Go %s", tag, key, goString(key))
			}
			if name != "Field" && !isValidTag(name) {
				t.Fatalf("tag %q: name %q is not valid", tag, name)
			}
		}
		typ := reflect.StructOf([]reflect.StructField{{Name: "Field", Type: reflect.TypeFor[int](), Tag: reflect.StructTag("json:" + strconv.Quote(tag))}})
		if got := reflect.StructTag("json:" + strconv.Quote(tag)).Get("json"); got != tag {
			t.Skipf("tag %q does not round-trip through a struct tag (%q)", tag, got)
		}
		for _, n := range []int{0, 7} {
			v := reflect.New(typ).Elem()
			v.Field(0).SetInt(int64(n))
			b, err := json.Marshal(v.Interface())
			if err != nil {
				t.Fatal(err)
			}
			want := "{" + key + strconv.Itoa(n) + "}"
			if key == "" || (omit && n == 0) {
				want = "{}"
			}
			if string(b) != want {
				t.Fatalf("tag %q, field %d: encoding/json writes %s, esgen %s", tag, n, b, want)
			}
		}
	})
}
