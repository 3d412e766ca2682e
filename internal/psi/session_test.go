package psi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// pair builds the two sides of one session.
func pair(t testing.TB, maxElements int) (*Session, *Session) {
	t.Helper()
	id := []byte("session-0123456789abcdef")
	a, err := NewSession(Config{SessionID: id, Self: "cert-a", Peer: "cert-b", Role: RoleInitiator, MaxElements: maxElements})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSession(Config{SessionID: id, Self: "cert-b", Peer: "cert-a", Role: RoleResponder, MaxElements: maxElements})
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// transcript is every message of a run.
type transcript struct {
	a1, b1, a2, b2 []byte
}

func (tr *transcript) all() []byte { return slices.Concat(tr.a1, tr.b1, tr.a2, tr.b2) }

// run performs a whole session and returns what each side learned.
func run(t testing.TB, a, b *Session, xs, ys []Item) (gotA, gotB []int, tr transcript) {
	t.Helper()
	ctx := context.Background()
	var a1, b1, a2, b2 bytes.Buffer
	orderA, err := a.Round1(ctx, slices.Values(xs), &a1)
	if err != nil {
		t.Fatalf("A round 1: %v", err)
	}
	orderB, err := b.Round1(ctx, slices.Values(ys), &b1)
	if err != nil {
		t.Fatalf("B round 1: %v", err)
	}
	tr.a1, tr.b1 = slices.Clone(a1.Bytes()), slices.Clone(b1.Bytes())
	if err := a.Round2(ctx, &b1, &a2); err != nil {
		t.Fatalf("A round 2: %v", err)
	}
	if err := b.Round2(ctx, &a1, &b2); err != nil {
		t.Fatalf("B round 2: %v", err)
	}
	tr.a2, tr.b2 = a2.Bytes(), b2.Bytes()
	if gotA, err = a.Result(ctx, orderA, bytes.NewReader(tr.a2), bytes.NewReader(tr.b2)); err != nil {
		t.Fatalf("A result: %v", err)
	}
	if gotB, err = b.Result(ctx, orderB, bytes.NewReader(tr.b2), bytes.NewReader(tr.a2)); err != nil {
		t.Fatalf("B result: %v", err)
	}
	return gotA, gotB, tr
}

func aliases(prefix string, n int) []Item {
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{KindAlias, fmt.Sprintf("%s-%d", prefix, i)}
	}
	return items
}

func TestKnownIntersections(t *testing.T) {
	tests := []struct {
		name         string
		xs, ys       []Item
		wantA, wantB []int
	}{
		{"both empty", nil, nil, []int{}, []int{}},
		{"one empty", aliases("x", 3), nil, []int{}, []int{}},
		{"disjoint", aliases("x", 5), aliases("y", 7), []int{}, []int{}},
		{"full", aliases("x", 20), aliases("x", 20), seq(0, 20), seq(0, 20)},
		{"partial, different sizes", aliases("x", 10), append(aliases("y", 50), aliases("x", 4)...), seq(0, 4), seq(50, 54)},
		{"normalization: e-mail", []Item{{KindEmail, "Foo@Example.COM "}, {KindAlias, "nobody"}},
			[]Item{{KindEmail, "other@example.com"}, {KindEmail, "foo@example.com"}}, []int{0}, []int{1}},
		{"normalization: IPv6 forms and mapped IPv4", []Item{{KindIPv6, "2001:DB8:0:0::1"}, {KindIPv6, "::ffff:192.0.2.7"}, {KindIPv4, "198.51.100.1"}},
			[]Item{{KindIPv4, "192.0.2.7"}, {KindIPv6, "2001:db8::1"}}, []int{0, 1}, []int{0, 1}},
		{"kinds are separate domains", []Item{{KindAlias, "example.com"}}, []Item{{KindDomain, "example.com"}}, []int{}, []int{}},
		{"duplicates after normalization", []Item{{KindAlias, "Crew"}, {KindAlias, "crew "}, {KindAlias, "x"}},
			[]Item{{KindAlias, "CREW"}}, []int{0, 1}, []int{0}},
		{"unicode NFC", []Item{{KindAlias, "Cafe\u0301"}}, []Item{{KindAlias, "café"}}, []int{0}, []int{0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pair(t, 1000)
			gotA, gotB, _ := run(t, a, b, tc.xs, tc.ys)
			if !slices.Equal(gotA, tc.wantA) || !slices.Equal(gotB, tc.wantB) {
				t.Errorf("A learned %v (want %v), B learned %v (want %v)", gotA, tc.wantA, gotB, tc.wantB)
			}
		})
	}
}

func seq(lo, hi int) []int {
	s := []int{}
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}

// TestLargerRandomIntersection crosses several batch boundaries.
func TestLargerRandomIntersection(t *testing.T) {
	if testing.Short() {
		t.Skip("slow under -short")
	}
	xs := append(aliases("x", 3000), aliases("common", 1500)...)
	ys := append(aliases("common", 1500), aliases("y", 2500)...)
	a, b := pair(t, 10000)
	gotA, gotB, _ := run(t, a, b, xs, ys)
	if !slices.Equal(gotA, seq(3000, 4500)) || !slices.Equal(gotB, seq(0, 1500)) {
		t.Errorf("A learned %d items, B %d; want 1500 each at the right places", len(gotA), len(gotB))
	}
}

func TestConfigChecks(t *testing.T) {
	id := bytes.Repeat([]byte{1}, 16)
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"self match", Config{SessionID: id, Self: "a", Peer: "a", Role: RoleInitiator, MaxElements: 1}, ErrSelfMatch},
		{"short id", Config{SessionID: id[:8], Self: "a", Peer: "b", Role: RoleInitiator, MaxElements: 1}, ErrInvalidConfig},
		{"no role", Config{SessionID: id, Self: "a", Peer: "b", MaxElements: 1}, ErrInvalidConfig},
		{"no cap", Config{SessionID: id, Self: "a", Peer: "b", Role: RoleResponder}, ErrInvalidConfig},
		{"empty party", Config{SessionID: id, Self: "", Peer: "b", Role: RoleResponder, MaxElements: 1}, ErrInvalidConfig},
	}
	for _, tc := range tests {
		if _, err := NewSession(tc.cfg); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}
