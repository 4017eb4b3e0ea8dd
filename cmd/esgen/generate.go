package main

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const esPath = "github.com/aggregatekit/eventsourcing"

// aggregate is one struct type embedding AggregateBase and its methods.
type aggregate struct {
	name     string
	handlers []method
	replays  []method
}

// method is a Handle or Replay method of an aggregate.
type method struct {
	name  string
	param string // the command or event type as written, without a leading *
	ptr   bool   // the parameter is a pointer
	ctx   bool   // a Handle method taking a context first
}

// generate reads the package in dir (except the file out) and returns the
// source of the dispatch file.
func generate(dir, out string, only []string) ([]byte, error) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") || n == filepath.Base(out) {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, errors.New("no Go files")
	}
	pkg := files[0].Name.Name
	aggs := map[string]*aggregate{}
	imports := map[string]string{} // package name used in the files -> import path
	pk := newPackageDecls(files)
	for _, f := range files {
		names := importNames(f)
		es := ""
		for name, path := range names {
			if path == esPath {
				es = name
			}
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE || es == "" {
				continue
			}
			for _, s := range g.Specs {
				ts := s.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				if !ok || ts.TypeParams != nil {
					continue
				}
				for _, fld := range st.Fields.List {
					if sel, ok := fld.Type.(*ast.SelectorExpr); ok && len(fld.Names) == 0 && sel.Sel.Name == "AggregateBase" {
						if id, ok := sel.X.(*ast.Ident); ok && id.Name == es {
							aggs[ts.Name.Name] = &aggregate{name: ts.Name.Name}
						}
					}
				}
			}
		}
		for name, path := range names {
			imports[name] = path
		}
	}
	if len(only) > 0 {
		for name := range aggs {
			if !slices.Contains(only, name) {
				delete(aggs, name)
			}
		}
		for _, name := range only {
			if aggs[name] == nil {
				return nil, fmt.Errorf("%s is not a struct embedding eventsourcing.AggregateBase in this package", name)
			}
		}
	}
	if len(aggs) == 0 {
		return nil, errors.New("no struct type embeds eventsourcing.AggregateBase in this package")
	}
	used := map[string]bool{}
	for _, f := range files {
		names := importNames(f)
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 {
				continue
			}
			star, ok := fd.Recv.List[0].Type.(*ast.StarExpr)
			if !ok {
				continue
			}
			recv, ok := star.X.(*ast.Ident)
			if !ok || aggs[recv.Name] == nil {
				continue
			}
			a := aggs[recv.Name]
			name := fd.Name.Name
			params := flatten(fd.Type.Params)
			switch {
			case strings.HasPrefix(name, "Handle") && (len(params) == 1 || len(params) == 2) && fd.Type.Results != nil && len(flatten(fd.Type.Results)) == 2:
				m := method{name: name, ctx: len(params) == 2}
				m.param, m.ptr = typeString(fset, params[len(params)-1])
				a.handlers = append(a.handlers, m)
				noteImports(params[len(params)-1], names, used)
			case strings.HasPrefix(name, "Replay") && len(params) == 1 && fd.Type.Results == nil:
				m := method{name: name}
				m.param, m.ptr = typeString(fset, params[0])
				a.replays = append(a.replays, m)
				noteImports(params[0], names, used)
			}
		}
	}
	events := appenders(fset, pk, aggs, imports, used)
	return render(pkg, aggs, imports, used, events)
}

// importNames maps the names a file uses for its imports to their paths.
func importNames(f *ast.File) map[string]string {
	out := map[string]string{}
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if path == esPath {
			name = "eventsourcing"
		}
		if imp.Name != nil {
			name = imp.Name.Name
		}
		out[name] = path
	}
	return out
}

// flatten returns one type expression per parameter.
func flatten(fl *ast.FieldList) []ast.Expr {
	if fl == nil {
		return nil
	}
	var out []ast.Expr
	for _, f := range fl.List {
		n := max(len(f.Names), 1)
		for range n {
			out = append(out, f.Type)
		}
	}
	return out
}

