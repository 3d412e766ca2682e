package stix

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Object is one validated STIX 2.1 object. Its strings share one immutable
// copy of the input (made once per parse), so holding an Object holds about
// twice len(Raw) bytes.
type Object struct {
	ID          string    // "type--uuid"
	Type        string    // the object's type
	SpecVersion string    // "2.1" (SCOs may omit it in input; still "2.1" here)
	Created     time.Time // zero if absent (SCOs)
	Modified    time.Time // zero if absent (SCOs, marking definitions); the TAXII "version"
	Markings    []string  // object_marking_refs (marking-definition ids), in order
	// GranularMarkings are the marking_ref ids of granular_markings, in
	// order: markings on parts of the object, which bind as much as
	// object_marking_refs when deciding where the object may go.
	GranularMarkings []string
	// Fingerprint identifies the object's content without its id,
	// timestamps and other bookkeeping (see Fingerprint).
	Fingerprint Fingerprint
	Refs        []string        // every *_ref / *_refs identifier the object holds, in document order
	Raw         json.RawMessage // the object's bytes exactly as received (not re-encoded)
}

// AllMarkings returns every marking-definition id the object carries:
// object_marking_refs, then the marking_ref of each granular marking. A
// decision about where the object may go (the highest TLP) must look at all
// of them: a TLP:RED description inside a TLP:GREEN object is TLP:RED data.
func (o *Object) AllMarkings() []string {
	if len(o.GranularMarkings) == 0 {
		return o.Markings
	}
	return append(append(make([]string, 0, len(o.Markings)+len(o.GranularMarkings)), o.Markings...), o.GranularMarkings...)
}

// ParseObject parses and validates one STIX 2.1 object (raw JSON of one
// object). On failure it returns a *ValidationError wrapping ErrInvalid, or
// ErrNotJSON / ErrWrongSpecVersion, naming the object id when known and the
// specific reason. It never panics.
func ParseObject(raw []byte) (*Object, error) {
	if len(raw) > MaxObjectSize {
		return nil, &ValidationError{Reason: fmt.Sprintf("object is %d bytes, more than the %d allowed", len(raw), MaxObjectSize)}
	}
	root, err := parseJSON(raw)
	if err != nil {
		return nil, &ValidationError{Reason: "not JSON: " + err.Error(), kind: ErrNotJSON}
	}
	if root.kind != jObject {
		return nil, &ValidationError{Reason: "expected a JSON object, got " + root.kind.String()}
	}
	v := validator{root: &root}
	obj, err := v.validate()
	if err != nil {
		return nil, err
	}
	obj.Raw = raw
	return obj, nil
}

type validator struct {
	root *jvalue
	id   string
	typ  string
	spec *typeSpec
	obj  Object
	// toplevelExt is set when an extension declares toplevel properties.
	toplevelExt bool
	// pattern is an indicator's parsed STIX pattern, kept for the
	// fingerprint.
	pattern *Pattern
}

func (v *validator) fail(format string, args ...any) error {
	return &ValidationError{ObjectID: v.id, Reason: fmt.Sprintf(format, args...)}
}

func (v *validator) failKind(kind error, format string, args ...any) error {
	return &ValidationError{ObjectID: v.id, Reason: fmt.Sprintf(format, args...), kind: kind}
}

