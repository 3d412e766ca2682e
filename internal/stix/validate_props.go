package stix

import (
	"strings"
)

// Rules of single properties and of the common nested types (hashes, kill
// chain phases, external references, granular markings), shared by every
// family.

// stringRules are the per-property string constraints the spec states as
// MUST.
func (v *validator) stringRules(name, s string) error {
	switch {
	case name == "relationship_type":
		if s == "" || !isLowerHyphen(s) {
			return v.fail("relationship_type %q must contain only a-z, 0-9 and '-'", s)
		}
	case name == "value" && v.typ == "ipv4-addr":
		if !validIPValue(s, true) {
			return v.fail("value %q is not an IPv4 address or CIDR block", s)
		}
	case name == "value" && v.typ == "ipv6-addr":
		if !validIPValue(s, false) {
			return v.fail("value %q is not an IPv6 address or CIDR block", s)
		}
	case name == "value" && v.typ == "mac-addr":
		if !validMAC(s) {
			return v.fail("value %q is not a lowercase colon-delimited MAC-48 address", s)
		}
	}
	return nil
}

func (v *validator) checkHashes(name string, val *jvalue) error {
	if val.kind != jObject || len(val.obj) == 0 {
		return v.fail("property %q must be a non-empty object of hash values", name)
	}
	for i := range val.obj {
		m := &val.obj[i]
		if len(m.key) < 3 || len(m.key) > 250 {
			return v.fail("property %q: hash name %q must be 3 to 250 characters", name, m.key)
		}
		if m.val.kind != jString {
			return v.fail("property %q: hash %q must be a string", name, m.key)
		}
	}
	return nil
}

func (v *validator) checkKillChain(name string, val *jvalue) error {
	if val.kind != jArray || len(val.arr) == 0 {
		return v.fail("property %q must be a non-empty list of kill chain phases", name)
	}
	for i := range val.arr {
		e := &val.arr[i]
		if e.kind != jObject {
			return v.fail("property %q: each kill chain phase must be an object", name)
		}
		for _, k := range []string{"kill_chain_name", "phase_name"} {
			f, ok := e.get(k)
			if !ok || f.kind != jString {
				return v.fail("property %q: kill chain phase needs a string %s", name, k)
			}
		}
	}
	return nil
}

func (v *validator) checkExternalRefs(name string, val *jvalue) error {
	if val.kind != jArray || len(val.arr) == 0 {
		return v.fail("property %q must be a non-empty list of external references", name)
	}
	for i := range val.arr {
		e := &val.arr[i]
		if e.kind != jObject {
			return v.fail("external reference %d must be an object", i)
		}
		sn, ok := e.get("source_name")
		if !ok || sn.kind != jString {
			return v.fail("external reference %d has no source_name", i)
		}
		for _, k := range []string{"description", "url", "external_id"} {
			if f, ok := e.get(k); ok && f.kind != jString {
				return v.fail("external reference %d: %s must be a string", i, k)
			}
		}
		_, hasD := e.get("description")
		_, hasU := e.get("url")
		_, hasX := e.get("external_id")
		if !hasD && !hasU && !hasX {
			return v.fail("external reference %d (%s) needs a description, url or external_id", i, sn.s)
		}
		if h, ok := e.get("hashes"); ok {
			if err := v.checkHashes("external_references hashes", h); err != nil {
				return err
			}
		}
	}
	return nil
}

func (v *validator) checkGranular(name string, val *jvalue) error {
	if val.kind != jArray || len(val.arr) == 0 {
		return v.fail("property %q must be a non-empty list of granular markings", name)
	}
	for i := range val.arr {
		g := &val.arr[i]
		if g.kind != jObject {
			return v.fail("granular marking %d must be an object", i)
		}
		sel, ok := g.get("selectors")
		if !ok || sel.kind != jArray || len(sel.arr) == 0 {
			return v.fail("granular marking %d needs a non-empty selectors list", i)
		}
		for j := range sel.arr {
			if sel.arr[j].kind != jString || !validSelector(sel.arr[j].s) {
				return v.fail("granular marking %d: invalid selector", i)
			}
		}
		mr, hasMR := g.get("marking_ref")
		lang, hasLang := g.get("lang")
		if hasMR == hasLang {
			return v.fail("granular marking %d needs exactly one of marking_ref and lang", i)
		}
		if hasMR {
			if mr.kind != jString {
				return v.fail("granular marking %d: marking_ref must be a string", i)
			}
			if err := v.checkRef("marking_ref", ref("marking-definition"), mr.s); err != nil {
				return err
			}
			v.obj.GranularMarkings = append(v.obj.GranularMarkings, mr.s)
		}
		if hasLang && lang.kind != jString {
			return v.fail("granular marking %d: lang must be a string", i)
		}
	}
	return nil
}

// validSelector: property names and list indexes ("[n]"), joined by dots,
// e.g. "kill_chain_phases.[0].phase_name".
func validSelector(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		if len(part) > 2 && part[0] == '[' && part[len(part)-1] == ']' && isDigits(part[1:len(part)-1]) {
			continue // list index, "[n]"
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

// nestedRefs holds *_ref / *_refs properties inside a predefined structure
// (an SCO extension, an email MIME part) to the identifier rule.
func (v *validator) nestedRefs(where string, o *jvalue) error {
	for i := range o.obj {
		m := &o.obj[i]
		name := where + "." + m.key
		switch {
		case strings.HasSuffix(m.key, "_ref"):
			if err := v.check(name, prop{kind: kRef}, &m.val); err != nil {
				return err
			}
		case strings.HasSuffix(m.key, "_refs"):
			if err := v.check(name, prop{kind: kRefList}, &m.val); err != nil {
				return err
			}
		case m.val.kind == jObject:
			if err := v.nestedRefs(name, &m.val); err != nil {
				return err
			}
		case m.val.kind == jArray:
			for j := range m.val.arr {
				if m.val.arr[j].kind == jObject {
					if err := v.nestedRefs(name, &m.val.arr[j]); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// order checks that property b is after (strict) or not before a.
func (v *validator) order(a, b string, strict bool) error {
	av, ok1 := v.root.get(a)
	bv, ok2 := v.root.get(b)
	if !ok1 || !ok2 {
		return nil
	}
	at, err1 := parseTimestamp(av.s)
	bt, err2 := parseTimestamp(bv.s)
	if err1 != nil || err2 != nil {
		return nil // already reported
	}
	if strict && !bt.After(at) {
		return v.fail("%s must be later than %s", b, a)
	}
	if bt.Before(at) {
		return v.fail("%s is before %s", b, a)
	}
	return nil
}
