package stix

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
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
// object) and computes its content fingerprint (Object.Fingerprint). On
// failure it returns a *ValidationError wrapping ErrInvalid, or
// ErrNotJSON / ErrWrongSpecVersion, naming the object id when known and the
// specific reason. It never panics.
func ParseObject(raw []byte) (*Object, error) { return parseObject(raw, true) }

// ValidateObject is ParseObject without the content fingerprint, for
// objects whose content nothing compares (a plain collection's): the
// fingerprint is a tenth of the server's CPU an object there. The object's
// Fingerprint is the zero value; the checks and errors are ParseObject's.
func ValidateObject(raw []byte) (*Object, error) { return parseObject(raw, false) }

func parseObject(raw []byte, fingerprint bool) (*Object, error) {
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
	v := validator{root: &root, fingerprint: fingerprint}
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
	// fingerprint asks for the content fingerprint.
	fingerprint bool
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
	if v.fingerprint {
		v.obj.Fingerprint = fingerprintOf(root, v.pattern)
	}
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
