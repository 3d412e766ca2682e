package psi

import (
	"encoding/binary"
	"slices"

	"github.com/parley-cti/parley/internal/fault"
)

// orderMagic starts a serialized Order.
var orderMagic = [4]byte{'P', 'P', 'S', 'O'}

// MarshalBinary serializes the order so that a client can keep it on disk
// while the round-2 messages wait in escrow. It reveals the list's structure
// (how many items, which were duplicates), not the items; store it with the
// list itself.
func (o *Order) MarshalBinary() ([]byte, error) {
	b := append([]byte(nil), orderMagic[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(o.positions)))
	for _, p := range o.positions {
		b = binary.BigEndian.AppendUint32(b, p)
	}
	keys := make([]uint32, 0, len(o.extra))
	for k := range o.extra {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic output
	b = binary.BigEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		b = binary.BigEndian.AppendUint32(b, k)
		b = binary.BigEndian.AppendUint32(b, uint32(len(o.extra[k])))
		for _, v := range o.extra[k] {
			b = binary.BigEndian.AppendUint32(b, v)
		}
	}
	return b, nil
}

// UnmarshalBinary is MarshalBinary's inverse; it refuses anything that is
// not a permutation-with-duplicates of item indices (ErrMalformedMessage).
func (o *Order) UnmarshalBinary(b []byte) error {
	bad := func(why string) error { return fault.Errorf("%w: order: %s", ErrMalformedMessage, why) }
	next := func() (uint32, bool) {
		if len(b) < 4 {
			return 0, false
		}
		v := binary.BigEndian.Uint32(b)
		b = b[4:]
		return v, true
	}
	if len(b) < 4 || [4]byte(b[:4]) != orderMagic {
		return bad("bad magic")
	}
	b = b[4:]
	n, ok := next()
	if !ok || uint64(n)*4 > uint64(len(b)) {
		return bad("truncated")
	}
	positions := make([]uint32, n)
	for i := range positions {
		positions[i], _ = next()
	}
	nk, ok := next()
	if !ok || uint64(nk)*8 > uint64(len(b)) {
		return bad("truncated")
	}
	extra := make(map[uint32][]uint32, nk)
	total := uint64(n)
	prev := int64(-1)
	for range nk {
		k, ok1 := next()
		m, ok2 := next()
		if !ok1 || !ok2 || uint64(m)*4 > uint64(len(b)) || m == 0 {
			return bad("truncated")
		}
		if int64(k) <= prev {
			return bad("keys not ascending")
		}
		prev = int64(k)
		vs := make([]uint32, m)
		for i := range vs {
			vs[i], _ = next()
		}
		extra[k] = vs
		total += uint64(m)
	}
	if len(b) != 0 {
		return bad("trailing data")
	}
	// Every index below total must appear exactly once, and keys must be
	// positions.
	seen := make([]bool, total)
	mark := func(i uint32) bool {
		if uint64(i) >= total || seen[i] {
			return false
		}
		seen[i] = true
		return true
	}
	isPos := make(map[uint32]bool, len(positions))
	for _, p := range positions {
		if !mark(p) {
			return bad("index repeated or out of range")
		}
		isPos[p] = true
	}
	for k, vs := range extra {
		if !isPos[k] {
			return bad("duplicate of an index not sent")
		}
		for _, v := range vs {
			if !mark(v) {
				return bad("index repeated or out of range")
			}
		}
	}
	o.positions, o.extra = positions, extra
	return nil
}
