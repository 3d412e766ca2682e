package agreement

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fixture is two parties with registered keys and version 1 of the example
// document naming them.
type fixture struct {
	north, south *PrivateKeys
	ring         *KeyRing
	v1           *Document
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{ring: NewKeyRing()}
	var err error
	if f.north, err = GenerateKeys(); err != nil {
		t.Fatal(err)
	}
	if f.south, err = GenerateKeys(); err != nil {
		t.Fatal(err)
	}
	if err := f.ring.Register("cert-north", f.north.Public(), t0.Add(-30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := f.ring.Register("cyber-unit-south", f.south.Public(), t0.Add(-30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	d, err := ParseDocument(exampleRaw(t))
	if err != nil {
		t.Fatal(err)
	}
	d.Parties[0].KeyID = f.north.KeyID()
	d.Parties[1].KeyID = f.south.KeyID()
	f.v1 = d
	return f
}

func (f *fixture) keysOf(party string) *PrivateKeys {
	if party == "cert-north" {
		return f.north
	}
	return f.south
}

// sign makes a signature by party on doc at time at.
func (f *fixture) sign(t testing.TB, doc *Document, party string, action Action, at time.Time, opts ...func(*Statement)) Signature {
	t.Helper()
	k := f.keysOf(party)
	st := StatementFor(doc, action, party, k.KeyID(), at)
	for _, o := range opts {
		o(&st)
	}
	sig, err := Sign(k, st)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func because(reason string, effective time.Time) func(*Statement) {
	return func(st *Statement) { st.Reason, st.EffectiveAt = reason, effective }
}

// amended returns a copy of doc as version v with edit applied.
func amended(doc *Document, v int, edit func(*Document)) *Document {
	d := *doc
	d.Version = v
	d.Supersedes = v - 1
	if edit != nil {
		edit(&d)
	}
	return &d
}

func TestSignVerify(t *testing.T) {
	f := newFixture(t)
	sig := f.sign(t, f.v1, "cert-north", ActionPropose, t0)
	if err := Verify(f.north.Public(), sig); err != nil {
		t.Fatal(err)
	}
	if err := VerifyFor(f.v1, f.ring, sig); err != nil {
		t.Fatal(err)
	}
}

func TestSignatureBinding(t *testing.T) {
	f := newFixture(t)
	v2 := amended(f.v1, 2, func(d *Document) { d.Reciprocity.Grace = 50 })
	propose := f.sign(t, f.v1, "cert-north", ActionPropose, t0)

	changed := *f.v1
	changed.Scope.MaxTLP = TLPRed

	asTerminate := propose
	asTerminate.Action, asTerminate.Reason, asTerminate.EffectiveAt = ActionTerminate, "x", t0

	otherParty := propose
	otherParty.PartyID = "cyber-unit-south"

	flipped := propose
	flipped.Sig = append([]byte(nil), propose.Sig...)
	flipped.Sig[0] ^= 1

	outsider, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ring.Register("mallory", outsider.Public(), t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	bySomeoneElse, err := Sign(outsider, StatementFor(f.v1, ActionPropose, "mallory", outsider.KeyID(), t0))
	if err != nil {
		t.Fatal(err)
	}
	impersonating, err := Sign(outsider, StatementFor(f.v1, ActionPropose, "cert-north", outsider.KeyID(), t0))
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		doc  *Document
		sig  Signature
		want error
	}{
		{"v1 signature on v2", v2, propose, ErrWrongVersion},
		{"propose signature as terminate", f.v1, asTerminate, ErrBadSignature},
		{"document changed", &changed, propose, ErrDocumentChanged},
		{"signature moved to the other party", f.v1, otherParty, ErrNotParty},
		{"bit flipped", f.v1, flipped, ErrBadSignature},
		{"signer not a party", f.v1, bySomeoneElse, ErrNotParty},
		{"key of another party", f.v1, impersonating, ErrNotParty},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := VerifyFor(tc.doc, f.ring, tc.sig); !errors.Is(err, tc.want) {
				t.Errorf("VerifyFor = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRotatedOutKeyRejected(t *testing.T) {
	f := newFixture(t)
	newKeys, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Hour)
	rot, err := RotateKeys(f.north, "cert-north", newKeys.Public(), at)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ring.Rotate(rot); err != nil {
		t.Fatal(err)
	}
	before := f.sign(t, f.v1, "cert-north", ActionPropose, at.Add(-time.Minute))
	if err := VerifyFor(f.v1, f.ring, before); err != nil {
		t.Errorf("signature made before the rotation: %v", err)
	}
	after := f.sign(t, f.v1, "cert-north", ActionPropose, at)
	if err := VerifyFor(f.v1, f.ring, after); !errors.Is(err, ErrKeyRotated) || !errors.Is(err, ErrUnknownKey) {
		t.Errorf("signature by the rotated-out key: %v, want ErrKeyRotated", err)
	}
	withNew, err := Sign(newKeys, StatementFor(f.v1, ActionPropose, "cert-north", newKeys.KeyID(), at))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyFor(f.v1, f.ring, withNew); err != nil {
		t.Errorf("signature by the new key: %v", err)
	}
	// A second rotation from the retired key is refused.
	other, _ := GenerateKeys()
	rot2, err := RotateKeys(f.north, "cert-north", other.Public(), at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ring.Rotate(rot2); !errors.Is(err, ErrKeyRotated) {
		t.Errorf("rotation from a retired key: %v", err)
	}
}

func TestVerifyRotation(t *testing.T) {
	f := newFixture(t)
	next, _ := GenerateKeys()
	rot, err := RotateKeys(f.north, "cert-north", next.Public(), t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyRotation(f.north.Public(), rot); err != nil {
		t.Fatal(err)
	}
	tampered := rot
	tampered.NewKeys = f.south.Public()
	if err := VerifyRotation(f.north.Public(), tampered); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered rotation: %v", err)
	}
	if err := VerifyRotation(f.south.Public(), rot); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("rotation checked against the wrong key: %v", err)
	}
	later := rot
	later.At = rot.At.Add(time.Second)
	if err := VerifyRotation(f.north.Public(), later); !errors.Is(err, ErrBadSignature) {
		t.Errorf("rotation time changed: %v", err)
	}
}

func TestKeyFiles(t *testing.T) {
	k, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "party.key")
	if err := WritePrivateKeysFile(path, k); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", info.Mode().Perm())
	}
	if err := WritePrivateKeysFile(path, k); err == nil {
		t.Error("overwrote an existing key file")
	}
	back, err := ReadPrivateKeysFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.KeyID() != k.KeyID() || back.Public().SealingRecipient != k.Public().SealingRecipient {
		t.Error("private keys changed over a file round trip")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivateKeysFile(path); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("world-readable key file: %v", err)
	}

	pub, err := ParsePublicKeys(MarshalPublicKeys(k.Public()))
	if err != nil {
		t.Fatal(err)
	}
	if pub.KeyID != k.KeyID() || !pub.SigningKey.Equal(k.Public().SigningKey) {
		t.Error("public keys changed over a round trip")
	}
	if len(pub.KeyID) != 16 {
		t.Errorf("key id %q is not 8 bytes of hex", pub.KeyID)
	}
	bad := k.Public()
	bad.KeyID = "0000000000000000"
	if _, err := ParsePublicKeys(MarshalPublicKeys(bad)); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("public keys with a wrong key id: %v", err)
	}
	for _, junk := range []string{"", "not pem", string(MarshalPublicKeys(k.Public()))} {
		if _, err := ParsePrivateKeys([]byte(junk)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParsePrivateKeys(%.20q) = %v", junk, err)
		}
	}
}

func TestSignRefusesMalformedStatements(t *testing.T) {
	f := newFixture(t)
	base := StatementFor(f.v1, ActionSuspend, "cert-north", f.north.KeyID(), t0)
	cases := []struct {
		name string
		edit func(*Statement)
		want error
	}{
		{"suspend without reason", func(st *Statement) { st.EffectiveAt = t0 }, ErrBadSignature},
		{"propose with reason", func(st *Statement) { st.Action, st.Reason = ActionPropose, "why" }, ErrBadSignature},
		{"unknown action", func(st *Statement) { st.Action = "dance" }, ErrBadSignature},
		{"other key", func(st *Statement) { st.KeyID = f.south.KeyID() }, ErrUnknownKey},
		{"no time", func(st *Statement) { st.SignedAt = time.Time{}; st.Reason, st.EffectiveAt = "r", t0 }, ErrBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := base
			tc.edit(&st)
			if _, err := Sign(f.north, st); !errors.Is(err, tc.want) {
				t.Errorf("Sign = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignatureJSONRoundTrip(t *testing.T) {
	f := newFixture(t)
	sig := f.sign(t, f.v1, "cert-north", ActionTerminate, t0, because("breach of terms", t0.Add(time.Hour)))
	raw, err := json.Marshal(sig)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseSignature(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyFor(f.v1, f.ring, back); err != nil {
		t.Errorf("round-tripped signature: %v", err)
	}
	if _, err := ParseSignature([]byte(`{"action":"propose","extra":1}`)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("unknown field: %v", err)
	}
}

// FuzzVerifySignature: parsing and verifying arbitrary signature JSON never
// panics, and nothing but the genuine signature verifies.
func FuzzVerifySignature(f *testing.F) {
	fx := newFixture(f)
	genuine := fx.sign(f, fx.v1, "cert-north", ActionPropose, t0)
	raw, err := json.Marshal(genuine)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	terminate := fx.sign(f, fx.v1, "cert-north", ActionTerminate, t0, because("r", t0))
	term, _ := json.Marshal(terminate)
	f.Add(term)
	signed := map[string]bool{}
	for _, s := range []Signature{genuine, terminate} {
		c, _ := s.Canonical()
		signed[string(c)] = true
	}
	f.Add([]byte(`{"action":"propose"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		sig, err := ParseSignature(in)
		if err != nil {
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("parse error %v does not wrap ErrBadSignature", err)
			}
			return
		}
		err = VerifyFor(fx.v1, fx.ring, sig)
		if err != nil {
			return
		}
		// Whatever verified must be exactly a statement north signed.
		a, _ := sig.Canonical()
		if !signed[string(a)] {
			t.Fatalf("a statement nobody signed verified: %s", a)
		}
	})
}

func BenchmarkSign(b *testing.B) {
	f := newFixture(b)
	st := StatementFor(f.v1, ActionPropose, "cert-north", f.north.KeyID(), t0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(f.north, st); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
}

func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	sig := f.sign(b, f.v1, "cert-north", ActionPropose, t0)
	pub := f.north.Public()
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(pub, sig); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
}

// BenchmarkVerifyFor includes hashing the document and resolving the key.
func BenchmarkVerifyFor(b *testing.B) {
	f := newFixture(b)
	sig := f.sign(b, f.v1, "cert-north", ActionPropose, t0)
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyFor(f.v1, f.ring, sig); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
}

// BenchmarkEd25519Baseline signs the same statement bytes directly, so the
// overhead of building the canonical statement shows as a ratio to Sign.
func BenchmarkEd25519Baseline(b *testing.B) {
	f := newFixture(b)
	msg, err := StatementFor(f.v1, ActionPropose, "cert-north", f.north.KeyID(), t0).Canonical()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		_ = ed25519.Sign(f.north.Signing, msg)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
}
