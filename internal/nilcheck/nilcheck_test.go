package nilcheck

import (
	"io"
	"testing"
)

func TestIsNil(t *testing.T) {
	var w *io.PipeWriter
	var f func()
	for _, c := range []struct {
		v    any
		want bool
	}{{nil, true}, {w, true}, {f, true}, {map[int]int(nil), true}, {0, false}, {"", false}, {&struct{}{}, false}, {io.Discard, false}} {
		if got := IsNil(c.v); got != c.want {
			t.Errorf("IsNil(%#v) = %v, want %v", c.v, got, c.want)
		}
	}
}
