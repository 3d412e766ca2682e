package storecopy

import (
	"reflect"
	"testing"
)

func TestConvert(t *testing.T) {
	for _, tc := range []struct {
		col     string
		in, out any
		bad     bool
	}{
		{"is_first", int64(1), true, false},
		{"can_write", int64(0), false, false},
		{"sealed", "1", nil, true},
		{"raw", []byte("{}"), []byte("{}"), false},
		{"hash", "ab", []byte("ab"), false},
		{"content", int64(3), nil, true},
		{"weight", int64(2), float64(2), false},
		{"weight", 2.5, 2.5, false},
		{"weight", "x", nil, true},
		{"id", []byte("party--a"), "party--a", false},
		{"created_at", int64(7), int64(7), false},
		{"rotation", nil, nil, false},
	} {
		got, err := convert(tc.col, tc.in)
		if (err != nil) != tc.bad || (!tc.bad && !reflect.DeepEqual(got, tc.out)) {
			t.Errorf("convert(%s, %#v) = %#v, %v; want %#v (error %v)", tc.col, tc.in, got, err, tc.out, tc.bad)
		}
	}
}
