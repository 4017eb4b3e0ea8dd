package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/printer"
	"go/token"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// The AppendJSON and DecodeJSON methods (eventsourcing.JSONAppender and
// JSONDecoder) esgen writes for the events of the aggregates: for each
// struct type of the package that a Replay method takes, and whose encoding
// and decoding by encoding/json can be told from the source alone, a method
// appending exactly the bytes json.Marshal returns, and one decoding the
// plain form of those bytes (any whitespace, keys in any order) as
// json.Unmarshal does, which hands any other input to json.Unmarshal; both
// call package esjson (esjsonPath). Every other event is listed, with the
// reason, in a comment at the end of the generated file, and JSONCodec
// encodes and decodes it with encoding/json.

// packageDecls is what esgen knows of the package-level declarations.
type packageDecls struct {
	types   map[string]typeDecl
	names   map[string]bool            // every name declared in the package block
	methods map[string]map[string]bool // method names by receiver base type
}

// typeDecl is a type declaration and the file holding it.
type typeDecl struct {
	spec *ast.TypeSpec
	file *ast.File
}

func newPackageDecls(files []*ast.File) *packageDecls {
	pk := &packageDecls{types: map[string]typeDecl{}, names: map[string]bool{}, methods: map[string]map[string]bool{}}
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					pk.names[d.Name.Name] = true
					continue
				}
				if len(d.Recv.List) != 1 {
					continue
				}
				t := d.Recv.List[0].Type
				if s, ok := t.(*ast.StarExpr); ok {
					t = s.X
				}
				switch x := t.(type) {
				case *ast.IndexExpr:
					t = x.X
				case *ast.IndexListExpr:
					t = x.X
				}
				if id, ok := t.(*ast.Ident); ok {
					if pk.methods[id.Name] == nil {
						pk.methods[id.Name] = map[string]bool{}
					}
					pk.methods[id.Name][d.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						pk.types[s.Name.Name] = typeDecl{spec: s, file: f}
						pk.names[s.Name.Name] = true
					case *ast.ValueSpec:
						for _, n := range s.Names {
							pk.names[n.Name] = true
						}
					}
				}
			}
		}
	}
	return pk
}

// esjsonPath is the package the AppendJSON and DecodeJSON methods call,
// imported as esjson.
const esjsonPath = esPath + "/esjson"

// eventSet is the AppendJSON and DecodeJSON part of the generated file.
type eventSet struct {
	std      []string // standard packages it imports
	esjson   bool     // it imports esjsonPath, as esjson
	encoders []encoder
	skipped  []string // "Type: reason", for the events without the methods

	// appliers holds, by aggregate, the Replay methods of the events with
	// DecodeJSON, for its ApplyJSONEvent method; noApplier says why an
	// aggregate has none although some of its events have DecodeJSON.
	appliers  map[string][]method
	noApplier []string
}

// applierTypes is the name of the array of the event types an aggregate's
// ApplyJSONEvent handles.
func applierTypes(agg string) string { return "esgen" + agg + "Events" }

// encoder is the AppendJSON and DecodeJSON methods of one event type.
type encoder struct {
	name   string
	fields []jsonField
	guard  string // the struct type as declared
}

// jsonField is a field encoding/json writes and reads.
type jsonField struct {
	goName string
	kind   string // the predeclared type
	name   string // its JSON name, the key encoding/json matches exactly
	key    string // `"name":` as encoding/json writes it
	omit   bool   // omitempty
}

// valueSize is the longest JSON encoding of a value of each type, strings
// apart (their length plus 2).
var valueSize = map[string]int{
	"bool": len("false"),
	"int":  20, "int8": 4, "int16": 6, "int32": 11, "int64": 20,
	"uint": 20, "uint8": 3, "uint16": 5, "uint32": 10, "uint64": 20,
	"string": 2,
}

// stackJSON is the size of the buffer on the stack AppendJSON writes into
// when it is to allocate the result.
const stackJSON = 256

