package stix

// typeRules are the cross-property rules of single types, one function per
// object family (the property tables are in types.go).
func (v *validator) typeRules() error {
	switch v.spec.cat {
	case catSDO, catSRO:
		return v.domainRules()
	case catSCO:
		return v.observableRules()
	case catMarking:
		return v.markingRules()
	}
	return nil
}

// domainRules are the cross-property rules of domain and relationship
// objects (STIX 2.1 sections 4 and 5).
func (v *validator) domainRules() error {
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
	case "relationship":
		return v.order("start_time", "stop_time", true)
	}
	return nil
}
