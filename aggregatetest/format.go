package aggregatetest

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	es "github.com/aggregatekit/eventsourcing"
)

// maxDepth bounds the recursion of format and diff (cyclic values).
const maxDepth = 32

var (
	typeTime     = reflect.TypeFor[time.Time]()
	typeStringer = reflect.TypeFor[fmt.Stringer]()
)

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// list numbers events one per line, after a count.
func list(events []es.Event) string { return listNamed(events, nil) }

// listNamed is list with the stored type name of each event, shown where
// it is not the Go type's name.
func listNamed(events []es.Event, names []string) string {
	var b strings.Builder
	b.WriteString(plural(len(events), "event"))
	if len(events) == 0 {
		b.WriteString("\n")
		return b.String()
	}
	b.WriteString(":\n")
	for i, e := range events {
		fmt.Fprintf(&b, "    %d. %s", i+1, format(e))
		if i < len(names) && names[i] != typeName(reflect.TypeOf(e)) {
			fmt.Fprintf(&b, " (stored as %q)", names[i])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// typeName is the name of t without its package, a pointer shown as such.
func typeName(t reflect.Type) string {
	if t == nil {
		return "nil"
	}
	if t.Kind() == reflect.Pointer {
		return "*" + typeName(t.Elem())
	}
	if t.Name() != "" {
		return t.Name()
	}
	return t.String()
}

// format renders v with its type and fields, e.g.
// Withdrawn{Amount: 30, At: 2026-01-02T03:04:05Z, Tags: ["a", "b"]}.
func format(v any) string {
	var b strings.Builder
	formatValue(&b, reflect.ValueOf(v), 0, true)
	return b.String()
}

func formatValue(b *strings.Builder, v reflect.Value, depth int, top bool) {
	if !v.IsValid() {
		b.WriteString("nil")
		return
	}
	if depth > maxDepth {
		b.WriteString("...")
		return
	}
	t := v.Type()
	if t == typeTime {
		if v.CanInterface() {
			b.WriteString(v.Interface().(time.Time).Format(time.RFC3339Nano))
		} else {
			b.WriteString("time.Time{...}")
		}
		return
	}
	// A Stringer of a basic kind (time.Duration, an enum) shows its text.
	if k := t.Kind(); k != reflect.Struct && k != reflect.Pointer && k != reflect.Interface &&
		v.CanInterface() && t.Implements(typeStringer) && !((k == reflect.Map || k == reflect.Slice) && v.IsNil()) {
		b.WriteString(v.Interface().(fmt.Stringer).String())
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		b.WriteString("&")
		formatValue(b, v.Elem(), depth+1, top)
	case reflect.Interface:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		formatValue(b, v.Elem(), depth+1, true)
	case reflect.Struct:
		if top || t.Name() != "" {
			b.WriteString(typeName(t))
		}
		b.WriteString("{")
		for i := 0; i < t.NumField(); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(t.Field(i).Name)
			b.WriteString(": ")
			formatValue(b, v.Field(i), depth+1, false)
		}
		b.WriteString("}")
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && v.IsNil() {
			b.WriteString("nil")
			return
		}
		if t.Elem().Kind() == reflect.Uint8 {
			if t.Kind() == reflect.Slice {
				fmt.Fprintf(b, "%q", v.Bytes())
			} else {
				bs := make([]byte, v.Len())
				for i := range bs {
					bs[i] = byte(v.Index(i).Uint())
				}
				fmt.Fprintf(b, "%q", bs)
			}
			return
		}
		b.WriteString("[")
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			formatValue(b, v.Index(i), depth+1, false)
		}
		b.WriteString("]")
	case reflect.Map:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		keys := v.MapKeys()
		ks := make([]string, len(keys))
		order := make([]int, len(keys))
		for i, k := range keys {
			var kb strings.Builder
			formatValue(&kb, k, depth+1, false)
			ks[i], order[i] = kb.String(), i
		}
		slices.SortFunc(order, func(x, y int) int { return strings.Compare(ks[x], ks[y]) })
		b.WriteString("{")
		for j, i := range order {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(ks[i])
			b.WriteString(": ")
			formatValue(b, v.MapIndex(keys[i]), depth+1, false)
		}
		b.WriteString("}")
	case reflect.String:
		b.WriteString(strconv.Quote(v.String()))
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		b.WriteString(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		b.WriteString(strconv.FormatFloat(v.Float(), 'g', -1, 64))
	case reflect.Complex64, reflect.Complex128:
		fmt.Fprintf(b, "%v", v.Complex())
	default: // chan, func, unsafe pointer
		if v.IsNil() {
			b.WriteString("nil")
		} else {
			fmt.Fprintf(b, "(%s)", t)
		}
	}
}

// diffEvents returns a description of the first difference between the
// wanted and the stored events, or "".
func diffEvents(want, got []es.Event) string {
	for i := 0; i < min(len(want), len(got)); i++ {
		if d := diff(want[i], got[i]); d != "" {
			return fmt.Sprintf("event %d: %s\n", i+1, d)
		}
	}
	switch {
	case len(want) > len(got):
		return fmt.Sprintf("missing event %d: %s\n", len(got)+1, format(want[len(got)]))
	case len(got) > len(want):
		return fmt.Sprintf("unexpected event %d: %s\n", len(want)+1, format(got[len(want)]))
	}
	return ""
}

// diff returns the first difference between events want and got, as
// "Type.Field: want x, got y", or "" if they are equal. A pointer and the
// value it points to are the same event.
func diff(want, got any) string {
	w, g := deref(reflect.ValueOf(want)), deref(reflect.ValueOf(got))
	if !w.IsValid() || !g.IsValid() {
		if w.IsValid() == g.IsValid() {
			return ""
		}
		return fmt.Sprintf("want %s, got %s", format(want), format(got))
	}
	if w.Type() != g.Type() {
		return fmt.Sprintf("want a %s, got a %s", w.Type(), g.Type())
	}
	return diffValue(typeName(w.Type()), w, g, 0)
}

func deref(v reflect.Value) reflect.Value {
	for v.IsValid() && v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	return v
}

// diffValue compares w and g (of one type): times as instants, nil and
// empty slices and maps as equal, floats with NaN equal to NaN.
func diffValue(path string, w, g reflect.Value, depth int) string {
	if depth > maxDepth {
		return ""
	}
	differ := func() string {
		var wb, gb strings.Builder
		formatValue(&wb, w, 0, false)
		formatValue(&gb, g, 0, false)
		return fmt.Sprintf("%s: want %s, got %s", path, wb.String(), gb.String())
	}
	t := w.Type()
	if t == typeTime {
		if !w.CanInterface() || !g.CanInterface() {
			return diffFields(path, w, g, depth) // an unexported time: its fields
		}
		if !w.Interface().(time.Time).Equal(g.Interface().(time.Time)) {
			return differ()
		}
		return ""
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		if w.IsNil() || g.IsNil() {
			if w.IsNil() != g.IsNil() {
				return differ()
			}
			return ""
		}
		we, ge := w.Elem(), g.Elem()
		if t.Kind() == reflect.Interface && we.Type() != ge.Type() {
			return fmt.Sprintf("%s: want a %s, got a %s", path, we.Type(), ge.Type())
		}
		return diffValue(path, we, ge, depth+1)
	case reflect.Struct:
		return diffFields(path, w, g, depth)
	case reflect.Slice, reflect.Array:
		if w.Len() != g.Len() {
			return fmt.Sprintf("%s: want %d elements, got %d: want %s, got %s", path, w.Len(), g.Len(), short(w), short(g))
		}
		for i := 0; i < w.Len(); i++ {
			if d := diffValue(fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i), depth+1); d != "" {
				return d
			}
		}
	case reflect.Map:
		if w.Len() != g.Len() {
			return fmt.Sprintf("%s: want %d entries, got %d: want %s, got %s", path, w.Len(), g.Len(), short(w), short(g))
		}
		iter := w.MapRange()
		for iter.Next() {
			gv := g.MapIndex(iter.Key())
			var kb strings.Builder
			formatValue(&kb, iter.Key(), 0, false)
			if !gv.IsValid() {
				return fmt.Sprintf("%s: want key %s, missing", path, kb.String())
			}
			if d := diffValue(fmt.Sprintf("%s[%s]", path, kb.String()), iter.Value(), gv, depth+1); d != "" {
				return d
			}
		}
	case reflect.String:
		if w.String() != g.String() {
			return differ()
		}
	case reflect.Bool:
		if w.Bool() != g.Bool() {
			return differ()
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if w.Int() != g.Int() {
			return differ()
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if w.Uint() != g.Uint() {
			return differ()
		}
	case reflect.Float32, reflect.Float64:
		if a, b := w.Float(), g.Float(); a != b && !(math.IsNaN(a) && math.IsNaN(b)) {
			return differ()
		}
	case reflect.Complex64, reflect.Complex128:
		if w.Complex() != g.Complex() {
			return differ()
		}
	default: // chan, func, unsafe pointer: equal only if both nil
		if !w.IsNil() || !g.IsNil() {
			return differ()
		}
	}
	return ""
}

func diffFields(path string, w, g reflect.Value, depth int) string {
	t := w.Type()
	for i := 0; i < t.NumField(); i++ {
		if d := diffValue(path+"."+t.Field(i).Name, w.Field(i), g.Field(i), depth+1); d != "" {
			return d
		}
	}
	return ""
}

// short formats a collection for a length mismatch, cut to 200 bytes.
func short(v reflect.Value) string {
	var b strings.Builder
	formatValue(&b, v, 0, false)
	s := b.String()
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