// appenders returns the AppendJSON and DecodeJSON methods for the events
// the Replay methods of aggs take, and notes in used the imports their compile-time
// checks need.
func appenders(fset *token.FileSet, pk *packageDecls, aggs map[string]*aggregate, imports map[string]string, used map[string]bool) eventSet {
	var set eventSet
	seen := map[string]bool{}
	var names []string
	for _, a := range aggs {
		for _, m := range a.replays {
			if !seen[m.param] {
				seen[m.param] = true
				names = append(names, m.param)
			}
		}
	}
	slices.Sort(names)
	guardUsed := map[string]bool{}
	needsStrconv := false
	for _, name := range names {
		enc, reason := pk.encoder(fset, name)
		if reason == "" {
			reason = pk.guardImports(name, imports, guardUsed)
		}
		if reason != "" {
			set.skipped = append(set.skipped, name+": "+reason)
			continue
		}
		for _, f := range enc.fields {
			needsStrconv = needsStrconv || f.kind != "string"
		}
		set.encoders = append(set.encoders, enc)
	}
	if len(set.encoders) == 0 {
		return set
	}
	// The imports the methods need, by the name they use: every DecodeJSON
	// calls esjson.ReadObject.
	needs := []struct{ name, path string }{{"esjson", esjsonPath}}
	if needsStrconv {
		needs = append(needs, struct{ name, path string }{"strconv", "strconv"})
	}
	for _, n := range needs {
		if pk.names[n.name] || (used[n.name] && imports[n.name] != n.path) {
			// The generated file could not import it under its name.
			for _, enc := range set.encoders {
				set.skipped = append(set.skipped, enc.name+": the package declares or imports another "+n.name)
			}
			slices.Sort(set.skipped)
			return eventSet{skipped: set.skipped}
		}
	}
	set.esjson = true
	if needsStrconv {
		set.std = []string{"strconv"}
	}
	for name := range guardUsed {
		used[name] = true
	}
	set.appliers = pk.appliers(aggs, set.encoders, imports, used, &set.noApplier)
	if len(set.appliers) > 0 {
		set.std = append([]string{"reflect"}, set.std...)
	}
	return set
}

// appliers returns, by aggregate, the Replay methods of aggs whose events
// have encoders, for ApplyJSONEvent methods, noting in why the aggregates
// that cannot have one.
func (pk *packageDecls) appliers(aggs map[string]*aggregate, encoders []encoder, imports map[string]string, used map[string]bool, why *[]string) map[string][]method {
	decodes := map[string]bool{}
	for _, enc := range encoders {
		decodes[enc.name] = true
	}
	reflectTaken := pk.names["reflect"] || (used["reflect"] && imports["reflect"] != "reflect")
	out := map[string][]method{}
	for name, a := range aggs {
		var ms []method
		for _, m := range a.replays {
			if decodes[m.param] {
				ms = append(ms, m)
			}
		}
		switch {
		case len(ms) == 0:
		case reflectTaken:
			*why = append(*why, name+": the package declares or imports another reflect")
		case pk.methods[name]["ApplyJSONEvent"]:
			*why = append(*why, name+": has an ApplyJSONEvent method already")
		case pk.names[applierTypes(name)]:
			*why = append(*why, name+": the package declares "+applierTypes(name))
		default:
			out[name] = ms
		}
	}
	slices.Sort(*why)
	return out
}

// guardImports notes in refs the imports the declaration restating the
// struct type name needs, or returns why the generated file cannot have
// them: the names it gives its own imports, and those of the package's other
// files (as for the Handle and Replay methods), must mean the same packages.
func (pk *packageDecls) guardImports(name string, imports map[string]string, refs map[string]bool) string {
	d := pk.types[name]
	fileNames := importNames(d.file)
	mine := map[string]bool{}
	for _, fld := range d.spec.Type.(*ast.StructType).Fields.List {
		noteImports(fld.Type, fileNames, mine)
	}
	fixed := map[string]string{"context": "context", "eventsourcing": esPath, "esjson": esjsonPath, "strconv": "strconv"}
	var names []string
	for n := range mine {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if want, ok := fixed[n]; (ok && fileNames[n] != want) || imports[n] != fileNames[n] {
			return fmt.Sprintf("its file imports %s as %s, a name the generated file gives another package", fileNames[n], n)
		}
	}
	for _, n := range names {
		refs[n] = true
	}
	return ""
}

// predeclared are the types a field of an event with AppendJSON and
// DecodeJSON may have.
var predeclared = []string{"string", "bool", "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64"}