func (v *validator) validate() (*Object, error) {
	root := v.root
	idv, ok := root.get("id")
	if !ok {
		return nil, v.fail("object has no id")
	}
	if idv.kind != jString {
		return nil, v.fail("id must be a string")
	}
	v.id = idv.s
	typv, ok := root.get("type")
	if !ok {
		return nil, v.fail("object has no type")
	}
	if typv.kind != jString {
		return nil, v.fail("type must be a string")
	}
	v.typ = typv.s
	if !validTypeName(v.typ) {
		return nil, v.fail("type %q is not a valid type name (a-z, 0-9 and '-', 3 to 250 characters)", v.typ)
	}
	if v.typ == "bundle" {
		return nil, v.fail("a bundle is not an object; send the objects it holds")
	}
	prefix, ok := splitIdentifier(v.id)
	if !ok {
		return nil, v.fail("id %q is not an identifier (type--UUID)", v.id)
	}
	if prefix != v.typ {
		return nil, v.fail("id type %q does not match type %q", prefix, v.typ)
	}

	v.spec = specs[v.typ]
	if err := v.scanExtensions(); err != nil {
		return nil, err
	}
	if v.spec == nil {
		return nil, v.fail("unknown object type %q (custom types must start with x- or be declared by a new-sdo, new-sro or new-sco extension)", v.typ)
	}
	v.obj.ID, v.obj.Type, v.obj.SpecVersion = v.id, v.typ, "2.1"

	// spec_version first: a 2.0 object fails for its version, not for the
	// properties 2.0 lacked.
	sv, hasSV := root.get("spec_version")
	switch {
	case !hasSV && v.spec.cat != catSCO:
		return nil, v.failKind(ErrWrongSpecVersion, "spec_version is missing (STIX 2.0 objects are not accepted; 2.1 is required)")
	case hasSV && sv.kind != jString:
		return nil, v.failKind(ErrWrongSpecVersion, "spec_version must be the string \"2.1\"")
	case hasSV && sv.s != "2.1":
		return nil, v.failKind(ErrWrongSpecVersion, "spec_version %q is not 2.1", sv.s)
	}

	for i := range root.obj {
		m := &root.obj[i]
		if err := v.property(m.key, &m.val); err != nil {
			return nil, err
		}
	}
	switch v.spec.cat {
	case catSDO, catSRO, catLanguageContent, catExtensionDefinition, catCustom:
		for _, name := range [...]string{"created", "modified"} {
			if _, ok := root.get(name); !ok {
				return nil, v.fail("missing required property %q", name)
			}
		}
	}
	for _, name := range v.spec.required {
		if _, ok := root.get(name); !ok {
			return nil, v.fail("missing required property %q", name)
		}
	}
	if !v.obj.Created.IsZero() && !v.obj.Modified.IsZero() && v.obj.Modified.Before(v.obj.Created) {
		return nil, v.fail("modified is before created")
	}
	if err := v.typeRules(); err != nil {
		return nil, err
	}
	v.collectRefs(root)
	v.obj.Fingerprint = fingerprintOf(root, v.pattern)
	return &v.obj, nil
}

// scanExtensions checks the extensions dictionary's shape early because it
// decides whether unknown types and toplevel properties are allowed.
func (v *validator) scanExtensions() error {
	ext, ok := v.root.get("extensions")
	if !ok {
		if v.spec == nil && strings.HasPrefix(v.typ, "x-") {
			v.spec = customSDOSpec
		}
		return nil
	}
	if ext.kind != jObject || len(ext.obj) == 0 {
		return v.fail("extensions must be a non-empty object")
	}
	var newKind string
	for i := range ext.obj {
		m := &ext.obj[i]
		if m.val.kind != jObject {
			return v.fail("extension %q must be an object", m.key)
		}
		if strings.HasPrefix(m.key, "extension-definition--") {
			if pfx, ok := splitIdentifier(m.key); !ok || pfx != "extension-definition" {
				return v.fail("extension key %q is not an extension-definition id", m.key)
			}
			et, ok := m.val.get("extension_type")
			if !ok {
				return v.fail("extension %q has no extension_type", m.key)
			}
			if et.kind != jString || !contains(extensionTypes, et.s) {
				return v.fail("extension %q: extension_type must be one of %s", m.key, strings.Join(extensionTypes, ", "))
			}
			switch et.s {
			case "toplevel-property-extension":
				v.toplevelExt = true
			case "new-sdo", "new-sro", "new-sco":
				newKind = et.s
			}
			continue
		}
		if v.spec != nil && contains(v.spec.extNames, m.key) {
			if len(m.val.obj) == 0 {
				return v.fail("extension %q must not be empty", m.key)
			}
			if err := v.nestedRefs(m.key, &m.val); err != nil {
				return err
			}
			continue
		}
		return v.fail("extension key %q is neither an extension-definition id nor a predefined extension of %s", m.key, v.typ)
	}
	if v.spec == nil {
		switch {
		case newKind == "new-sco":
			v.spec = customSCOSpec
		case newKind != "" || strings.HasPrefix(v.typ, "x-"):
			v.spec = customSDOSpec
		}
	} else if newKind != "" {
		return v.fail("%s extension on predefined type %s", newKind, v.typ)
	}
	return nil
}

