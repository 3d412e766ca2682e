package psi

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCheckedReader(t *testing.T) {
	a, b := pair(t, 4)
	good := msg(b, 1, RoleResponder, validElements(3)...)
	other, _ := NewSession(Config{SessionID: []byte("another-session-0123456789"), Self: "cert-b", Peer: "cert-a", Role: RoleResponder, MaxElements: 4})
	exp := Expect{Round: 1, Role: RoleResponder, Binding: SessionBinding([]byte("session-0123456789abcdef"), "cert-a", "cert-b"), Cap: 4}
	if exp.Binding != a.binding {
		t.Fatal("SessionBinding differs from the sessions' binding")
	}
	flipped := bytes.Clone(good)
	flipped[HeaderSize+5] ^= 1
	tests := []struct {
		name     string
		in       []byte
		exp      Expect
		openErr  error // from NewCheckedReader
		readErr  error // from reading to the end
		wantSize int64
	}{
		{name: "good", in: good, exp: exp, wantSize: int64(len(good))},
		{name: "empty set", in: msg(b, 1, RoleResponder), exp: exp, wantSize: HeaderSize + digestSize},
		{name: "round 2", in: msg(b, 2, RoleResponder, make([]byte, 16)), exp: Expect{Round: 2, Role: RoleResponder, Binding: exp.Binding, Cap: 4}, wantSize: HeaderSize + 16 + digestSize},
		{name: "other session", in: msg(other, 1, RoleResponder, validElements(1)...), exp: exp, openErr: ErrWrongSession},
		{name: "wrong role", in: msg(b, 1, RoleInitiator, validElements(1)...), exp: exp, openErr: ErrWrongRound},
		{name: "wrong round", in: msg(b, 2, RoleResponder, make([]byte, 16)), exp: exp, openErr: ErrWrongRound},
		{name: "over cap", in: msg(b, 1, RoleResponder, validElements(5)...), exp: exp, openErr: ErrOverCap},
		{name: "short header", in: good[:20], exp: exp, openErr: ErrTruncated},
		{name: "bad magic", in: append([]byte("XPSI"), good[4:]...), exp: exp, openErr: ErrMalformedMessage},
		{name: "truncated elements", in: good[:HeaderSize+40], exp: exp, readErr: ErrTruncated},
		{name: "truncated digest", in: good[:len(good)-1], exp: exp, readErr: ErrTruncated},
		{name: "corrupted", in: flipped, exp: exp, readErr: ErrMalformedMessage},
		{name: "trailing data", in: append(bytes.Clone(good), 0), exp: exp, readErr: ErrMalformedMessage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewCheckedReader(iotest.HalfReader(bytes.NewReader(tc.in)), tc.exp)
			if tc.openErr != nil {
				if !errors.Is(err, tc.openErr) {
					t.Fatalf("open: %v, want %v", err, tc.openErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			out, err := io.ReadAll(c)
			if tc.readErr != nil {
				if !errors.Is(err, tc.readErr) {
					t.Fatalf("read: %v, want %v", err, tc.readErr)
				}
				return
			}
			if err != nil || !bytes.Equal(out, tc.in) {
				t.Fatalf("read %d bytes, %v; want the %d bytes unchanged", len(out), err, len(tc.in))
			}
			if got := c.Header().MessageSize(); got != tc.wantSize || got != int64(len(tc.in)) {
				t.Fatalf("MessageSize %d, want %d", got, tc.wantSize)
			}
		})
	}
}

// FuzzCheckedReader: a message the relay passes whole must be exactly what
// the receiving party's reader accepts as framing, byte for byte.
func FuzzCheckedReader(f *testing.F) {
	_, b := pair(f, 8)
	f.Add(msg(b, 1, RoleResponder, validElements(2)...))
	f.Add(msg(b, 1, RoleResponder))
	f.Add(msg(b, 2, RoleResponder, make([]byte, 16)))
	f.Fuzz(func(t *testing.T, data []byte) {
		exp := Expect{Round: 1, Role: RoleResponder, Binding: b.binding, Cap: 8}
		c, err := NewCheckedReader(bytes.NewReader(data), exp)
		if err != nil {
			return
		}
		out, err := io.ReadAll(c)
		if err != nil {
			return
		}
		if !bytes.Equal(out, data) || int64(len(data)) != c.Header().MessageSize() {
			t.Fatalf("passed %d bytes of %d (size %d)", len(out), len(data), c.Header().MessageSize())
		}
		m, err := openMessage(bytes.NewReader(data), expectation{round: 1, role: RoleResponder, binding: b.binding, cap: 8})
		if err != nil {
			t.Fatalf("relay passed what the party's reader refuses: %v", err)
		}
		buf := make([]byte, 64*elementSize)
		for {
			n, err := m.read(buf)
			if err != nil {
				t.Fatalf("relay passed a message the reader finds short: %v", err)
			}
			if n == 0 {
				break
			}
		}
		if err := m.finish(); err != nil {
			t.Fatalf("relay passed a message the reader refuses: %v", err)
		}
	})
}

// TestProtocolVersion: every message says which protocol made it; a relay
// reads it from the header, and a message of version 1 (ristretto255) or
// any other is refused by the relay and by a receiving session alike.
func TestProtocolVersion(t *testing.T) {
	a, b := pair(t, 4)
	good := msg(b, 1, RoleResponder, validElements(2)...)
	if good[4] != Version || Version != 2 {
		t.Fatalf("header version byte %d, Version %d", good[4], Version)
	}
	exp := Expect{Round: 1, Role: RoleResponder, Binding: a.binding, Cap: 4}
	cr, err := NewCheckedReader(bytes.NewReader(good), exp)
	if err != nil {
		t.Fatal(err)
	}
	if cr.Header().Version != Version {
		t.Errorf("relay read version %d", cr.Header().Version)
	}
	for _, v := range []byte{0, 1, 3, 255} {
		old := bytes.Clone(good)
		old[4] = v
		if _, err := NewCheckedReader(bytes.NewReader(old), exp); !errors.Is(err, ErrMalformedMessage) {
			t.Errorf("relay, version %d: %v", v, err)
		}
		a2, _ := pair(t, 4)
		var a1 bytes.Buffer
		if _, err := a2.Round1(t.Context(), slices.Values(aliases("x", 2)), &a1); err != nil {
			t.Fatal(err)
		}
		err := a2.Round2(t.Context(), bytes.NewReader(old), io.Discard)
		if !errors.Is(err, ErrMalformedMessage) || !strings.Contains(err.Error(), ProtocolName) {
			t.Errorf("session, version %d: %v", v, err)
		}
	}
}
