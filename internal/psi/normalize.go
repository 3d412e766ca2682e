package psi

import (
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/parley-cti/parley/internal/fault"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Kind names what an identifier is; it selects the normalization and is part
// of the hash input, so that the same string as an alias and as a domain
// never match each other.
type Kind string

// The kinds of identifier a wanted list may hold.
const (
	KindEmail    Kind = "email"
	KindAlias    Kind = "alias"  // nickname, handle or any free string
	KindIPv4     Kind = "ipv4"   // hashed in the shared "ip" domain with KindIPv6
	KindIPv6     Kind = "ipv6"   // IPv4-mapped addresses are unmapped to IPv4
	KindDomain   Kind = "domain" // lowercased; see Normalize about IDNA
	KindMD5      Kind = "md5"
	KindSHA1     Kind = "sha1"
	KindSHA256   Kind = "sha256"
	KindSHA512   Kind = "sha512"
	KindBitcoin  Kind = "btc" // base58 kept as is, bech32 lowercased
	KindEthereum Kind = "eth" // 0x + 40 hex digits, lowercased
)

// Kinds lists every kind Normalize accepts.
var Kinds = []Kind{KindEmail, KindAlias, KindIPv4, KindIPv6, KindDomain, KindMD5, KindSHA1, KindSHA256, KindSHA512, KindBitcoin, KindEthereum}

var (
	// ErrUnknownKind is returned for a kind not in Kinds.
	ErrUnknownKind = fault.New(fault.Invalid, "match: unknown identifier kind")
	// ErrInvalidValue is returned when a value is not a valid identifier of its kind.
	ErrInvalidValue = fault.New(fault.Invalid, "match: invalid identifier")
)

// hashDomainVersion prefixes every hash input; bump it if any normalization
// changes, so old and new inputs never collide silently.
const hashDomainVersion = "parley-psi-v1"

// folder is stateless for Fold; cases.Caser is not safe for concurrent use
// in general, so each call makes its own (cheap) caser.
//
// Unicode case folding maps Cherokee's small letters to its capitals
// (CaseFolding.txt: U+AB70–U+ABBF to U+13A0–U+13EF, U+13F8–U+13FD to
// U+13F0–U+13F5), but x/text's Fold maps the capitals to the small
// letters, so that folding twice gave back the input ("ꮮ" -> "Ꮮ" ->
// "ꮮ", found by FuzzNormalize): the small letters are mapped to the
// capitals after it, as CaseFolding.txt says, which makes the rule
// idempotent.
func foldString(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 0xAB70 && r <= 0xABBF:
			return r - 0xAB70 + 0x13A0
		case r >= 0x13F8 && r <= 0x13FD:
			return r - 8
		}
		return r
	}, cases.Fold().String(s))
}

// foldText is the alias rule: trim, NFC, Unicode case folding, NFC again
// (folding can produce denormalized sequences).
func foldText(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fault.Errorf("%w: not valid UTF-8", ErrInvalidValue)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fault.Errorf("%w: empty", ErrInvalidValue)
	}
	s = norm.NFC.String(foldString(norm.NFC.String(s)))
	return s, nil
}

// Normalize returns the canonical form of s as an identifier of the given
// kind, so that two parties holding the same identifier written differently
// ("Foo@Example.COM " and "foo@example.com", "2001:DB8::1" and
// "2001:db8:0:0::1") hash to the same group element. It is idempotent:
// Normalize(k, Normalize(k, s)) == Normalize(k, s).
//
// Domains are lowercased (and non-ASCII ones NFC-normalized and case-folded)
// but not converted with IDNA: golang.org/x/net/idna is not a dependency of
// this module, so a U-label and its xn-- A-label do not match each other.
// E-mail addresses are case-folded as a whole, local part included, because
// in practice mailbox providers ignore case and a missed match costs more
// than the rare false one. Bitcoin and bech32 checksums are not verified.
//
// Errors wrap ErrUnknownKind or ErrInvalidValue.
func Normalize(kind Kind, s string) (string, error) {
	switch kind {
	case KindAlias:
		return foldText(s)
	case KindEmail:
		return normalizeEmail(s)
	case KindIPv4, KindIPv6:
		return normalizeIP(kind, s)
	case KindDomain:
		return normalizeDomain(s)
	case KindMD5:
		return normalizeHex(s, 32)
	case KindSHA1:
		return normalizeHex(s, 40)
	case KindSHA256:
		return normalizeHex(s, 64)
	case KindSHA512:
		return normalizeHex(s, 128)
	case KindBitcoin:
		return normalizeBitcoin(s)
	case KindEthereum:
		return normalizeEthereum(s)
	}
	return "", fault.Errorf("%w: %q", ErrUnknownKind, kind)
}

// hashDomain is the kind written into the hash input; both IP kinds share
// one so that an IPv4-mapped IPv6 address matches the IPv4 one.
func hashDomain(kind Kind) string {
	if kind == KindIPv4 || kind == KindIPv6 {
		return "ip"
	}
	return string(kind)
}

// appendHashInput appends "parley-psi-v1|<kind>|<normalized>" to dst.
func appendHashInput(dst []byte, kind Kind, normalized string) []byte {
	dst = append(dst, hashDomainVersion...)
	dst = append(dst, '|')
	dst = append(dst, hashDomain(kind)...)
	dst = append(dst, '|')
	return append(dst, normalized...)
}