// encoder returns the AppendJSON and DecodeJSON methods of the type name,
// or why it has none.
func (pk *packageDecls) encoder(fset *token.FileSet, name string) (encoder, string) {
	d, ok := pk.types[name]
	switch {
	case strings.Contains(name, "["):
		return encoder{}, "an instance of a generic type"
	case !token.IsIdentifier(name) || !ok:
		return encoder{}, "not a struct type declared in this package"
	case d.spec.Assign.IsValid():
		return encoder{}, "an alias"
	case d.spec.TypeParams != nil:
		return encoder{}, "has type parameters"
	}
	st, ok := d.spec.Type.(*ast.StructType)
	if !ok {
		return encoder{}, "not a struct type"
	}
	// encoding/json would call the first four (and JSONCodec then ignores
	// AppendJSON or DecodeJSON); the others would clash.
	for _, m := range []string{"a MarshalJSON", "a MarshalText", "an UnmarshalJSON", "an UnmarshalText"} {
		if _, method, _ := strings.Cut(m, " "); pk.methods[name][method] {
			return encoder{}, "has " + m + " method"
		}
	}
	if pk.methods[name]["AppendJSON"] {
		return encoder{}, "has an AppendJSON method already"
	}
	if pk.methods[name]["DecodeJSON"] {
		return encoder{}, "has a DecodeJSON method already"
	}
	if pk.methods[name]["appendJSON"] {
		return encoder{}, "has an appendJSON method"
	}
	for _, imp := range d.file.Imports {
		if imp.Name != nil && imp.Name.Name == "." {
			return encoder{}, "its file dot-imports a package"
		}
	}
	enc := encoder{name: name}
	keys := map[string]string{} // JSON name -> field
	for _, fld := range st.Fields.List {
		if len(fld.Names) == 0 {
			return encoder{}, "embeds " + exprString(fset, fld.Type)
		}
		tag := ""
		if fld.Tag != nil {
			raw, err := strconv.Unquote(fld.Tag.Value)
			if err != nil {
				return encoder{}, "a field tag does not unquote"
			}
			tag = reflect.StructTag(raw).Get("json")
		}
		for _, n := range fld.Names {
			if n.Name == "AppendJSON" || n.Name == "appendJSON" || n.Name == "DecodeJSON" {
				return encoder{}, "has a field named " + n.Name
			}
			// As encoding/json (typeFields): unexported fields are left
			// out, whatever their type.
			if !n.IsExported() {
				continue
			}
			jname, key, omit, reason := fieldKey(n.Name, tag)
			if reason != "" {
				return encoder{}, reason
			}
			if key == "" {
				continue // tagged "-"
			}
			id, ok := fld.Type.(*ast.Ident)
			if !ok || !slices.Contains(predeclared, id.Name) {
				return encoder{}, fmt.Sprintf("field %s is %s", n.Name, exprString(fset, fld.Type))
			}
			if pk.names[id.Name] {
				return encoder{}, fmt.Sprintf("field %s is %s, which the package redeclares", n.Name, id.Name)
			}
			if other, ok := keys[jname]; ok {
				return encoder{}, fmt.Sprintf("fields %s and %s have the JSON name %q", other, n.Name, jname)
			}
			keys[jname] = n.Name
			enc.fields = append(enc.fields, jsonField{goName: n.Name, kind: id.Name, name: jname, key: key, omit: omit})
		}
	}
	enc.guard = exprString(fset, st)
	return enc, ""
}

// fieldKey returns how encoding/json (typeFields) names the exported field
// goName whose json tag is tag: the name, the key it writes (`"name":`,
// HTML-escaped; "" for a field tagged "-", which it leaves out) and whether
// the field is omitempty; or the reason esgen does not know, for an option
// other than omitempty.
func fieldKey(goName, tag string) (name, key string, omit bool, reason string) {
	if tag == "-" {
		return "", "", false, ""
	}
	name, opts, _ := strings.Cut(tag, ",")
	for _, o := range strings.Split(opts, ",") {
		switch o {
		case "":
		case "omitempty":
			omit = true
		default:
			return "", "", false, fmt.Sprintf("field %s has the json option %q", goName, o)
		}
	}
	if !isValidTag(name) {
		name = goName
	}
	var esc bytes.Buffer
	json.HTMLEscape(&esc, []byte(name)) // as encoding/json escapes a key (nameEscHTML)
	return name, `"` + esc.String() + `":`, omit, ""
}

// isValidTag is encoding/json's test of a name in a json tag: a name it
// refuses is replaced by the field's name.
func isValidTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
			// Backslash and quote chars are reserved, but otherwise any
			// punctuation chars are allowed in a tag name.
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

