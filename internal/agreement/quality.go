package agreement

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/parley-cti/parley/internal/stix"
)

// QualityFloor is the least an object of one type must carry to earn
// credit under an agreement (reciprocity.quality in the document, by STIX
// type). An object below it is still accepted and stored; it earns nothing
// and is not released to the counterpart as a contribution.
type QualityFloor struct {
	// NameMinLength: the object's name, trimmed, has at least this many
	// characters (0: no minimum beyond the rule every agreement applies).
	NameMinLength int
	// Requires lists properties that must be present and not empty.
	Requires []string
}

// maxNameMinLength bounds quality.<type>.name_min_length.
const maxNameMinLength = 256

// namedTypes are the STIX types whose name says what they are. Every
// agreement refuses credit to one whose name is trivial (TrivialName).
var namedTypes = map[string]bool{
	"attack-pattern": true, "campaign": true, "course-of-action": true, "grouping": true, "identity": true,
	"infrastructure": true, "intrusion-set": true, "location": true, "malware": true, "report": true,
	"threat-actor": true, "tool": true, "vulnerability": true,
}

// placeholderNames are names that name nothing.
var placeholderNames = map[string]bool{
	"x": true, "xx": true, "xxx": true, "test": true, "testing": true, "tests": true, "unknown": true, "n/a": true, "na": true,
	"none": true, "null": true, "nil": true, "undefined": true, "todo": true, "tbd": true, "placeholder": true,
	"sample": true, "example": true, "foo": true, "bar": true, "baz": true, "foobar": true, "asdf": true, "qwerty": true,
	"name": true, "lorem ipsum": true, "dummy": true, "fake": true, "temp": true, "tmp": true, "untitled": true,
	"default": true, "anonymous": true, "unnamed": true, "no name": true, "empty": true, "blank": true, "abc": true,
	"aaa": true, "123": true, "1234": true, "12345": true, "other": true, "misc": true, "generic": true,
}

// TrivialName reports whether name names nothing: empty, no letter or
// digit, one character repeated ("x", "aaaa"), or a placeholder word
// ("test", "unknown", "n/a"), ignoring case and surrounding white space.
func TrivialName(name string) bool {
	n := strings.ToLower(strings.Join(strings.Fields(name), " "))
	if n == "" || placeholderNames[n] {
		return true
	}
	first, _ := utf8.DecodeRuneInString(n)
	same, alnum := true, false
	for _, r := range n {
		same = same && r == first
		alnum = alnum || unicode.IsLetter(r) || unicode.IsDigit(r)
	}
	return same || !alnum
}

// BelowFloor says why obj earns no credit under terms, or returns "" when
// it may earn. Every agreement refuses a named object (identity, malware,
// threat-actor, …) whose name is trivial; terms.Quality may ask more of a
// type. Indicators need no rule here: their fingerprint is their pattern,
// so a pattern already known earns nothing anyway.
func BelowFloor(terms Terms, obj *stix.Object) string {
	floor, hasFloor := terms.Quality[obj.Type]
	if !namedTypes[obj.Type] && !hasFloor {
		return ""
	}
	var props map[string]json.RawMessage
	if err := json.Unmarshal(obj.Raw, &props); err != nil {
		return "its properties cannot be read" // ParseObject accepted it, so this does not happen
	}
	var name string
	rawName, hasName := props["name"]
	if hasName {
		_ = json.Unmarshal(rawName, &name)
	}
	if namedTypes[obj.Type] && hasName && TrivialName(name) {
		return fmt.Sprintf("the name %q names nothing (a placeholder, one repeated character or no letter or digit)", name)
	}
	if !hasFloor {
		return ""
	}
	if floor.NameMinLength > 0 {
		switch n := utf8.RuneCountInString(strings.TrimSpace(name)); {
		case !hasName:
			return fmt.Sprintf("a %s needs a name under this agreement", obj.Type)
		case TrivialName(name):
			return fmt.Sprintf("the name %q names nothing (a placeholder, one repeated character or no letter or digit)", name)
		case n < floor.NameMinLength:
			return fmt.Sprintf("the name %q is shorter than the %d characters this agreement asks of a %s", name, floor.NameMinLength, obj.Type)
		}
	}
	for _, p := range floor.Requires {
		if v, ok := props[p]; !ok || empty(v) {
			return fmt.Sprintf("a %s needs %s under this agreement", obj.Type, p)
		}
	}
	return ""
}

// empty reports whether a JSON value carries nothing: null, "", blank
// text, [] or {}.
func empty(v json.RawMessage) bool {
	var x any
	if json.Unmarshal(v, &x) != nil {
		return true
	}
	switch x := x.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(x) == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// decodeQuality reads reciprocity.quality: {"<stix type>": {"name_min_length": n, "requires": ["prop", …]}}.
func decodeQuality(rf *fields, t *Terms) {
	qf := rf.object("quality", false)
	if qf == nil {
		return
	}
	t.Quality = map[string]QualityFloor{}
	for _, typ := range slices.Sorted(maps.Keys(qf.m)) {
		tf := qf.object(typ, true)
		if tf == nil {
			continue
		}
		var fl QualityFloor
		if v, ok := tf.integer("name_min_length", false, 0, maxNameMinLength); ok {
			fl.NameMinLength = int(v)
		}
		if v, ok := tf.get("requires", false); ok {
			list, isList := v.([]any)
			if !isList {
				tf.p.add("%s must be an array of property names", tf.name("requires"))
			}
			for i, item := range list {
				s, isStr := item.(string)
				if !isStr || s == "" {
					tf.p.add("%s[%d] must be a property name", tf.name("requires"), i)
					continue
				}
				fl.Requires = append(fl.Requires, s)
			}
		}
		tf.finish()
		t.Quality[typ] = fl
	}
}

// checkQuality applies the semantic rules to the quality floors.
func checkQuality(p *problems, q map[string]QualityFloor, inScope map[string]bool) {
	for _, typ := range slices.Sorted(maps.Keys(q)) {
		fl := q[typ]
		if !inScope[typ] {
			p.add("reciprocity.quality: %q is not in scope.types", typ)
		}
		if fl.NameMinLength < 0 || fl.NameMinLength > maxNameMinLength {
			p.add("reciprocity.quality.%s.name_min_length must be between 0 and %d", typ, maxNameMinLength)
		}
		if fl.NameMinLength == 0 && len(fl.Requires) == 0 {
			p.add("reciprocity.quality.%s sets no rule; give name_min_length or requires, or leave the type out", typ)
		}
		seen := map[string]bool{}
		for _, r := range fl.Requires {
			if seen[r] {
				p.add("reciprocity.quality.%s.requires lists %q twice", typ, r)
			}
			seen[r] = true
		}
	}
}

// wireQuality is the normalized JSON form of the floors; nil when there
// are none, so that documents without them encode as before.
func wireQuality(q map[string]QualityFloor) map[string]any {
	if len(q) == 0 {
		return nil
	}
	out := map[string]any{}
	for typ, fl := range q {
		m := map[string]any{}
		if fl.NameMinLength > 0 {
			m["name_min_length"] = fl.NameMinLength
		}
		if len(fl.Requires) > 0 {
			m["requires"] = fl.Requires
		}
		out[typ] = m
	}
	return out
}