func typeString(fset *token.FileSet, e ast.Expr) (string, bool) {
	ptr := false
	if s, ok := e.(*ast.StarExpr); ok {
		e, ptr = s.X, true
	}
	var b bytes.Buffer
	_ = printer.Fprint(&b, fset, e)
	return b.String(), ptr
}

// noteImports records the packages a type expression refers to.
func noteImports(e ast.Expr, names map[string]string, used map[string]bool) {
	ast.Inspect(e, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				if _, ok := names[id.Name]; ok {
					used[id.Name] = true
				}
			}
		}
		return true
	})
}

func render(pkg string, aggs map[string]*aggregate, imports map[string]string, used map[string]bool, events eventSet) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by esgen; DO NOT EDIT.\n// Rerun `go run %s/cmd/esgen` when a Handle or Replay method, or the fields of an event, change.\n\n", esPath)
	fmt.Fprintf(&b, "package %s\n\nimport (\n\t\"context\"\n", pkg)
	for _, std := range events.std {
		fmt.Fprintf(&b, "\t%q\n", std)
	}
	fmt.Fprintf(&b, "\n\teventsourcing %q\n", esPath)
	if events.esjson {
		fmt.Fprintf(&b, "\tesjson %q\n", esjsonPath)
	}
	var names []string
	for name := range used {
		// The imports written above; appenders made sure that a Handle or
		// Replay method, or an event's declaration, that uses one of these
		// names means the same package.
		if name != "eventsourcing" && name != "context" && !slices.Contains(events.std, name) && !(events.esjson && name == "esjson") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "\t%s %q\n", n, imports[n])
	}
	b.WriteString(")\n")
	var types []string
	for name := range aggs {
		types = append(types, name)
	}
	slices.Sort(types)
	for _, name := range types {
		a := aggs[name]
		fmt.Fprintf(&b, "\n// DispatchEvent applies e, a value or a pointer, with the %s Replay method of its type.\n", name)
		fmt.Fprintf(&b, "func (a *%s) DispatchEvent(e eventsourcing.Event) bool {\n\tswitch e := e.(type) {\n", name)
		for _, m := range a.replays {
			if m.ptr {
				fmt.Fprintf(&b, "\tcase *%s:\n\t\ta.%s(e)\n\tcase %s:\n\t\ta.%s(&e)\n", m.param, m.name, m.param, m.name)
			} else {
				fmt.Fprintf(&b, "\tcase %s:\n\t\ta.%s(e)\n\tcase *%s:\n\t\ta.%s(*e)\n", m.param, m.name, m.param, m.name)
			}
		}
		b.WriteString("\tdefault:\n\t\treturn false\n\t}\n\treturn true\n}\n")
		fmt.Fprintf(&b, "\n// DispatchCommand runs cmd, a value or a pointer, through the %s Handle method of its type.\n", name)
		fmt.Fprintf(&b, "func (a *%s) DispatchCommand(ctx context.Context, cmd any) ([]eventsourcing.Event, error) {\n", name)
		if len(a.handlers) == 0 {
			b.WriteString("\treturn nil, eventsourcing.ErrNoHandler\n}\n")
			continue
		}
		b.WriteString("\tswitch c := cmd.(type) {\n")
		for _, m := range a.handlers {
			ctx := ""
			if m.ctx {
				ctx = "ctx, "
			}
			if m.ptr {
				fmt.Fprintf(&b, "\tcase *%s:\n\t\treturn a.%s(%sc)\n\tcase %s:\n\t\treturn a.%s(%s&c)\n", m.param, m.name, ctx, m.param, m.name, ctx)
			} else {
				fmt.Fprintf(&b, "\tcase %s:\n\t\treturn a.%s(%sc)\n\tcase *%s:\n\t\treturn a.%s(%s*c)\n", m.param, m.name, ctx, m.param, m.name, ctx)
			}
		}
		b.WriteString("\t}\n\treturn nil, eventsourcing.ErrNoHandler\n}\n")
	}
	events.render(&b)
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("formatting the generated code: %w\n%s", err, b.Bytes())
	}
	return src, nil
}