func exprString(fset *token.FileSet, e ast.Expr) string {
	var b bytes.Buffer
	_ = printer.Fprint(&b, fset, e)
	return b.String()
}

// goString returns s as a Go string literal.
func goString(s string) string {
	if strconv.CanBackquote(s) {
		return "`" + s + "`"
	}
	return strconv.Quote(s)
}

func (set eventSet) render(b *bytes.Buffer) {
	var aggs []string
	for name := range set.appliers {
		aggs = append(aggs, name)
	}
	slices.Sort(aggs)
	for _, name := range aggs {
		renderApplier(b, name, set.appliers[name])
	}
	for _, enc := range set.encoders {
		enc.render(b)
	}
	if len(set.noApplier) > 0 {
		b.WriteString("\n// esgen wrote no ApplyJSONEvent for these aggregates, whose events load through\n// JSONCodec and DispatchEvent:\n")
		for _, s := range set.noApplier {
			fmt.Fprintf(b, "//   - %s\n", s)
		}
	}
	if len(set.skipped) > 0 {
		b.WriteString("\n// esgen wrote no AppendJSON or DecodeJSON for these events, which JSONCodec\n// encodes and decodes with encoding/json:\n")
		for _, s := range set.skipped {
			fmt.Fprintf(b, "//   - %s\n", s)
		}
	}
}

func (enc encoder) render(b *bytes.Buffer) {
	fmt.Fprintf(b, "\n// AppendJSON appends to dst the bytes json.Marshal returns for e\n// (eventsourcing.JSONAppender).\nfunc (e %s) AppendJSON(dst []byte) []byte {\n", enc.name)
	if len(enc.fields) == 0 {
		b.WriteString("\treturn append(dst, \"{}\"...)\n}\n")
	} else {
		size := len(enc.fields) + 1
		var strs []string
		for _, f := range enc.fields {
			size += len(f.key) + valueSize[f.kind]
			if f.kind == "string" {
				strs = append(strs, "+len(e."+f.goName+")")
			}
		}
		// Into an empty dst without room, the JSON is written on the stack
		// and copied, so that the result is sized as json.Marshal sizes
		// its own, not by the longest JSON the type may have.
		fmt.Fprintf(b, `	if n := %d%s; cap(dst)-len(dst) < n {
		if len(dst) == 0 && n <= %d {
			var buf [%d]byte
			return append(dst, e.appendJSON(buf[:0])...)
		}
		dst = append(make([]byte, 0, len(dst)+n), dst...)
	}
	return e.appendJSON(dst)
}

// appendJSON is AppendJSON into a dst with room for it.
func (e %s) appendJSON(dst []byte) []byte {
`, size, strings.Join(strs, ""), stackJSON, stackJSON, enc.name)
		// With a first field that may be left out, every field is written
		// after a comma, and the first comma written becomes the brace.
		delayed := enc.fields[0].omit
		if delayed {
			b.WriteString("\tstart := len(dst)\n")
		}
		for i, f := range enc.fields {
			key := "," + f.key
			if i == 0 && !delayed {
				key = "{" + f.key
			}
			v := "e." + f.goName
			var write string
			switch f.kind {
			case "string":
				write = fmt.Sprintf("dst = esjson.AppendString(dst, %s)", v)
			case "bool":
				write = fmt.Sprintf("dst = strconv.AppendBool(dst, %s)", v)
			case "int64":
				write = fmt.Sprintf("dst = strconv.AppendInt(dst, %s, 10)", v)
			case "uint64":
				write = fmt.Sprintf("dst = strconv.AppendUint(dst, %s, 10)", v)
			case "int", "int8", "int16", "int32":
				write = fmt.Sprintf("dst = strconv.AppendInt(dst, int64(%s), 10)", v)
			default:
				write = fmt.Sprintf("dst = strconv.AppendUint(dst, uint64(%s), 10)", v)
			}
			switch {
			case !f.omit:
				fmt.Fprintf(b, "\tdst = append(dst, %s...)\n\t%s\n", goString(key), write)
			case f.kind == "bool":
				fmt.Fprintf(b, "\tif %s {\n\t\tdst = append(dst, %s...)\n\t}\n", v, goString(key+"true"))
			case f.kind == "string":
				fmt.Fprintf(b, "\tif %s != \"\" {\n\t\tdst = append(dst, %s...)\n\t\t%s\n\t}\n", v, goString(key), write)
			default:
				fmt.Fprintf(b, "\tif %s != 0 {\n\t\tdst = append(dst, %s...)\n\t\t%s\n\t}\n", v, goString(key), write)
			}
		}
		if delayed {
			b.WriteString("\tif len(dst) == start {\n\t\treturn append(dst, \"{}\"...)\n\t}\n\tdst[start] = '{'\n")
		}
		b.WriteString("\treturn append(dst, '}')\n}\n")
	}
	enc.renderDecode(b)
	fmt.Fprintf(b, "\n// AppendJSON and DecodeJSON above handle %s as declared here: when its\n// fields or their tags change, this stops compiling until esgen is rerun.\nvar _ %s = %s{}\n", enc.name, enc.name, enc.guard)
}

