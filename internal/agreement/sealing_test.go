package agreement

import (
	"errors"
	"testing"
)

func TestVerifySealingKey(t *testing.T) {
	k, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mutate func(p *PublicKeys)
		want   error
	}{
		{"as generated", func(*PublicKeys) {}, nil},
		{"no signature", func(p *PublicKeys) { p.SealingSig = nil }, ErrBadSignature},
		{"another recipient", func(p *PublicKeys) { p.SealingRecipient = other.Public().SealingRecipient }, ErrBadSignature},
		{"another key's signature", func(p *PublicKeys) { p.SealingSig = other.Public().SealingSig }, ErrBadSignature},
		{"truncated signature", func(p *PublicKeys) { p.SealingSig = p.SealingSig[:10] }, ErrBadSignature},
		{"another signing key", func(p *PublicKeys) {
			o := other.Public()
			p.SigningKey, p.KeyID = o.SigningKey, o.KeyID
		}, ErrBadSignature},
		{"malformed recipient", func(p *PublicKeys) { p.SealingRecipient = "age1nope" }, ErrInvalidKey},
	}
	for _, c := range cases {
		p := k.Public()
		p.SealingSig = append([]byte(nil), p.SealingSig...)
		c.mutate(&p)
		if err := VerifySealingKey(p); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: VerifySealingKey = %v, want %v", c.name, err, c.want)
		}
	}
	// The signature survives the public key file.
	p, err := ParsePublicKeys(MarshalPublicKeys(k.Public()))
	if err != nil || VerifySealingKey(p) != nil {
		t.Fatalf("public key file round trip: %v, %v", err, VerifySealingKey(p))
	}
}
