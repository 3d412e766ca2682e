package stix

import (
	"strings"
)

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
