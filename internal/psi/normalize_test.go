package psi

import (
	"errors"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		kind Kind
		in   string
		want string
	}{
		{KindEmail, "Foo@Example.COM ", "foo@example.com"},
		{KindEmail, " foo@example.com.", "foo@example.com"},
		{KindEmail, "\"a@b\"@Example.com", "\"a@b\"@example.com"},
		{KindAlias, "  LockBit Support ", "lockbit support"},
		{KindAlias, "Cafe\u0301", "café"},
		{KindAlias, "STRASSE", "strasse"},
		{KindAlias, "Straße", "strasse"},
		{KindIPv4, " 192.0.2.1", "192.0.2.1"},
		{KindIPv4, "::ffff:192.0.2.1", "192.0.2.1"},
		{KindIPv6, "2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
		{KindIPv6, "::FFFF:c000:0201", "192.0.2.1"},
		{KindDomain, "WWW.Example.COM.", "www.example.com"},
		{KindDomain, "Bücher.Example", "bücher.example"},
		{KindMD5, "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e"},
		{KindSHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
		{KindSHA256, "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{KindBitcoin, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"},
		{KindBitcoin, "BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"},
		{KindEthereum, "0x52908400098527886E0F7030069857D2E4169EE7", "0x52908400098527886e0f7030069857d2e4169ee7"},
	}
	for _, tc := range tests {
		got, err := Normalize(tc.kind, tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%s, %q) = %q, %v; want %q", tc.kind, tc.in, got, err, tc.want)
		}
	}
}

func TestNormalizeRefuses(t *testing.T) {
	tests := []struct {
		kind Kind
		in   string
		want error
	}{
		{"phone", "+1 555", ErrUnknownKind},
		{KindAlias, "   ", ErrInvalidValue},
		{KindAlias, "\xff\xfe", ErrInvalidValue},
		{KindEmail, "no-at-sign", ErrInvalidValue},
		{KindEmail, "@example.com", ErrInvalidValue},
		{KindEmail, "a b@example.com", ErrInvalidValue},
		{KindIPv4, "2001:db8::1", ErrInvalidValue},
		{KindIPv4, "010.0.0.1", ErrInvalidValue},
		{KindIPv6, "fe80::1%eth0", ErrInvalidValue},
		{KindDomain, "exa mple.com", ErrInvalidValue},
		{KindDomain, "a..b", ErrInvalidValue},
		{KindDomain, ".", ErrInvalidValue},
		{KindMD5, "d41d8cd98f00b204e9800998ecf8427", ErrInvalidValue},
		{KindSHA1, "zz39a3ee5e6b4b0d3255bfef95601890afd80709", ErrInvalidValue},
		{KindBitcoin, "bc1QAR0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", ErrInvalidValue},
		{KindBitcoin, "1A1zP1eP5QGefi2DMPTfTL5SLmv7Divf0l", ErrInvalidValue},
		{KindEthereum, "0x1234", ErrInvalidValue},
	}
	for _, tc := range tests {
		if got, err := Normalize(tc.kind, tc.in); !errors.Is(err, tc.want) {
			t.Errorf("Normalize(%s, %q) = %q, %v; want %v", tc.kind, tc.in, got, err, tc.want)
		}
	}
}

func TestDetectKind(t *testing.T) {
	tests := map[string]Kind{
		"Foo@Example.COM ":                           KindEmail,
		"192.0.2.1":                                  KindIPv4,
		"::ffff:192.0.2.1":                           KindIPv4,
		"2001:db8::1":                                KindIPv6,
		"evil.example.com":                           KindDomain,
		"d41d8cd98f00b204e9800998ecf8427e":           KindMD5,
		"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa":         KindBitcoin,
		"0x52908400098527886E0F7030069857D2E4169EE7": KindEthereum,
		"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq": KindBitcoin,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855": KindSHA256,
		"LockBitSupp": KindAlias,
		"v1.2.3":      KindAlias,
	}
	for in, want := range tests {
		if got, err := DetectKind(in); err != nil || got != want {
			t.Errorf("DetectKind(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := DetectKind(" "); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("DetectKind(blank) = %v, want ErrInvalidValue", err)
	}
}

// FuzzNormalize checks idempotence for every kind, and that the detected
// kind of a value normalizes.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"Foo@Example.COM ", "Cafe\u0301", "::ffff:1.2.3.4", "ß", "ǅ", "İstanbul.example", "\u0345", "bc1QAR", "0xAB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, k := range Kinds {
			n, err := Normalize(k, s)
			if err != nil {
				continue
			}
			n2, err := Normalize(k, n)
			if err != nil || n2 != n {
				t.Fatalf("Normalize(%s) not idempotent: %q -> %q -> %q, %v", k, s, n, n2, err)
			}
		}
		if k, err := DetectKind(s); err == nil {
			if _, err := Normalize(k, s); err != nil && k != KindAlias {
				t.Fatalf("DetectKind(%q) = %s but Normalize refuses it: %v", s, k, err)
			}
		}
	})
}
