package eventsourcing_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The layout of the repository is part of its design (DESIGN.md, "Layers and
// who imports whom"); this test keeps it so. It reads every package of every
// module of the workspace (go.work) with `go list`.

const rootModule = "github.com/aggregatekit/eventsourcing"

type listedPackage struct {
	ImportPath string
	Name       string
	Dir        string
	Standard   bool
	Module     *struct{ Path string }
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	args := []string{"list", "-e", "-json"}
	for _, dir := range strings.Fields(string(out)) {
		args = append(args, dir+"/...")
	}
	cmd := exec.Command("go", args...)
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// rel returns the package's path inside the repository ("" for the root).
func rel(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, rootModule), "/")
}

func under(path, dir string) bool { return path == dir || strings.HasPrefix(path, dir+"/") }

func TestLayout(t *testing.T) {
	pkgs := listPackages(t)
	modules := map[string]bool{}
	for _, p := range pkgs {
		if p.Module != nil {
			modules[p.Module.Path] = true
		}
	}
	t.Logf("%d modules in the workspace, %d packages", len(modules), len(pkgs))
	stdlib := map[string]bool{}
	for _, p := range pkgs {
		for _, d := range p.Deps {
			if !strings.Contains(strings.Split(d, "/")[0], ".") {
				stdlib[d] = true
			}
		}
	}
	for _, p := range pkgs {
		path := rel(p.ImportPath)
		// The root module depends on the standard library only.
		if p.Module != nil && p.Module.Path == rootModule {
			for _, d := range p.Deps {
				if !stdlib[d] && !under(d, rootModule) {
					t.Errorf("%s (root module) depends on %s: the root module may use the standard library only", p.ImportPath, d)
				}
			}
		}
		for _, imp := range p.Imports {
			ip := rel(imp)
			if !strings.HasPrefix(imp, rootModule) {
				continue
			}
			switch {
			case path == "backend" || under(path, "backend"):
				if !under(ip, "backend") {
					t.Errorf("%s imports %s: package backend and its suite import only the standard library", p.ImportPath, imp)
				}
			case path == "":
				if !under(ip, "backend") && !under(ip, "internal") {
					t.Errorf("package eventsourcing imports %s: it may import only backend", imp)
				}
			case under(path, "stores"):
				if ip == "" || under(ip, "middleware") || under(ip, "relay") || under(ip, "projection") {
					t.Errorf("store %s imports %s: stores import backend only", p.ImportPath, imp)
				}
			case under(path, "middleware"), under(path, "relay"), under(path, "projection"):
				if under(ip, "stores") {
					t.Errorf("%s imports the store %s: middleware and the read side never import stores", p.ImportPath, imp)
				}
			}
		}
		// A package is named after its directory (commands excepted), and
		// not after a package it imports.
		if p.Name != "main" && p.Name != filepath.Base(p.ImportPath) && !(path == "" && p.Name == "eventsourcing") {
			t.Errorf("package %s is named %s, not after its directory", p.ImportPath, p.Name)
		}
		for _, imp := range p.Imports {
			if !under(imp, rootModule) && filepath.Base(imp) == p.Name {
				t.Errorf("package %s has the name of the package %s it imports: a user would need an alias", p.ImportPath, imp)
			}
		}
	}
}

// The conformance suites export their Run functions and options, nothing
// else, in the shape of testing/slogtest.
func TestSuiteExports(t *testing.T) {
	for dir, want := range map[string][]string{
		"backend/backendtest": {"Option", "RunBackend", "RunCheckpoints", "RunFeed", "RunOutbox", "RunSnapshotStore",
			"WithEventualConsistency", "WithLongStream", "WithSecondInstance"},
		"storetest": {"RunEventStore", "RunStress", "StressConfig", "StressResult"},
	} {
		got := exported(t, dir)
		if !slices.Equal(got, want) {
			t.Errorf("%s exports %v, want %v", dir, got, want)
		}
	}
	t.Logf("package eventsourcing exports %d names", len(exported(t, ".")))
}

// exported returns the sorted exported top-level names of the package in dir
// (methods and test files excluded).
func exported(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		{
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if d.Recv == nil && d.Name.IsExported() {
						names = append(names, d.Name.Name)
					}
				case *ast.GenDecl:
					for _, s := range d.Specs {
						switch s := s.(type) {
						case *ast.TypeSpec:
							if s.Name.IsExported() {
								names = append(names, s.Name.Name)
							}
						case *ast.ValueSpec:
							for _, n := range s.Names {
								if n.IsExported() {
									names = append(names, n.Name)
								}
							}
						}
					}
				}
			}
		}
	}
	slices.Sort(names)
	return names
}
