package psi

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// validElements returns n distinct valid round-1 elements.
func validElements(n int) [][]byte {
	var out [][]byte
	for i := range n {
		var p edwards25519.Point
		hashToCurve25519(&p, []byte{byte(i), byte(i >> 8)}, []byte("test"))
		out = append(out, p.BytesMontgomery())
	}
	return out
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestRound2RefusesBadPeerMessages feeds A's Round2 every kind of bad
// round-1 message from "B".
func TestRound2RefusesBadPeerMessages(t *testing.T) {
	good := validElements(3)
	other, _ := NewSession(Config{SessionID: []byte("another-session-id-0000"), Self: "cert-b", Peer: "cert-a", Role: RoleResponder, MaxElements: 100})
	thirdParty, _ := NewSession(Config{SessionID: []byte("session-0123456789abcdef"), Self: "cert-c", Peer: "cert-a", Role: RoleResponder, MaxElements: 100})

	tests := []struct {
		name  string
		build func(a, b *Session, aRound1 []byte) []byte
		want  error
	}{
		{"non-canonical element (p)", func(a, b *Session, _ []byte) []byte {
			return msg(b, 1, RoleResponder, good[0], mustHex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"))
		}, ErrMalformedElement},
		{"non-canonical element (p+1, the encoding of 1)", func(a, b *Session, _ []byte) []byte {
			return msg(b, 1, RoleResponder, good[0], mustHex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"))
		}, ErrMalformedElement},
		{"top bit set", func(a, b *Session, _ []byte) []byte {
			e := slices.Clone(good[1])
			e[31] |= 0x80
			return msg(b, 1, RoleResponder, good[0], e)
		}, ErrMalformedElement},
		{"identity (u = 0)", func(a, b *Session, _ []byte) []byte {
			return msg(b, 1, RoleResponder, good[1], make([]byte, 32))
		}, ErrMalformedElement},
		{"low order (u = 1)", func(a, b *Session, _ []byte) []byte {
			return msg(b, 1, RoleResponder, good[1], mustHex("0100000000000000000000000000000000000000000000000000000000000000"))
		}, ErrMalformedElement},
		{"low order (order 8)", func(a, b *Session, _ []byte) []byte {
			return msg(b, 1, RoleResponder, mustHex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"), good[1])
		}, ErrMalformedElement},
		{"duplicate element", func(a, b *Session, _ []byte) []byte {
			return msg(b, 1, RoleResponder, good[0], good[1], good[0])
		}, ErrDuplicateElement},
		{"one element under two u-coordinates (P and P plus the point of order 2)", func(a, b *Session, _ []byte) []byte {
			// Adding (0, 0) maps u to 1/u; a clamped scalar removes it again.
			u, err := new(field.Element).SetBytes(good[2])
			if err != nil {
				panic(err)
			}
			return msg(b, 1, RoleResponder, good[0], good[2], new(field.Element).Invert(u).Bytes())
		}, ErrDuplicateElement},
		{"another session", func(a, b *Session, _ []byte) []byte {
			return msg(other, 1, RoleResponder, good...)
		}, ErrWrongSession},
		{"another pair of parties", func(a, b *Session, _ []byte) []byte {
			return msg(thirdParty, 1, RoleResponder, good...)
		}, ErrWrongSession},
		{"wrong round", func(a, b *Session, _ []byte) []byte {
			return msg(b, 2, RoleResponder, good[0][:16])
		}, ErrWrongRound},
		{"own message reflected", func(a, b *Session, aRound1 []byte) []byte {
			return aRound1
		}, ErrWrongRound},
		{"own elements reflected under the peer's role", func(a, b *Session, aRound1 []byte) []byte {
			_, elems, err := decodeMessage(bytes.NewReader(aRound1), expectation{round: 1, role: RoleInitiator, binding: a.binding, cap: 100})
			if err != nil {
				panic(err)
			}
			return msg(b, 1, RoleResponder, append(elems, good[2])...)
		}, ErrSelfMatch},
		{"over the cap", func(a, b *Session, _ []byte) []byte {
			return msg(b, 1, RoleResponder, validElements(11)...)
		}, ErrOverCap},
		{"bad digest", func(a, b *Session, _ []byte) []byte {
			m := msg(b, 1, RoleResponder, good...)
			m[len(m)-1] ^= 1
			return m
		}, ErrMalformedMessage},
		{"trailing data", func(a, b *Session, _ []byte) []byte {
			return append(msg(b, 1, RoleResponder, good...), 0)
		}, ErrMalformedMessage},
		{"bad magic", func(a, b *Session, _ []byte) []byte {
			m := msg(b, 1, RoleResponder, good...)
			m[0] = 'X'
			return m
		}, ErrMalformedMessage},
		{"empty stream", func(a, b *Session, _ []byte) []byte { return nil }, ErrTruncated},
	}
	// Truncation at every interesting offset.
	for _, cut := range []int{1, headerSize - 1, headerSize, headerSize + 31, headerSize + 3*32, headerSize + 3*32 + 31} {
		tests = append(tests, struct {
			name  string
			build func(a, b *Session, aRound1 []byte) []byte
			want  error
		}{"truncated", func(a, b *Session, _ []byte) []byte { return msg(b, 1, RoleResponder, good...)[:cut] }, ErrTruncated})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pair(t, 10)
			var a1 bytes.Buffer
			if _, err := a.Round1(context.Background(), slices.Values(aliases("x", 4)), &a1); err != nil {
				t.Fatal(err)
			}
			bad := tc.build(a, b, a1.Bytes())
			err := a.Round2(context.Background(), bytes.NewReader(bad), &bytes.Buffer{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Round2 = %v, want %v", err, tc.want)
			}
		})
	}
}

// msg frames elements as s would, with a chosen round and role.
func msg(s *Session, round uint8, role Role, elems ...[]byte) []byte {
	var buf bytes.Buffer
	if err := encodeMessage(&buf, header{round: round, role: role, binding: s.binding}, elems); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func TestResultRefusesBadRound2(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (a, b *Session, orderA *Order, a2, b2 []byte) {
		a, b = pair(t, 10)
		var a1, b1, a2b, b2b bytes.Buffer
		orderA, err := a.Round1(ctx, slices.Values(aliases("x", 3)), &a1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Round1(ctx, slices.Values(aliases("x", 5)), &b1); err != nil {
			t.Fatal(err)
		}
		if err := a.Round2(ctx, &b1, &a2b); err != nil {
			t.Fatal(err)
		}
		if err := b.Round2(ctx, &a1, &b2b); err != nil {
			t.Fatal(err)
		}
		return a, b, orderA, a2b.Bytes(), b2b.Bytes()
	}
	t.Run("count mismatch", func(t *testing.T) {
		a, b, orderA, a2, _ := setup(t)
		short := msg(b, 2, RoleResponder, make([]byte, 16), bytes.Repeat([]byte{1}, 16))
		if _, err := a.Result(ctx, orderA, bytes.NewReader(a2), bytes.NewReader(short)); !errors.Is(err, ErrCountMismatch) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("duplicate tags", func(t *testing.T) {
		a, b, orderA, a2, _ := setup(t)
		tag := bytes.Repeat([]byte{7}, 16)
		dup := msg(b, 2, RoleResponder, tag, tag, make([]byte, 16))
		if _, err := a.Result(ctx, orderA, bytes.NewReader(a2), bytes.NewReader(dup)); !errors.Is(err, ErrDuplicateElement) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("peer and own swapped", func(t *testing.T) {
		a, _, orderA, a2, b2 := setup(t)
		if _, err := a.Result(ctx, orderA, bytes.NewReader(b2), bytes.NewReader(a2)); !errors.Is(err, ErrWrongRound) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		a, _, orderA, a2, b2 := setup(t)
		if _, err := a.Result(ctx, orderA, bytes.NewReader(a2), bytes.NewReader(b2[:len(b2)-1])); !errors.Is(err, ErrTruncated) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("rebuilt session computes the same result", func(t *testing.T) {
		a, _, orderA, a2, b2 := setup(t)
		again, err := NewSession(a.cfg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := again.Result(ctx, orderA, bytes.NewReader(a2), bytes.NewReader(b2))
		if err != nil || !slices.Equal(got, []int{0, 1, 2}) {
			t.Fatalf("got %v, %v", got, err)
		}
	})
}

func TestRound1Refuses(t *testing.T) {
	ctx := context.Background()
	a, _ := pair(t, 3)
	if _, err := a.Round1(ctx, slices.Values(aliases("x", 4)), &bytes.Buffer{}); !errors.Is(err, ErrOverCap) {
		t.Errorf("4 items with cap 3: %v", err)
	}
	a, _ = pair(t, 3)
	if _, err := a.Round1(ctx, slices.Values([]Item{{KindIPv4, "not an ip"}}), &bytes.Buffer{}); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("bad IPv4: %v", err)
	}
	a, _ = pair(t, 3)
	if err := a.Round2(ctx, bytes.NewReader(nil), &bytes.Buffer{}); !errors.Is(err, ErrOutOfSequence) {
		t.Errorf("Round2 first: %v", err)
	}
}

// TestTranscriptHidesItems runs a session and searches everything that
// crossed the wire for each item in plain text, normalized, as its plain
// SHA-256/SHA-1/MD5 (hex and raw) and as its unblinded group element.
func TestTranscriptHidesItems(t *testing.T) {
	xs := []Item{
		{KindEmail, "Boss@Ransom.Example"}, {KindAlias, "LockBitSupp"}, {KindIPv4, "203.0.113.77"},
		{KindIPv6, "2001:db8::dead:beef"}, {KindDomain, "c2.ransom.example"},
		{KindSHA256, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{KindBitcoin, "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}, {KindEthereum, "0x52908400098527886e0f7030069857d2e4169ee7"},
	}
	ys := slices.Concat(xs[:4], aliases("y", 4))
	a, b := pair(t, 100)
	gotA, gotB, tr := run(t, a, b, xs, ys)
	if !slices.Equal(gotA, []int{0, 1, 2, 3}) || !slices.Equal(gotB, []int{0, 1, 2, 3}) {
		t.Fatalf("A %v, B %v", gotA, gotB)
	}
	all := tr.all()
	for _, it := range slices.Concat(xs, ys) {
		n, err := Normalize(it.Kind, it.Value)
		if err != nil {
			t.Fatal(err)
		}
		input := appendHashInput(nil, it.Kind, n)
		var needles [][]byte
		for _, v := range [][]byte{[]byte(it.Value), []byte(n), input} {
			s256, s1, m5 := sha256.Sum256(v), sha1.Sum(v), md5.Sum(v)
			needles = append(needles, v, s256[:], s1[:], m5[:],
				[]byte(hex.EncodeToString(s256[:])), []byte(hex.EncodeToString(s1[:])), []byte(hex.EncodeToString(m5[:])))
		}
		for _, s := range []*Session{a, b} {
			var p edwards25519.Point
			hashToCurve25519(&p, input, s.dst)
			enc := p.BytesMontgomery()
			needles = append(needles, enc, enc[:16])
		}
		for _, nd := range needles {
			if bytes.Contains(all, nd) {
				t.Errorf("transcript contains %x (from %s %q)", nd, it.Kind, it.Value)
			}
		}
	}
}

// FuzzDecodeMessage: whatever decodes must re-encode to the same bytes, and
// nothing panics.
func FuzzDecodeMessage(f *testing.F) {
	s, _ := pair(f, 8)
	f.Add(msg(s, 1, RoleResponder, validElements(2)...))
	f.Add(msg(s, 2, RoleResponder, make([]byte, 16), bytes.Repeat([]byte{1}, 16)))
	f.Add(msg(s, 1, RoleResponder))
	f.Fuzz(func(t *testing.T, data []byte) {
		for round := uint8(1); round <= 2; round++ {
			exp := expectation{round: round, role: RoleResponder, binding: s.binding, cap: 8}
			hdr, elems, err := decodeMessage(bytes.NewReader(data), exp)
			if err != nil {
				continue
			}
			var again bytes.Buffer
			if err := encodeMessage(&again, hdr, elems); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), data) {
				t.Fatalf("round trip changed the message:\n%x\n%x", data, again.Bytes())
			}
		}
	})
}
