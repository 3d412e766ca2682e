package psi

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
)

func TestOrderRoundTrip(t *testing.T) {
	a, _ := pair(t, 100)
	items := slices.Concat(aliases("x", 5), []Item{{KindAlias, "X-1"}, {KindAlias, "x-3 "}, {KindAlias, "X-1"}})
	o, err := a.Round1(context.Background(), slices.Values(items), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := o.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Order
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.positions, o.positions) || len(back.extra) != 2 || !slices.Equal(back.extra[1], []uint32{5, 7}) {
		t.Fatalf("round trip: %v %v, want %v %v", back.positions, back.extra, o.positions, o.extra)
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(slices.Clone(b), 0), []byte("PPSO\x00\x00\x00\x01\x00\x00\x00\x05\x00\x00\x00\x00")} {
		if err := new(Order).UnmarshalBinary(bad); !errors.Is(err, ErrMalformedMessage) {
			t.Errorf("UnmarshalBinary(%x) = %v", bad, err)
		}
	}
}

// FuzzOrder: whatever unmarshals must marshal back to the same bytes.
func FuzzOrder(f *testing.F) {
	o := &Order{positions: []uint32{2, 0, 1}, extra: map[uint32][]uint32{0: {3}}}
	b, _ := o.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var o Order
		if o.UnmarshalBinary(data) != nil {
			return
		}
		again, err := o.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("round trip changed %x into %x (%v)", data, again, err)
		}
	})
}
