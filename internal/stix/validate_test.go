package stix

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const (
	indID  = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
	identR = "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"
	malID  = "malware--31b940d4-6f7f-459a-80ea-9c1f17b58abc"
)

// del marks a property to remove in a mutation.
type delMarker struct{}

var del = delMarker{}

func base(typ string) map[string]any {
	common := map[string]any{
		"type": typ, "spec_version": "2.1",
		"created": "2016-04-06T20:03:00.000Z", "modified": "2016-04-06T20:03:00.000Z",
	}
	add := map[string]map[string]any{
		"indicator": {"id": indID, "pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix",
			"valid_from": "2016-01-01T00:00:00Z"},
		"identity":     {"id": identR, "name": "ACME", "identity_class": "organization"},
		"malware":      {"id": malID, "name": "DarkSide", "is_family": true},
		"relationship": {"id": "relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad", "relationship_type": "indicates", "source_ref": indID, "target_ref": malID},
		"sighting":     {"id": "sighting--ee20065d-2555-424f-ad9e-0f8428623c75", "sighting_of_ref": indID},
		"location":     {"id": "location--a6e9345f-5a15-4c29-8bb3-7dcc5d168d64", "country": "fr"},
		"observed-data": {"id": "observed-data--b67d30ff-02ac-498a-92f9-32f845f448cf", "first_observed": "2015-12-21T19:00:00Z",
			"last_observed": "2015-12-21T19:00:00Z", "number_observed": 50, "object_refs": []any{"ipv4-addr--efcd5e80-570d-4131-b213-62cb18eaa6a8"}},
		"opinion": {"id": "opinion--b01efc25-77b4-4003-b18b-f6e24b5cd9f7", "object_refs": []any{indID}, "opinion": "agree"},
		"report": {"id": "report--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3", "name": "r", "published": "2016-01-20T17:00:00.000Z",
			"object_refs": []any{indID}},
		"marking-definition": {"id": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", "definition_type": "tlp",
			"definition": map[string]any{"tlp": "green"}, "modified": del, "name": "TLP:GREEN", "created": "2017-01-20T00:00:00.000Z"},
		"ipv4-addr": {"id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", "value": "198.51.100.3",
			"created": del, "modified": del},
		"file": {"id": "file--fb0419a8-f09c-57f8-be64-71a80417591c", "name": "a.exe", "created": del, "modified": del},
		"network-traffic": {"id": "network-traffic--2568d22a-8998-58eb-99ec-3c8ca74f527d", "protocols": []any{"tcp"},
			"src_ref": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", "created": del, "modified": del},
		"x-acme-widget": {"id": "x-acme-widget--6ba7b810-9dad-41d1-80b4-00c04fd430c8", "widget_size": 3},
		"extension-definition": {"id": "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d", "created_by_ref": identR,
			"name": "ext", "schema": "https://example.com/s", "version": "1.0.0", "extension_types": []any{"property-extension"}},
		"language-content": {"id": "language-content--b86bd89f-98bb-4fa9-8cb2-9ad421da981d", "object_ref": indID,
			"contents": map[string]any{"de": map[string]any{"name": "Bösartig"}}},
		"attack-pattern":    {"id": "attack-pattern--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061", "name": "Spearphishing", "kill_chain_phases": []any{map[string]any{"kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": "delivery"}}},
		"campaign":          {"id": "campaign--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "name": "Green Group Attacks", "first_seen": "2016-01-01T00:00:00Z", "last_seen": "2016-02-01T00:00:00Z"},
		"course-of-action":  {"id": "course-of-action--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "name": "Add TCP port 80 Filter Rule"},
		"grouping":          {"id": "grouping--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3", "context": "suspicious-activity", "object_refs": []any{indID}},
		"incident":          {"id": "incident--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "name": "Breach"},
		"infrastructure":    {"id": "infrastructure--38c47d93-d984-4fd9-b87b-d69d0841628d", "name": "Poison Ivy C2", "infrastructure_types": []any{"command-and-control"}},
		"intrusion-set":     {"id": "intrusion-set--4e78f46f-a023-4e5f-bc24-71b3ca22ec29", "name": "Bobcat Breakin", "aliases": []any{"Zookeeper"}, "primary_motivation": "organizational-gain"},
		"malware-analysis":  {"id": "malware-analysis--d25167b7-fed0-4068-9ccd-a73dd2c5b07c", "product": "microsoft", "result": "malicious", "sample_ref": "file--fb0419a8-f09c-57f8-be64-71a80417591c"},
		"note":              {"id": "note--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061", "content": "seen before", "object_refs": []any{malID}},
		"threat-actor":      {"id": "threat-actor--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "name": "Evil Org", "threat_actor_types": []any{"crime-syndicate"}},
		"tool":              {"id": "tool--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "name": "VNC", "tool_types": []any{"remote-access"}},
		"vulnerability":     {"id": "vulnerability--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061", "name": "CVE-2016-1234"},
		"artifact":          {"id": "artifact--6f437177-6e48-5cf8-9d9e-872a2bddd641", "mime_type": "application/zip", "payload_bin": "aGVsbG8=", "created": del, "modified": del},
		"autonomous-system": {"id": "autonomous-system--f720c34b-98ae-597f-ade5-27dc241e8c74", "number": 15139, "name": "Slime Industries", "created": del, "modified": del},
		"directory":         {"id": "directory--93c0a9b0-520d-545d-9094-1a08ddf46b05", "path": "C:\\Windows\\System32", "created": del, "modified": del},
		"domain-name":       {"id": "domain-name--3c10e93f-798e-5a26-a0c1-08156efab7f5", "value": "example.com", "resolves_to_refs": []any{"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"}, "created": del, "modified": del},
		"email-addr":        {"id": "email-addr--2d77a846-6264-5d51-b586-e43822ea1ea3", "value": "john@example.com", "display_name": "John Doe", "created": del, "modified": del},
		"email-message":     {"id": "email-message--cf9b4b7f-14c8-5955-8065-020e0316b559", "is_multipart": false, "subject": "hi", "body": "x", "from_ref": "email-addr--2d77a846-6264-5d51-b586-e43822ea1ea3", "created": del, "modified": del},
		"ipv6-addr":         {"id": "ipv6-addr--1e61d36c-a16c-53b7-a80f-2a00161c96b1", "value": "2001:db8::/96", "created": del, "modified": del},
		"mac-addr":          {"id": "mac-addr--65cfcf98-8a6e-5a1b-8f61-379ac4f92d00", "value": "d2:fb:49:24:37:18", "created": del, "modified": del},
		"mutex":             {"id": "mutex--eba44954-d4e4-5d3b-814c-2b17dd8de300", "name": "__CLEANSWEEP__", "created": del, "modified": del},
		"process":           {"id": "process--f52a906a-0dfc-40bd-92f1-e7778ead38a9", "pid": 1221, "command_line": "./gedit-bin --new-window", "image_ref": "file--fb0419a8-f09c-57f8-be64-71a80417591c", "created": del, "modified": del},
		"software":          {"id": "software--a1827f6d-ca53-5605-9e93-4316cd22a00a", "name": "Word", "cpe": "cpe:2.3:a:microsoft:word:2000:*:*:*:*:*:*:*", "vendor": "Microsoft", "created": del, "modified": del},
		"url":               {"id": "url--c1477287-23ac-5971-a010-5c287877fa60", "value": "https://example.com/research/index.html", "created": del, "modified": del},
		"user-account":      {"id": "user-account--0d5b424b-93b8-5cd8-ac36-306e1789d63c", "user_id": "1001", "account_login": "jdoe", "is_privileged": false, "created": del, "modified": del},
		"windows-registry-key": {"id": "windows-registry-key--2ba37ae7-2745-5082-9dfd-9486dad41016", "key": "hkey_local_machine\\system\\bar\\foo",
			"values": []any{map[string]any{"name": "Foo", "data": "qwerty", "data_type": "REG_SZ"}}, "created": del, "modified": del},
		"x509-certificate": {"id": "x509-certificate--463d7b2a-8516-5a50-a3d7-6f801465d5de", "issuer": "C=ZA, O=Thawte", "serial_number": "36:f7:d4:32:f4:ab:70:ea:d3:ce:98:6e:ea:99:93:49:32:0a:b7:06",
			"validity_not_before": "2016-03-12T12:00:00Z", "validity_not_after": "2016-08-21T12:00:00Z", "subject": "C=US, CN=www.example.com", "created": del, "modified": del},
	}
	for k, v := range add[typ] {
		common[k] = v
	}
	for k, v := range common {
		if v == del {
			delete(common, k)
		}
	}
	return common
}

func build(t testing.TB, typ string, mut map[string]any) []byte {
	t.Helper()
	o := base(typ)
	for k, v := range mut {
		if v == del {
			delete(o, k)
		} else {
			o[k] = v
		}
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type ruleCase struct {
	name   string
	typ    string
	mut    map[string]any
	reason string // "" means valid
	kind   error  // ErrInvalid when empty and reason set
}

var ruleCases = []ruleCase{
	// valid baselines
	{"indicator", "indicator", nil, "", nil},
	{"identity", "identity", nil, "", nil},
	{"malware", "malware", nil, "", nil},
	{"relationship", "relationship", nil, "", nil},
	{"sighting", "sighting", nil, "", nil},
	{"location", "location", nil, "", nil},
	{"observed-data", "observed-data", nil, "", nil},
	{"opinion", "opinion", nil, "", nil},
	{"report", "report", nil, "", nil},
	{"tlp1 marking", "marking-definition", nil, "", nil},
	{"sco without spec_version", "ipv4-addr", map[string]any{"spec_version": del}, "", nil},
	{"file", "file", nil, "", nil},
	{"network-traffic", "network-traffic", nil, "", nil},
	{"custom x- type", "x-acme-widget", nil, "", nil},
	{"extension-definition", "extension-definition", nil, "", nil},
	{"language-content", "language-content", nil, "", nil},
	{"custom property x_", "identity", map[string]any{"x_acme_score": 3}, "", nil},
	{"toplevel extension property", "identity", map[string]any{"acme_score": 3, "extensions": map[string]any{
		"extension-definition--71736db5-10db-43d3-b0e3-65cf81601fe1": map[string]any{"extension_type": "toplevel-property-extension"}}}, "", nil},
	{"fraction-free valid_from", "indicator", map[string]any{"valid_from": "2016-01-01T00:00:00Z"}, "", nil},
	{"nanosecond created", "indicator", map[string]any{"created": "2016-04-06T20:03:00.123456789Z", "modified": "2016-04-06T20:03:00.123456789Z"}, "", nil},
	{"granular marking with index selector", "indicator", map[string]any{"indicator_types": []any{"a", "b"}, "granular_markings": []any{
		map[string]any{"selectors": []any{"indicator_types.[1]"}, "marking_ref": TLPAmber}}}, "", nil},
	{"external reference", "identity", map[string]any{"external_references": []any{map[string]any{"source_name": "cve", "external_id": "CVE-2016-1234"}}}, "", nil},

	{"attack-pattern", "attack-pattern", nil, "", nil},
	{"campaign", "campaign", nil, "", nil},
	{"course-of-action", "course-of-action", nil, "", nil},
	{"grouping", "grouping", nil, "", nil},
	{"incident", "incident", nil, "", nil},
	{"infrastructure", "infrastructure", nil, "", nil},
	{"intrusion-set", "intrusion-set", nil, "", nil},
	{"malware-analysis", "malware-analysis", nil, "", nil},
	{"note", "note", nil, "", nil},
	{"threat-actor", "threat-actor", nil, "", nil},
	{"tool", "tool", nil, "", nil},
	{"vulnerability", "vulnerability", nil, "", nil},
	{"artifact", "artifact", nil, "", nil},
	{"autonomous-system", "autonomous-system", nil, "", nil},
	{"directory", "directory", nil, "", nil},
	{"domain-name", "domain-name", nil, "", nil},
	{"email-addr", "email-addr", nil, "", nil},
	{"email-message", "email-message", nil, "", nil},
	{"ipv4-addr", "ipv4-addr", nil, "", nil},
	{"ipv6-addr", "ipv6-addr", nil, "", nil},
	{"mac-addr", "mac-addr", nil, "", nil},
	{"mutex", "mutex", nil, "", nil},
	{"process", "process", nil, "", nil},
	{"software", "software", nil, "", nil},
	{"url", "url", nil, "", nil},
	{"user-account", "user-account", nil, "", nil},
	{"windows-registry-key", "windows-registry-key", nil, "", nil},
	{"x509-certificate", "x509-certificate", nil, "", nil},
	{"campaign last_seen before first_seen", "campaign", map[string]any{"last_seen": "2015-01-01T00:00:00Z"}, "last_seen is before first_seen", nil},
	{"grouping missing context", "grouping", map[string]any{"context": del}, `missing required property "context"`, nil},
	{"malware-analysis without result", "malware-analysis", map[string]any{"result": del}, "needs result or analysis_sco_refs", nil},
	{"malware-analysis sample wrong type", "malware-analysis", map[string]any{"sample_ref": malID}, `property "sample_ref" must refer to file or network-traffic or artifact`, nil},
	{"note missing content", "note", map[string]any{"content": del}, `missing required property "content"`, nil},
	{"artifact payload and url", "artifact", map[string]any{"url": "https://x"}, "must not have both payload_bin and url", nil},
	{"artifact url without hashes", "artifact", map[string]any{"payload_bin": del, "url": "https://x"}, "artifact with url needs hashes", nil},
	{"artifact bad encryption enum", "artifact", map[string]any{"encryption_algorithm": "rot13"}, `property "encryption_algorithm" must be one of`, nil},
	{"autonomous-system number string", "autonomous-system", map[string]any{"number": "15139"}, `property "number" must be an integer`, nil},
	{"directory missing path", "directory", map[string]any{"path": del}, `missing required property "path"`, nil},
	{"domain resolves to file", "domain-name", map[string]any{"resolves_to_refs": []any{"file--fb0419a8-f09c-57f8-be64-71a80417591c"}}, "must refer to ipv4-addr or ipv6-addr or domain-name", nil},
	{"email-addr belongs to identity", "email-addr", map[string]any{"belongs_to_ref": identR}, "must refer to user-account", nil},
	{"email-message missing is_multipart", "email-message", map[string]any{"is_multipart": del}, `missing required property "is_multipart"`, nil},
	{"email-message multipart with body", "email-message", map[string]any{"is_multipart": true}, "multipart email-message must not have body", nil},
	{"ipv6 given ipv4", "ipv6-addr", map[string]any{"value": "198.51.100.1"}, "is not an IPv6 address", nil},
	{"mac uppercase", "mac-addr", map[string]any{"value": "D2:FB:49:24:37:18"}, "lowercase colon-delimited", nil},
	{"mutex missing name", "mutex", map[string]any{"name": del}, `missing required property "name"`, nil},
	{"process parent wrong type", "process", map[string]any{"parent_ref": "file--fb0419a8-f09c-57f8-be64-71a80417591c"}, `property "parent_ref" must refer to process`, nil},
	{"process unknown extension", "process", map[string]any{"extensions": map[string]any{"ntfs-ext": map[string]any{"sid": "1"}}}, `extension key "ntfs-ext"`, nil},
	{"software missing name", "software", map[string]any{"name": del}, `missing required property "name"`, nil},
	{"url value number", "url", map[string]any{"value": 5}, `property "value" must be a string`, nil},
	{"user-account bool as string", "user-account", map[string]any{"is_privileged": "no"}, `property "is_privileged" must be a boolean`, nil},
	{"registry values not objects", "windows-registry-key", map[string]any{"values": []any{"Foo"}}, `property "values" must be a list of objects`, nil},
	{"x509 bad validity timestamp", "x509-certificate", map[string]any{"validity_not_after": "2016-08-21"}, `property "validity_not_after"`, nil},
	{"file extension ref not identifier", "file", map[string]any{"extensions": map[string]any{"archive-ext": map[string]any{"contains_refs": []any{"file-1"}}}}, `property "archive-ext.contains_refs": "file-1" is not an identifier`, nil},
	{"email part ref not identifier", "email-message", map[string]any{"is_multipart": true, "body": del, "body_multipart": []any{map[string]any{"body_raw_ref": "3"}}}, `property "body_multipart.body_raw_ref": "3" is not an identifier`, nil},
	{"sco custom property", "url", map[string]any{"foo": 1}, `custom property "foo" must start with x_`, nil},

	// JSON level
	{"not an object", "", nil, "expected a JSON object, got array", nil},

	// common properties
	{"no id", "identity", map[string]any{"id": del}, "object has no id", nil},
	{"no type", "identity", map[string]any{"type": del}, "object has no type", nil},
	{"bad type name", "identity", map[string]any{"type": "Identity"}, `type "Identity" is not a valid type name`, nil},
	{"id type mismatch", "identity", map[string]any{"id": indID}, `id type "indicator" does not match type "identity"`, nil},
	{"id not uuid", "identity", map[string]any{"id": "identity--1234"}, "is not an identifier", nil},
	{"id uuid bad variant", "identity", map[string]any{"id": "identity--f431f809-377b-45e0-ca1c-6a4751cae5ff"}, "is not an identifier", nil},
	{"spec_version missing", "identity", map[string]any{"spec_version": del}, "spec_version is missing", ErrWrongSpecVersion},
	{"spec_version 2.0", "identity", map[string]any{"spec_version": "2.0"}, `spec_version "2.0" is not 2.1`, ErrWrongSpecVersion},
	{"spec_version number", "identity", map[string]any{"spec_version": 2.1}, "spec_version must be the string", ErrWrongSpecVersion},
	{"missing modified", "identity", map[string]any{"modified": del}, `missing required property "modified"`, nil},
	{"missing created", "identity", map[string]any{"created": del}, `missing required property "created"`, nil},
	{"modified before created", "identity", map[string]any{"modified": "2016-04-06T20:02:59.999Z"}, "modified is before created", nil},
	{"created without Z", "identity", map[string]any{"created": "2016-04-06T20:03:00.000+00:00"}, `property "created"`, nil},
	{"created seconds only", "identity", map[string]any{"created": "2016-04-06T20:03:00Z"}, "precise to the millisecond", nil},
	{"created no such day", "identity", map[string]any{"created": "2016-02-30T20:03:00.000Z"}, "no such day", nil},
	{"created_by_ref not identity", "identity", map[string]any{"created_by_ref": indID}, `property "created_by_ref" must refer to identity`, nil},
	{"revoked not bool", "identity", map[string]any{"revoked": "yes"}, `property "revoked" must be a boolean`, nil},
	{"labels not list", "identity", map[string]any{"labels": "a"}, `property "labels" must be a non-empty list of strings`, nil},
	{"labels empty", "identity", map[string]any{"labels": []any{}}, `property "labels" must be a non-empty list`, nil},
	{"confidence 101", "identity", map[string]any{"confidence": 101}, `property "confidence" must be an integer from 0 to 100`, nil},
	{"confidence float", "identity", map[string]any{"confidence": 50.5}, `property "confidence" must be an integer`, nil},
	{"lang number", "identity", map[string]any{"lang": 1}, `property "lang" must be a string`, nil},
	{"external ref no source_name", "identity", map[string]any{"external_references": []any{map[string]any{"url": "https://x"}}}, "external reference 0 has no source_name", nil},
	{"external ref only source_name", "identity", map[string]any{"external_references": []any{map[string]any{"source_name": "x"}}}, "needs a description, url or external_id", nil},
	{"marking ref wrong type", "identity", map[string]any{"object_marking_refs": []any{indID}}, `property "object_marking_refs" must refer to marking-definition`, nil},
	{"granular without selectors", "identity", map[string]any{"granular_markings": []any{map[string]any{"marking_ref": TLPRed}}}, "needs a non-empty selectors list", nil},
	{"granular with both ref and lang", "identity", map[string]any{"granular_markings": []any{map[string]any{"selectors": []any{"name"}, "marking_ref": TLPRed, "lang": "en"}}}, "exactly one of marking_ref and lang", nil},
	{"extensions unknown key", "identity", map[string]any{"extensions": map[string]any{"foo-ext": map[string]any{"a": 1}}}, `extension key "foo-ext"`, nil},
	{"extension without type", "identity", map[string]any{"extensions": map[string]any{"extension-definition--71736db5-10db-43d3-b0e3-65cf81601fe1": map[string]any{"a": 1}}}, "has no extension_type", nil},
	{"custom property without x_", "identity", map[string]any{"foo": "bar"}, `custom property "foo" must start with x_`, nil},
	{"custom property uppercase", "identity", map[string]any{"x_Foo": "bar"}, `custom property "x_Foo" must start with x_`, nil},
	{"unknown type", "identity", map[string]any{"type": "widget", "id": "widget--6ba7b810-9dad-41d1-80b4-00c04fd430c8"}, `unknown object type "widget"`, nil},
	{"bundle", "identity", map[string]any{"type": "bundle", "id": "bundle--6ba7b810-9dad-41d1-80b4-00c04fd430c8"}, "a bundle is not an object", nil},

	// type-specific
	{"indicator bad pattern", "indicator", map[string]any{"pattern": "[ipv4-addr:value = '1.2.3.4']]"}, `pattern: unexpected token "]" at offset 29`, nil},
	{"indicator non-stix pattern not parsed", "indicator", map[string]any{"pattern": "rule x { condition: true }", "pattern_type": "yara"}, "", nil},
	{"indicator missing pattern_type", "indicator", map[string]any{"pattern_type": del}, `missing required property "pattern_type"`, nil},
	{"indicator valid_until before valid_from", "indicator", map[string]any{"valid_until": "2015-01-01T00:00:00Z"}, "valid_until must be later than valid_from", nil},
	{"malware family without name", "malware", map[string]any{"name": del}, "needs a name", nil},
	{"malware is_family missing", "malware", map[string]any{"is_family": del}, `missing required property "is_family"`, nil},
	{"relationship to marking", "relationship", map[string]any{"target_ref": TLPRed}, `property "target_ref" must not refer to a marking-definition`, nil},
	{"relationship from sro", "relationship", map[string]any{"source_ref": "relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad"}, `property "source_ref" must not refer to a relationship`, nil},
	{"relationship_type uppercase", "relationship", map[string]any{"relationship_type": "Indicates"}, "relationship_type \"Indicates\" must contain only", nil},
	{"sighting of sco", "sighting", map[string]any{"sighting_of_ref": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"}, `property "sighting_of_ref" must not refer to a ipv4-addr`, nil},
	{"sighting count negative", "sighting", map[string]any{"count": -1}, `property "count" must be an integer from 0 to 999999999`, nil},
	{"sighting where_sighted wrong type", "sighting", map[string]any{"where_sighted_refs": []any{indID}}, "must refer to identity or location", nil},
	{"location nothing", "location", map[string]any{"country": del}, "location needs region, country, or latitude and longitude", nil},
	{"location latitude only", "location", map[string]any{"latitude": 48.8}, "latitude and longitude must be given together", nil},
	{"location latitude range", "location", map[string]any{"latitude": 91, "longitude": 2}, `property "latitude" must be from -90 to 90`, nil},
	{"observed-data number 0", "observed-data", map[string]any{"number_observed": 0}, `property "number_observed" must be an integer from 1`, nil},
	{"observed-data last before first", "observed-data", map[string]any{"last_observed": "2015-12-21T18:00:00Z"}, "last_observed is before first_observed", nil},
	{"opinion closed vocabulary", "opinion", map[string]any{"opinion": "meh"}, `property "opinion" must be one of strongly-disagree`, nil},
	{"report missing published", "report", map[string]any{"published": del}, `missing required property "published"`, nil},
	{"report object_refs empty", "report", map[string]any{"object_refs": []any{}}, `property "object_refs" must be a non-empty list of identifiers`, nil},
	{"tlp marking wrong id", "marking-definition", map[string]any{"definition": map[string]any{"tlp": "red"}}, "TLP:RED marking must use the standard id", nil},
	{"marking without definition", "marking-definition", map[string]any{"definition": del, "definition_type": del}, "needs definition_type and definition", nil},
	{"marking created millis", "marking-definition", map[string]any{"created": "2017-01-20T00:00:00Z"}, "precise to the millisecond", nil},
	{"tlp2 wrong id", "marking-definition", map[string]any{"definition": del, "definition_type": del, "extensions": map[string]any{
		TLP2ExtensionID: map[string]any{"extension_type": "property-extension", "tlp_2_0": "clear"}}}, "TLP 2.0 clear marking must use the standard id", nil},
	{"ipv4 value not an address", "ipv4-addr", map[string]any{"value": "198.51.100.300"}, "is not an IPv4 address", nil},
	{"ipv4 cidr ok", "ipv4-addr", map[string]any{"value": "198.51.100.0/24"}, "", nil},
	{"sco spec_version 2.0", "ipv4-addr", map[string]any{"spec_version": "2.0"}, `spec_version "2.0" is not 2.1`, ErrWrongSpecVersion},
	{"file without name or hashes", "file", map[string]any{"name": del}, "file needs hashes or name", nil},
	{"file predefined extension", "file", map[string]any{"extensions": map[string]any{"archive-ext": map[string]any{"contains_refs": []any{"file--fb0419a8-f09c-57f8-be64-71a80417591c"}}}}, "", nil},
	{"file magic not hex", "file", map[string]any{"magic_number_hex": "zz"}, `property "magic_number_hex" must be a string of hex digit pairs`, nil},
	{"network-traffic port range", "network-traffic", map[string]any{"dst_port": 70000}, `property "dst_port" must be an integer from 0 to 65535`, nil},
	{"network-traffic src wrong type", "network-traffic", map[string]any{"src_ref": indID}, `property "src_ref" must refer to ipv4-addr or ipv6-addr`, nil},
	{"network-traffic no endpoints", "network-traffic", map[string]any{"src_ref": del}, "needs src_ref or dst_ref", nil},
	{"custom type needs created", "x-acme-widget", map[string]any{"created": del}, `missing required property "created"`, nil},
	{"custom type property name", "x-acme-widget", map[string]any{"ab": 1}, `property name "ab" must be 3 to 250`, nil},
	{"extension-definition needs created_by_ref", "extension-definition", map[string]any{"created_by_ref": del}, `missing required property "created_by_ref"`, nil},
	{"extension-definition bad type", "extension-definition", map[string]any{"extension_types": []any{"new-thing"}}, `"new-thing" is not one of`, nil},
	{"language-content object_ref", "language-content", map[string]any{"object_ref": "bundle--6ba7b810-9dad-41d1-80b4-00c04fd430c8"}, `property "object_ref" must not refer to a bundle`, nil},
}

func TestParseObjectRules(t *testing.T) {
	for _, tc := range ruleCases {
		t.Run(tc.name, func(t *testing.T) {
			var raw []byte
			if tc.typ == "" {
				raw = []byte(`[{"type":"identity"}]`)
			} else {
				raw = build(t, tc.typ, tc.mut)
			}
			obj, err := ParseObject(raw)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				if obj.Type != tc.typ || obj.SpecVersion != "2.1" || !strings.HasPrefix(obj.ID, tc.typ+"--") {
					t.Fatalf("bad object header %+v", obj)
				}
				return
			}
			if err == nil {
				t.Fatalf("want rejection %q, got valid", tc.reason)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("want reason containing %q, got %q", tc.reason, err)
			}
			kind := tc.kind
			if kind == nil {
				kind = ErrInvalid
			}
			if !errors.Is(err, kind) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap %v", err, kind)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Reason == "" {
				t.Fatalf("error is not a *ValidationError with a reason: %#v", err)
			}
		})
	}
}

// TestRuleCasesCoverEveryType keeps a valid baseline for every type the
// package knows.
func TestRuleCasesCoverEveryType(t *testing.T) {
	valid := map[string]bool{}
	for _, tc := range ruleCases {
		if tc.reason == "" && tc.mut == nil {
			valid[tc.typ] = true
		}
	}
	for typ := range specs {
		if !valid[typ] {
			t.Errorf("no valid baseline case for %s", typ)
		}
	}
}

func TestParseObjectJSON(t *testing.T) {
	tests := []struct {
		name, in, reason string
		notJSON          bool
	}{
		{"duplicate key", `{"id":"a","id":"b"}`, `duplicate key "id"`, true},
		{"duplicate key in large object", `{"a1":1,"a2":1,"a3":1,"a4":1,"a5":1,"a6":1,"a7":1,"a8":1,"a9":1,"b1":1,"b2":1,"b3":1,"b4":1,"b5":1,"b6":1,"b7":1,"b8":1,"a3":2}`, `duplicate key "a3"`, true},
		{"trailing comma", `{"a":1,}`, "expected a property name", true},
		{"trailing data", `{"a":1} x`, "unexpected data after the value", true},
		{"invalid utf-8", "{\"a\":\"\xff\"}", "invalid UTF-8", true},
		{"lone surrogate", `{"a":"\ud800"}`, "lone surrogate", true},
		{"control char", "{\"a\":\"\x01\"}", "control character", true},
		{"bad number", `{"a":01}`, "expected ',' or '}'", true},
		{"too deep", strings.Repeat(`{"a":`, 70) + "1" + strings.Repeat("}", 70), "nesting deeper than 64", true},
		{"empty", ``, "unexpected end of input", true},
		{"string", `"x"`, "expected a JSON object, got string", false},
		{"too big", `{"a":"` + strings.Repeat("x", MaxObjectSize) + `"}`, "more than the", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseObject([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("want %q, got %v", tc.reason, err)
			}
			if errors.Is(err, ErrNotJSON) != tc.notJSON {
				t.Fatalf("ErrNotJSON = %v, want %v (%v)", errors.Is(err, ErrNotJSON), tc.notJSON, err)
			}
		})
	}
}

func TestObjectFields(t *testing.T) {
	raw := []byte(`{"type":"relationship","spec_version":"2.1","id":"relationship--44298a74-ba52-4f0c-87a3-1824e67d7fad",
	"created":"2016-04-06T20:03:00.000Z","modified":"2016-04-07T20:03:00.500Z","relationship_type":"indicates",
	"created_by_ref":"` + identR + `","source_ref":"` + indID + `","target_ref":"` + malID + `",
	"object_marking_refs":["` + TLP2Amber + `","` + TLPGreen + `"],
	"granular_markings":[{"selectors":["description"],"marking_ref":"` + TLPRed + `"}]}`)
	obj, err := ParseObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := obj.Modified.Sub(obj.Created).String(); got != "24h0m0.5s" {
		t.Errorf("modified - created = %s", got)
	}
	if strings.Join(obj.Markings, ",") != TLP2Amber+","+TLPGreen {
		t.Errorf("markings %v", obj.Markings)
	}
	if strings.Join(obj.AllMarkings(), ",") != TLP2Amber+","+TLPGreen+","+TLPRed {
		t.Errorf("all markings %v, want the granular TLP:RED too", obj.AllMarkings())
	}
	wantRefs := []string{identR, indID, malID, TLP2Amber, TLPGreen, TLPRed}
	if strings.Join(obj.Refs, ",") != strings.Join(wantRefs, ",") {
		t.Errorf("refs %v, want %v", obj.Refs, wantRefs)
	}
	if &obj.Raw[0] != &raw[0] {
		t.Errorf("Raw is a copy, want the input bytes")
	}
}

func TestTLPLevel(t *testing.T) {
	order := []string{TLP2Clear, TLP2Green, TLP2Amber, TLP2AmberStrict, TLP2Red}
	for i := 1; i < len(order); i++ {
		a, _ := TLPLevel(order[i-1])
		b, _ := TLPLevel(order[i])
		if a >= b {
			t.Errorf("%s (%d) not below %s (%d)", order[i-1], a, order[i], b)
		}
	}
	pairs := [][2]string{{TLPWhite, TLP2Clear}, {TLPGreen, TLP2Green}, {TLPAmber, TLP2Amber}, {TLPRed, TLP2Red}}
	for _, p := range pairs {
		a, ok1 := TLPLevel(p[0])
		b, ok2 := TLPLevel(p[1])
		if !ok1 || !ok2 || a != b {
			t.Errorf("TLP 1.0 %s and 2.0 %s differ: %d %d", p[0], p[1], a, b)
		}
	}
	if _, ok := TLPLevel("marking-definition--3cd55916-d34b-4747-a8e0-dedec14b711b"); ok {
		t.Error("a statement marking has a TLP level")
	}
	// The standard TLP 2.0 objects in the test data carry the ids named here.
	for _, fo := range loadDir(t, "valid/oasis-tlp2-markings") {
		obj, err := ParseObject(fo.raw)
		if err != nil || obj.Type != "marking-definition" {
			continue
		}
		var m struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(fo.raw, &m)
		if strings.HasPrefix(m.Name, "TLP:") {
			if _, ok := TLPLevel(obj.ID); !ok {
				t.Errorf("%s (%s) has no TLP level", obj.ID, m.Name)
			}
		}
	}
}

// TestValidateObjectAgrees: ValidateObject accepts and refuses exactly
// what ParseObject does, with the same errors and objects, and leaves the
// fingerprint out.
func TestValidateObjectAgrees(t *testing.T) {
	for _, tc := range ruleCases {
		var raw []byte
		if tc.typ == "" {
			raw = []byte(`[{"type":"identity"}]`)
		} else {
			raw = build(t, tc.typ, tc.mut)
		}
		a, errA := ParseObject(raw)
		b, errB := ValidateObject(raw)
		if (errA == nil) != (errB == nil) || (errA != nil && errA.Error() != errB.Error()) {
			t.Fatalf("%s: ParseObject %v, ValidateObject %v", tc.name, errA, errB)
		}
		if errA != nil {
			continue
		}
		if a.Fingerprint == (Fingerprint{}) || b.Fingerprint != (Fingerprint{}) {
			t.Fatalf("%s: fingerprints %x and %x; want one from ParseObject only", tc.name, a.Fingerprint[:4], b.Fingerprint[:4])
		}
		a.Fingerprint = Fingerprint{}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Fatalf("%s: the objects differ:\n%s\n%s", tc.name, ja, jb)
		}
	}
}
