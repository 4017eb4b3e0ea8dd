// Package nilcheck tells whether an interface value holds nothing usable,
// for constructors that must reject a typed nil (a nil *logrus.Logger in a
// logrus.FieldLogger, say) with an error instead of panicking later.
package nilcheck

import "reflect"

// IsNil reports whether v is nil, or holds a nil pointer, func, map, chan,
// interface or slice.
func IsNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Chan, reflect.Interface, reflect.Slice:
		return rv.IsNil()
	}
	return false
}