// renderDecode writes the DecodeJSON method: the fields present in the
// object are read into a copy of the value, stored once the whole object
// was read; anything esjson.ObjectReader does not read, a key that is not
// exactly the JSON name of a field included, goes to json.Unmarshal.
func (enc encoder) renderDecode(b *bytes.Buffer) {
	fmt.Fprintf(b, `
// DecodeJSON leaves *e as json.Unmarshal(data, e) would, and fails when it
// would (eventsourcing.JSONDecoder): it reads the plain form of what
// AppendJSON writes, and hands anything else to encoding/json.
func (e *%s) DecodeJSON(data []byte) error {
`, enc.name)
	if len(enc.fields) == 0 {
		b.WriteString("\tr := esjson.ReadObject(data)\n\tif r.Next() || !r.Done() {\n\t\treturn r.Unmarshal(e)\n\t}\n\treturn nil\n}\n")
		return
	}
	b.WriteString("\tx, r := *e, esjson.ReadObject(data)\n\tfor r.Next() {\n\t\tswitch string(r.Key()) {\n")
	for _, f := range enc.fields {
		read := "r.Str()"
		switch f.kind {
		case "string":
		case "bool":
			read = "r.Bool()"
		default: // r.Int(bits) or r.Uint(bits), 0 bits for int and uint
			method, bits := "Int", strings.TrimPrefix(f.kind, "int")
			if strings.HasPrefix(f.kind, "uint") {
				method, bits = "Uint", strings.TrimPrefix(f.kind, "uint")
			}
			read = fmt.Sprintf("r.%s(%s)", method, cmp.Or(bits, "0"))
			if bits != "64" {
				read = fmt.Sprintf("%s(%s)", f.kind, read)
			}
		}
		fmt.Fprintf(b, "\t\tcase %q:\n\t\t\tx.%s = %s\n", f.name, f.goName, read)
	}
	b.WriteString("\t\tdefault:\n\t\t\tr.Fail()\n\t\t}\n\t}\n\tif !r.Done() {\n\t\treturn r.Unmarshal(e)\n\t}\n\t*e = x\n\treturn nil\n}\n")
}

// renderApplier writes the ApplyJSONEvent method of aggregate agg, whose
// Replay methods ms take events with DecodeJSON, and the array of their
// types it switches on.
func renderApplier(b *bytes.Buffer, agg string, ms []method) {
	types := applierTypes(agg)
	fmt.Fprintf(b, "\n// ApplyJSONEvent decodes data as an event of type t with its DecodeJSON method and\n// applies it with the %s Replay method of t (eventsourcing.JSONEventApplier).\n", agg)
	fmt.Fprintf(b, "func (a *%s) ApplyJSONEvent(t reflect.Type, data []byte) (bool, error) {\n\tswitch t {\n", agg)
	for i, m := range ms {
		arg := "e"
		if m.ptr {
			arg = "&e"
		}
		fmt.Fprintf(b, "\tcase %s[%d]:\n\t\tvar e %s\n\t\tif err := e.DecodeJSON(data); err != nil {\n\t\t\treturn true, err\n\t\t}\n\t\ta.%s(%s)\n\t\treturn true, nil\n", types, i, m.param, m.name, arg)
	}
	b.WriteString("\t}\n\treturn false, nil\n}\n")
	fmt.Fprintf(b, "\n// %s are the event types the %s ApplyJSONEvent method decodes and applies.\nvar %s = [...]reflect.Type{", types, agg, types)
	for i, m := range ms {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "reflect.TypeFor[%s]()", m.param)
	}
	b.WriteString("}\n")
}