var customPropName = func(s string) bool {
	// ^x_[a-z0-9_]{1,247}$
	if len(s) < 3 || len(s) > 249 || s[0] != 'x' || s[1] != '_' {
		return false
	}
	return propNameChars(s[2:])
}

func propNameChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (v *validator) property(name string, val *jvalue) error {
	pr, known := v.spec.props[name]
	if !known {
		custom := v.spec == customSDOSpec || v.spec == customSCOSpec
		switch {
		case customPropName(name):
		case (custom || v.toplevelExt) && len(name) >= 3 && len(name) <= 250 && propNameChars(name):
		case custom || v.toplevelExt:
			return v.fail("property name %q must be 3 to 250 characters of a-z, 0-9 and _", name)
		default:
			return v.fail("custom property %q must start with x_", name)
		}
		// Custom *_ref properties are not held to the identifier rule:
		// MITRE ATT&CK, for one, publishes x_mitre_data_source_ref: "".
		// collectRefs still only gathers real identifiers.
		return nil
	}
	return v.check(name, pr, val)
}

func (v *validator) check(name string, pr prop, val *jvalue) error {
	switch pr.kind {
	case kAny:
		return nil
	case kString:
		if val.kind != jString {
			return v.fail("property %q must be a string", name)
		}
		return v.stringRules(name, val.s)
	case kBool:
		if val.kind != jBool {
			return v.fail("property %q must be a boolean", name)
		}
	case kInt:
		n, ok := jsonInt(val)
		if !ok {
			return v.fail("property %q must be an integer", name)
		}
		if pr.bounded && (float64(n) < pr.min || float64(n) > pr.max) {
			return v.fail("property %q must be an integer from %d to %d", name, int64(pr.min), int64(pr.max))
		}
	case kNumber:
		if val.kind != jNumber {
			return v.fail("property %q must be a number", name)
		}
		f, err := strconv.ParseFloat(val.s, 64)
		if err != nil || math.IsInf(f, 0) {
			return v.fail("property %q must be a finite number", name)
		}
		if pr.bounded && (f < pr.min || f > pr.max) {
			return v.fail("property %q must be from %g to %g", name, pr.min, pr.max)
		}
	case kTimestamp, kTimestampMillis:
		if val.kind != jString {
			return v.fail("property %q must be a timestamp string", name)
		}
		t, err := parseTimestamp(val.s)
		if err != nil {
			return v.fail("property %q: %v", name, err)
		}
		if pr.kind == kTimestampMillis && fractionDigits(val.s) < 3 {
			return v.fail("property %q must be precise to the millisecond (at least 3 fractional digits)", name)
		}
		switch name {
		case "created":
			v.obj.Created = t
		case "modified":
			v.obj.Modified = t
		}
	case kStringList, kEnumList:
		if val.kind != jArray || len(val.arr) == 0 {
			return v.fail("property %q must be a non-empty list of strings", name)
		}
		for i := range val.arr {
			if val.arr[i].kind != jString {
				return v.fail("property %q must be a list of strings", name)
			}
			if pr.kind == kEnumList && !contains(pr.enum, val.arr[i].s) {
				return v.fail("property %q: %q is not one of %s", name, val.arr[i].s, strings.Join(pr.enum, ", "))
			}
		}
	case kEnum:
		if val.kind != jString || !contains(pr.enum, val.s) {
			return v.fail("property %q must be one of %s", name, strings.Join(pr.enum, ", "))
		}
	case kRef:
		if val.kind != jString {
			return v.fail("property %q must be an identifier string", name)
		}
		return v.checkRef(name, pr, val.s)
	case kRefList:
		if val.kind != jArray || len(val.arr) == 0 {
			return v.fail("property %q must be a non-empty list of identifiers", name)
		}
		for i := range val.arr {
			if val.arr[i].kind != jString {
				return v.fail("property %q must be a list of identifier strings", name)
			}
			if err := v.checkRef(name, pr, val.arr[i].s); err != nil {
				return err
			}
		}
		if name == "object_marking_refs" {
			v.obj.Markings = make([]string, len(val.arr))
			for i := range val.arr {
				v.obj.Markings[i] = val.arr[i].s
			}
		}
	case kObject:
		if val.kind != jObject {
			return v.fail("property %q must be an object", name)
		}
	case kDict:
		if val.kind != jObject || len(val.obj) == 0 {
			return v.fail("property %q must be a non-empty object", name)
		}
	case kObjectList:
		if val.kind != jArray || len(val.arr) == 0 {
			return v.fail("property %q must be a non-empty list of objects", name)
		}
		for i := range val.arr {
			if val.arr[i].kind != jObject {
				return v.fail("property %q must be a list of objects", name)
			}
		}
	case kHashes:
		return v.checkHashes(name, val)
	case kHex:
		if val.kind != jString || len(val.s)%2 != 0 || !isHex(val.s) {
			return v.fail("property %q must be a string of hex digit pairs", name)
		}
	case kBinary:
		if val.kind != jString {
			return v.fail("property %q must be a base64 string", name)
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(val.s); err != nil {
			return v.fail("property %q is not valid base64", name)
		}
	case kKillChain:
		return v.checkKillChain(name, val)
	case kExtRefs:
		return v.checkExternalRefs(name, val)
	case kGranular:
		return v.checkGranular(name, val)
	case kExtensions:
		// Shape checked by scanExtensions.
	}
	return nil
}

func (v *validator) checkRef(name string, pr prop, id string) error {
	typ, ok := splitIdentifier(id)
	if !ok {
		return v.fail("property %q: %q is not an identifier (type--UUID)", name, id)
	}
	if pr.refTypes != nil && !contains(pr.refTypes, typ) {
		return v.fail("property %q must refer to %s, not %s", name, strings.Join(pr.refTypes, " or "), typ)
	}
	if contains(pr.notRefTypes, typ) {
		return v.fail("property %q must not refer to a %s", name, typ)
	}
	return nil
}

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

// typeRules are the cross-property rules of single types.
func (v *validator) typeRules() error {
	r := v.root
	switch v.typ {
	case "indicator":
		if err := v.order("valid_from", "valid_until", true); err != nil {
			return err
		}
		pt, _ := r.get("pattern_type")
		if pt.s == "stix" {
			pat, _ := r.get("pattern")
			parsed, err := ParsePattern(pat.s)
			if err != nil {
				return v.fail("pattern: %v", err)
			}
			v.pattern = parsed
		}
	case "campaign", "intrusion-set", "threat-actor", "infrastructure", "sighting":
		return v.order("first_seen", "last_seen", false)
	case "observed-data":
		if err := v.order("first_observed", "last_observed", false); err != nil {
			return err
		}
		_, a := r.get("objects")
		_, b := r.get("object_refs")
		if a == b {
			return v.fail("observed-data needs exactly one of object_refs and objects")
		}
	case "relationship":
		return v.order("start_time", "stop_time", true)
	case "malware":
		fam, _ := r.get("is_family")
		if _, hasName := r.get("name"); fam.b && !hasName {
			return v.fail("malware family (is_family true) needs a name")
		}
		return v.order("first_seen", "last_seen", false)
	case "location":
		_, reg := r.get("region")
		_, cty := r.get("country")
		_, lat := r.get("latitude")
		_, lon := r.get("longitude")
		_, prec := r.get("precision")
		if lat != lon {
			return v.fail("latitude and longitude must be given together")
		}
		if prec && !lat {
			return v.fail("precision needs latitude and longitude")
		}
		if !reg && !cty && !lat {
			return v.fail("location needs region, country, or latitude and longitude")
		}
	case "malware-analysis":
		_, res := r.get("result")
		_, scos := r.get("analysis_sco_refs")
		if !res && !scos {
			return v.fail("malware-analysis needs result or analysis_sco_refs")
		}
	case "marking-definition":
		return v.markingRules()
	case "artifact":
		_, bin := r.get("payload_bin")
		_, url := r.get("url")
		_, hashes := r.get("hashes")
		if bin && url {
			return v.fail("artifact must not have both payload_bin and url")
		}
		if url && !hashes {
			return v.fail("artifact with url needs hashes")
		}
		_, key := r.get("decryption_key")
		_, alg := r.get("encryption_algorithm")
		if key && !alg {
			return v.fail("decryption_key needs encryption_algorithm")
		}
	case "file":
		_, hashes := r.get("hashes")
		_, name := r.get("name")
		if !hashes && !name {
			return v.fail("file needs hashes or name")
		}
	case "email-message":
		mp, _ := r.get("is_multipart")
		_, body := r.get("body")
		_, parts := r.get("body_multipart")
		if mp.b && body {
			return v.fail("multipart email-message must not have body")
		}
		if !mp.b && parts {
			return v.fail("email-message with body_multipart must have is_multipart true")
		}
		if bm, ok := r.get("body_multipart"); ok {
			for i := range bm.arr {
				if err := v.nestedRefs("body_multipart", &bm.arr[i]); err != nil {
					return err
				}
			}
		}
	case "network-traffic":
		_, src := r.get("src_ref")
		_, dst := r.get("dst_ref")
		if !src && !dst {
			return v.fail("network-traffic needs src_ref or dst_ref")
		}
		return v.order("start", "end", false)
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

func (v *validator) markingRules() error {
	r := v.root
	dt, hasDT := r.get("definition_type")
	def, hasDef := r.get("definition")
	ext, hasExt := r.get("extensions")
	if hasDT != hasDef {
		return v.fail("definition_type and definition must be given together")
	}
	if !hasDT && !hasExt {
		return v.fail("marking-definition needs definition_type and definition, or an extension")
	}
	if hasDT {
		switch dt.s {
		case "tlp":
			t, ok := def.get("tlp")
			if !ok || t.kind != jString || tlp1IDs[t.s] == "" {
				return v.fail("TLP definition must be {\"tlp\": white|green|amber|red}")
			}
			if v.id != tlp1IDs[t.s] {
				return v.fail("TLP:%s marking must use the standard id %s", strings.ToUpper(t.s), tlp1IDs[t.s])
			}
			// The spec fixes the whole TLP 1.0 objects, not just their ids.
			if c, _ := r.get("created"); c.s != "2017-01-20T00:00:00.000Z" {
				return v.fail("TLP 1.0 marking must have the standard created 2017-01-20T00:00:00.000Z")
			}
			if n, ok := r.get("name"); !ok || n.s != "TLP:"+strings.ToUpper(t.s) {
				return v.fail("TLP 1.0 marking must have the standard name TLP:%s", strings.ToUpper(t.s))
			}
		case "statement":
			s, ok := def.get("statement")
			if !ok || s.kind != jString {
				return v.fail("statement definition needs a string statement")
			}
		}
	}
	if hasExt {
		if t, ok := ext.get(TLP2ExtensionID); ok {
			lv, ok := t.get("tlp_2_0")
			if !ok || lv.kind != jString || tlp2IDs[lv.s] == "" {
				return v.fail("TLP 2.0 extension needs tlp_2_0: clear, green, amber, amber+strict or red")
			}
			if v.id != tlp2IDs[lv.s] {
				return v.fail("TLP 2.0 %s marking must use the standard id %s", lv.s, tlp2IDs[lv.s])
			}
		}
	}
	return nil
}

// collectRefs gathers every *_ref / *_refs value in document order.
// observed-data's deprecated "objects" holds local keys, not identifiers,
// and language-content "contents" holds translated text, so neither is
// walked.
func (v *validator) collectRefs(o *jvalue) {
	for i := range o.obj {
		m := &o.obj[i]
		if o == v.root && (m.key == "objects" || m.key == "contents") {
			continue
		}
		switch {
		case strings.HasSuffix(m.key, "_ref") && m.val.kind == jString:
			if _, ok := splitIdentifier(m.val.s); ok {
				v.obj.Refs = append(v.obj.Refs, m.val.s)
			}
		case strings.HasSuffix(m.key, "_refs") && m.val.kind == jArray:
			for j := range m.val.arr {
				if e := &m.val.arr[j]; e.kind == jString {
					if _, ok := splitIdentifier(e.s); ok {
						v.obj.Refs = append(v.obj.Refs, e.s)
					}
				}
			}
		case m.val.kind == jObject:
			v.collectRefs(&m.val)
		case m.val.kind == jArray:
			for j := range m.val.arr {
				if m.val.arr[j].kind == jObject {
					v.collectRefs(&m.val.arr[j])
				}
			}
		}
	}
}

// ---- lexical helpers ----

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