func normalizeEmail(s string) (string, error) {
	f, err := foldText(s)
	if err != nil {
		return "", err
	}
	at := strings.LastIndexByte(f, '@')
	if at <= 0 || at == len(f)-1 {
		return "", fault.Errorf("%w: e-mail address needs local@domain", ErrInvalidValue)
	}
	local := f[:at]
	if strings.ContainsAny(local, " \t\r\n") {
		return "", fault.Errorf("%w: e-mail local part has white space", ErrInvalidValue)
	}
	domain, err := normalizeDomain(f[at+1:])
	if err != nil {
		return "", err
	}
	return local + "@" + domain, nil
}

func normalizeIP(kind Kind, s string) (string, error) {
	addr, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return "", fault.Errorf("%w: %v", ErrInvalidValue, err)
	}
	if addr.Zone() != "" {
		return "", fault.Errorf("%w: IP address with a zone", ErrInvalidValue)
	}
	addr = addr.Unmap()
	if kind == KindIPv4 && !addr.Is4() {
		return "", fault.Errorf("%w: not an IPv4 address", ErrInvalidValue)
	}
	return addr.String(), nil
}

func normalizeDomain(s string) (string, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", fault.Errorf("%w: empty domain", ErrInvalidValue)
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		s = strings.ToLower(s)
	} else {
		f, err := foldText(s)
		if err != nil {
			return "", err
		}
		s = f
	}
	if len(s) > 253 {
		return "", fault.Errorf("%w: domain longer than 253 bytes", ErrInvalidValue)
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return "", fault.Errorf("%w: domain label empty or longer than 63 bytes", ErrInvalidValue)
		}
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			case r >= utf8.RuneSelf:
				if !isDomainRune(r) {
					return "", fault.Errorf("%w: character %q in domain", ErrInvalidValue, r)
				}
			default:
				return "", fault.Errorf("%w: character %q in domain", ErrInvalidValue, r)
			}
		}
	}
	return s, nil
}

// isDomainRune refuses non-ASCII white space and separators that would let
// two visually different strings survive as "domains".
func isDomainRune(r rune) bool {
	return r != utf8.RuneError && r != '\u00a0' && r != '\u3002' && r != '\uff0e' && r != '\uff61' && !(r >= '\u2000' && r <= '\u200f') && r != '\u2028' && r != '\u2029' && r != '\ufeff'
}

func normalizeHex(s string, n int) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) != n {
		return "", fault.Errorf("%w: want %d hex digits, got %d characters", ErrInvalidValue, n, len(s))
	}
	if !isHex(s) {
		return "", fault.Errorf("%w: not hexadecimal", ErrInvalidValue)
	}
	return s, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

const (
	base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	bech32Charset  = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
)

func normalizeBitcoin(s string) (string, error) {
	s = strings.TrimSpace(s)
	lower := strings.ToLower(s)
	if strings.HasPrefix(lower, "bc1") || strings.HasPrefix(lower, "tb1") || strings.HasPrefix(lower, "bcrt1") {
		// BIP 173: all-lower or all-upper, never mixed.
		if s != lower && s != strings.ToUpper(s) {
			return "", fault.Errorf("%w: bech32 address in mixed case", ErrInvalidValue)
		}
		sep := strings.LastIndexByte(lower, '1')
		data := lower[sep+1:]
		if len(lower) < 14 || len(lower) > 90 || len(data) < 6 {
			return "", fault.Errorf("%w: bech32 address length", ErrInvalidValue)
		}
		for i := 0; i < len(data); i++ {
			if strings.IndexByte(bech32Charset, data[i]) < 0 {
				return "", fault.Errorf("%w: character %q in bech32 address", ErrInvalidValue, data[i])
			}
		}
		return lower, nil
	}
	if len(s) < 25 || len(s) > 35 || (s[0] != '1' && s[0] != '3' && s[0] != 'm' && s[0] != 'n' && s[0] != '2') {
		return "", fault.Errorf("%w: not a bitcoin address", ErrInvalidValue)
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(base58Alphabet, s[i]) < 0 {
			return "", fault.Errorf("%w: character %q in base58 address", ErrInvalidValue, s[i])
		}
	}
	return s, nil
}

func normalizeEthereum(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) != 42 || !strings.HasPrefix(s, "0x") || !isHex(s[2:]) {
		return "", fault.Errorf("%w: want 0x and 40 hex digits", ErrInvalidValue)
	}
	return s, nil
}

// DetectKind guesses the kind of an identifier from its shape: IP address,
// file hash by length, wallet, e-mail address, domain, and alias for anything
// else. It never fails on a non-empty string; the guess is a convenience for
// importing lists and callers with typed data should pass the kind instead.
func DetectKind(s string) (Kind, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return "", fault.Errorf("%w: empty", ErrInvalidValue)
	}
	if addr, err := netip.ParseAddr(t); err == nil && addr.Zone() == "" {
		if addr.Unmap().Is4() {
			return KindIPv4, nil
		}
		return KindIPv6, nil
	}
	if isHex(t) {
		switch len(t) {
		case 32:
			return KindMD5, nil
		case 40:
			return KindSHA1, nil
		case 64:
			return KindSHA256, nil
		case 128:
			return KindSHA512, nil
		}
	}
	if _, err := normalizeEthereum(t); err == nil {
		return KindEthereum, nil
	}
	if _, err := normalizeBitcoin(t); err == nil && !strings.ContainsAny(t, ".@") {
		return KindBitcoin, nil
	}
	if strings.Contains(t, "@") {
		if _, err := normalizeEmail(t); err == nil {
			return KindEmail, nil
		}
	}
	if strings.Contains(strings.TrimSuffix(t, "."), ".") {
		if d, err := normalizeDomain(t); err == nil {
			tld := d[strings.LastIndexByte(d, '.')+1:]
			if !strings.ContainsAny(tld, "0123456789-_") {
				return KindDomain, nil
			}
		}
	}
	return KindAlias, nil
}
