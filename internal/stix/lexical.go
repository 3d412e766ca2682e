package stix

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Lexical helpers: identifiers, hex, IP and MAC values, timestamps.

// validTypeName: ^[a-z0-9-]{3,250}$, starting with a letter, no "--", not
// ending in '-' (the spec's type-name rule).
func validTypeName(s string) bool {
	if len(s) < 3 || len(s) > 250 || s[0] < 'a' || s[0] > 'z' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
		if c == '-' && s[i-1] == '-' {
			return false
		}
	}
	return true
}

// splitIdentifier checks "type--uuid" with an RFC 4122 UUID (versions 1-5,
// variant 10xx) and returns the type.
func splitIdentifier(id string) (string, bool) {
	if len(id) < 3+2+36 {
		return "", false
	}
	typ, u := id[:len(id)-38], id[len(id)-36:]
	if id[len(id)-38:len(id)-36] != "--" || !validTypeName(typ) || !validUUID(u) {
		return "", false
	}
	return typ, true
}

func validUUID(u string) bool {
	if len(u) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := u[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !isHexChar(c) {
			return false
		}
	}
	if u[14] < '1' || u[14] > '5' {
		return false
	}
	switch u[19] {
	case '8', '9', 'a', 'b', 'A', 'B':
		return true
	}
	return false
}

func isHexChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexChar(s[i]) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

func isLowerHyphen(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// jsonInt accepts a JSON number with an integral value (1 and 1.0 alike,
// as JSON Schema does).
func jsonInt(v *jvalue) (int64, bool) {
	if v.kind != jNumber {
		return 0, false
	}
	if n, err := strconv.ParseInt(v.s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(v.s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
		return 0, false
	}
	return int64(f), true
}

func validIPValue(s string, v4 bool) bool {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		return err == nil && pfx.Addr().Is4() == v4 && !pfx.Addr().Is4In6()
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4() == v4 && a.Zone() == ""
}

func validMAC(s string) bool {
	if len(s) != 17 {
		return false
	}
	for i := 0; i < 17; i++ {
		c := s[i]
		if i%3 == 2 {
			if c != ':' {
				return false
			}
		} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

var errBadTimestamp = errors.New("timestamp must look like 2006-01-02T15:04:05.000Z (UTC, Z suffix)")

// parseTimestamp parses a STIX timestamp: RFC 3339 in UTC with a literal Z
// and an optional fraction of any length.
func parseTimestamp(s string) (time.Time, error) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return time.Time{}, fmt.Errorf("%q: %w", s, errBadTimestamp)
	}
	num := func(a, b int) int {
		n := 0
		for i := a; i < b; i++ {
			if !isDigit(s[i]) {
				return -1
			}
			n = n*10 + int(s[i]-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec := num(11, 13), num(14, 16), num(17, 19)
	nanos := 0
	if len(s) > 20 {
		if s[19] != '.' || len(s) == 21 {
			return time.Time{}, fmt.Errorf("%q: %w", s, errBadTimestamp)
		}
		frac := s[20 : len(s)-1]
		if !isDigits(frac) {
			return time.Time{}, fmt.Errorf("%q: %w", s, errBadTimestamp)
		}
		for i := 0; i < 9; i++ {
			nanos *= 10
			if i < len(frac) {
				nanos += int(frac[i] - '0')
			}
		}
	}
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 60 {
		return time.Time{}, fmt.Errorf("%q: %w", s, errBadTimestamp)
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, time.UTC)
	// time.Date normalises 31 April to 1 May; a real date survives the trip.
	if t.Day() != day && sec != 60 {
		return time.Time{}, fmt.Errorf("%q: no such day", s)
	}
	if sec == 60 && (t.Add(-time.Second).Day() != day) {
		return time.Time{}, fmt.Errorf("%q: no such day", s)
	}
	return t, nil
}

func fractionDigits(s string) int {
	if len(s) <= 20 {
		return 0
	}
	return len(s) - 21
}
