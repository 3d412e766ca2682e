package stix

// Property tables for every object type STIX 2.1 defines, taken from the
// specification's property tables (cross-checked against the OASIS JSON
// schemas, see the differential test).

type category uint8

const (
	catSDO category = iota
	catSRO
	catSCO
	catMarking
	catLanguageContent
	catExtensionDefinition
	catCustom // custom object type (x-... or new-sdo/new-sro extension): SDO rules
)

type pkind uint8

const (
	kString pkind = iota
	kInt
	kBool
	kNumber
	kTimestamp
	kTimestampMillis
	kStringList
	kRef
	kRefList
	kObject     // any JSON object
	kDict       // non-empty JSON object
	kHashes     // hashes dictionary
	kKillChain  // list of kill-chain-phase
	kExtRefs    // list of external-reference
	kGranular   // list of granular-marking
	kExtensions // extensions dictionary
	kHex
	kBinary
	kEnum
	kEnumList
	kObjectList
	kAny
)

// prop describes one property. refTypes restricts what a reference may point
// at (nil: any type); notRefTypes lists types it must not point at.
type prop struct {
	kind        pkind
	refTypes    []string
	notRefTypes []string
	enum        []string
	min, max    float64
	bounded     bool
}

func p(k pkind) prop               { return prop{kind: k} }
func ref(types ...string) prop     { return prop{kind: kRef, refTypes: types} }
func refs(types ...string) prop    { return prop{kind: kRefList, refTypes: types} }
func enum(vals ...string) prop     { return prop{kind: kEnum, enum: vals} }
func intRange(lo, hi float64) prop { return prop{kind: kInt, min: lo, max: hi, bounded: true} }
func numRange(lo, hi float64) prop { return prop{kind: kNumber, min: lo, max: hi, bounded: true} }
func notRef(types ...string) prop  { return prop{kind: kRef, notRefTypes: types} }
func merge(ms ...map[string]prop) map[string]prop {
	out := make(map[string]prop)
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

const maxInt = 1<<53 - 1

var sdoCommon = map[string]prop{
	"type": p(kString), "spec_version": p(kString), "id": p(kString),
	"created_by_ref": ref("identity"), "created": p(kTimestampMillis), "modified": p(kTimestampMillis),
	"revoked": p(kBool), "labels": p(kStringList), "confidence": intRange(0, 100), "lang": p(kString),
	"external_references": p(kExtRefs), "object_marking_refs": refs("marking-definition"),
	"granular_markings": p(kGranular), "extensions": p(kExtensions),
}

var scoCommon = map[string]prop{
	"type": p(kString), "spec_version": p(kString), "id": p(kString),
	"object_marking_refs": refs("marking-definition"), "granular_markings": p(kGranular),
	"defanged": p(kBool), "extensions": p(kExtensions),
}

// sroAndMetaTypes are what a relationship may not point at.
var notRelatable = []string{"relationship", "sighting", "bundle", "marking-definition", "language-content", "extension-definition"}

type typeSpec struct {
	cat      category
	required []string
	props    map[string]prop
	// extNames are the predefined extension names an SCO may carry.
	extNames []string
}

func sdo(required []string, props map[string]prop) *typeSpec {
	return &typeSpec{cat: catSDO, required: required, props: merge(sdoCommon, props)}
}

func sco(required []string, props map[string]prop, ext ...string) *typeSpec {
	return &typeSpec{cat: catSCO, required: required, props: merge(scoCommon, props), extNames: ext}
}

var scoTypes = []string{"artifact", "autonomous-system", "directory", "domain-name", "email-addr", "email-message",
	"file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex", "network-traffic", "process", "software", "url",
	"user-account", "windows-registry-key", "x509-certificate"}

var specs = map[string]*typeSpec{
	"attack-pattern": sdo([]string{"name"}, map[string]prop{
		"name": p(kString), "description": p(kString), "aliases": p(kStringList), "kill_chain_phases": p(kKillChain)}),
	"campaign": sdo([]string{"name"}, map[string]prop{
		"name": p(kString), "description": p(kString), "aliases": p(kStringList),
		"first_seen": p(kTimestamp), "last_seen": p(kTimestamp), "objective": p(kString)}),
	"course-of-action": sdo([]string{"name"}, map[string]prop{
		"name": p(kString), "description": p(kString), "action_type": p(kString), "os_execution_envs": p(kStringList),
		"action_bin": p(kBinary), "action_reference": p(kObject)}),
	"grouping": sdo([]string{"context", "object_refs"}, map[string]prop{
		"name": p(kString), "description": p(kString), "context": p(kString), "object_refs": refs()}),
	"identity": sdo([]string{"name"}, map[string]prop{
		"name": p(kString), "description": p(kString), "roles": p(kStringList), "identity_class": p(kString),
		"sectors": p(kStringList), "contact_information": p(kString)}),
	"incident": sdo([]string{"name"}, map[string]prop{
		"name": p(kString), "description": p(kString), "kill_chain_phases": p(kKillChain)}),
	"indicator": sdo([]string{"pattern", "pattern_type", "valid_from"}, map[string]prop{
		"name": p(kString), "description": p(kString), "indicator_types": p(kStringList), "pattern": p(kString),
		"pattern_type": p(kString), "pattern_version": p(kString), "valid_from": p(kTimestamp),
		"valid_until": p(kTimestamp), "kill_chain_phases": p(kKillChain)}),
	"infrastructure": sdo([]string{"name"}, map[string]prop{
		"name": p(kString), "description": p(kString), "infrastructure_types": p(kStringList),
		"aliases": p(kStringList), "kill_chain_phases": p(kKillChain), "first_seen": p(kTimestamp),
		"last_seen": p(kTimestamp)}),
	"intrusion-set": sdo([]string{"name"}, map[string]prop{
		"name": p(kString), "description": p(kString), "aliases": p(kStringList), "first_seen": p(kTimestamp),
		"last_seen": p(kTimestamp), "goals": p(kStringList), "resource_level": p(kString),
		"primary_motivation": p(kString), "secondary_motivations": p(kStringList)}),
	"location": sdo(nil, map[string]prop{
		"name": p(kString), "description": p(kString), "latitude": numRange(-90, 90),
		"longitude": numRange(-180, 180), "precision": numRange(0, maxInt), "region": p(kString),
		"country": p(kString), "administrative_area": p(kString), "city": p(kString),
		"street_address": p(kString), "postal_code": p(kString)}),
	"malware": sdo([]string{"is_family"}, map[string]prop{
		"name": p(kString), "description": p(kString), "malware_types": p(kStringList), "is_family": p(kBool),
		"aliases": p(kStringList), "kill_chain_phases": p(kKillChain), "first_seen": p(kTimestamp),
		"last_seen": p(kTimestamp), "operating_system_refs": refs("software"),
		"architecture_execution_envs": p(kStringList), "implementation_languages": p(kStringList),
		"capabilities": p(kStringList), "sample_refs": refs("file", "artifact")}),
	"malware-analysis": sdo([]string{"product"}, map[string]prop{
		"product": p(kString), "version": p(kString), "host_vm_ref": ref("software"),
		"operating_system_ref": ref("software"), "installed_software_refs": refs("software"),
		"configuration_version": p(kString), "modules": p(kStringList), "analysis_engine_version": p(kString),
		"analysis_definition_version": p(kString), "submitted": p(kTimestamp), "analysis_started": p(kTimestamp),
		"analysis_ended": p(kTimestamp), "result_name": p(kString), "result": p(kString),
		"analysis_sco_refs": refs(scoTypes...), "sample_ref": ref("file", "network-traffic", "artifact")}),
	"note": sdo([]string{"content", "object_refs"}, map[string]prop{
		"abstract": p(kString), "content": p(kString), "authors": p(kStringList), "object_refs": refs()}),
	"observed-data": sdo([]string{"first_observed", "last_observed", "number_observed"}, map[string]prop{
		"first_observed": p(kTimestamp), "last_observed": p(kTimestamp),
		"number_observed": intRange(1, 999999999), "objects": p(kDict), "object_refs": refs()}),
	"opinion": sdo([]string{"object_refs", "opinion"}, map[string]prop{
		"explanation": p(kString), "authors": p(kStringList), "object_refs": refs(),
		"opinion": enum("strongly-disagree", "disagree", "neutral", "agree", "strongly-agree")}),
	"report": sdo([]string{"name", "published", "object_refs"}, map[string]prop{
		"name": p(kString), "description": p(kString), "report_types": p(kStringList),
		"published": p(kTimestamp), "object_refs": refs()}),
	"threat-actor": sdo([]string{"name"}, map[string]prop{
		"name": p(kString), "description": p(kString), "threat_actor_types": p(kStringList),
		"aliases": p(kStringList), "first_seen": p(kTimestamp), "last_seen": p(kTimestamp),
		"roles": p(kStringList), "goals": p(kStringList), "sophistication": p(kString),
		"resource_level": p(kString), "primary_motivation": p(kString),
		"secondary_motivations": p(kStringList), "personal_motivations": p(kStringList)}),
	"tool": sdo([]string{"name"}, map[string]prop{
		"name": p(kString), "description": p(kString), "tool_types": p(kStringList), "aliases": p(kStringList),
		"kill_chain_phases": p(kKillChain), "tool_version": p(kString)}),
	"vulnerability": sdo([]string{"name"}, map[string]prop{"name": p(kString), "description": p(kString)}),

	"relationship": {cat: catSRO, required: []string{"relationship_type", "source_ref", "target_ref"},
		props: merge(sdoCommon, map[string]prop{
			"relationship_type": p(kString), "description": p(kString),
			"source_ref": notRef(notRelatable...), "target_ref": notRef(notRelatable...),
			"start_time": p(kTimestamp), "stop_time": p(kTimestamp)})},
	"sighting": {cat: catSRO, required: []string{"sighting_of_ref"},
		props: merge(sdoCommon, map[string]prop{
			"description": p(kString), "first_seen": p(kTimestamp), "last_seen": p(kTimestamp),
			"count": intRange(0, 999999999), "sighting_of_ref": notRef(append(notRelatable, scoTypes...)...),
			"observed_data_refs": refs("observed-data"), "where_sighted_refs": refs("identity", "location"),
			"summary": p(kBool)})},

	"marking-definition": {cat: catMarking, required: []string{"created"},
		props: map[string]prop{
			"type": p(kString), "spec_version": p(kString), "id": p(kString),
			"created_by_ref": ref("identity"), "created": p(kTimestampMillis),
			"external_references": p(kExtRefs), "object_marking_refs": refs("marking-definition"),
			"granular_markings": p(kGranular), "extensions": p(kExtensions),
			"name": p(kString), "definition_type": p(kString), "definition": p(kObject),
			// Not in the 2.1 property table, but OASIS's own published
			// markings carry it; accepted and held to modified >= created.
			"modified": p(kTimestampMillis)}},
	"language-content": {cat: catLanguageContent, required: []string{"object_ref", "contents"},
		props: merge(sdoCommon, map[string]prop{
			"object_ref": notRef("bundle", "language-content"), "object_modified": p(kTimestampMillis),
			"contents": p(kDict)})},
	"extension-definition": {cat: catExtensionDefinition,
		required: []string{"created_by_ref", "name", "schema", "version", "extension_types"},
		props: merge(sdoCommon, map[string]prop{
			"name": p(kString), "description": p(kString), "schema": p(kString), "version": p(kString),
			"extension_types": {kind: kEnumList, enum: extensionTypes}, "extension_properties": p(kStringList)})},

	"artifact": sco(nil, map[string]prop{
		"mime_type": p(kString), "payload_bin": p(kBinary), "url": p(kString), "hashes": p(kHashes),
		"encryption_algorithm": enum("AES-256-GCM", "ChaCha20-Poly1305", "mime-type-indicated"),
		"decryption_key":       p(kString)}),
	"autonomous-system": sco([]string{"number"}, map[string]prop{
		"number": intRange(0, maxInt), "name": p(kString), "rir": p(kString)}),
	"directory": sco([]string{"path"}, map[string]prop{
		"path": p(kString), "path_enc": p(kString), "ctime": p(kTimestamp), "mtime": p(kTimestamp),
		"atime": p(kTimestamp), "contains_refs": refs("file", "directory")}),
	"domain-name": sco([]string{"value"}, map[string]prop{
		"value": p(kString), "resolves_to_refs": refs("ipv4-addr", "ipv6-addr", "domain-name")}),
	"email-addr": sco([]string{"value"}, map[string]prop{
		"value": p(kString), "display_name": p(kString), "belongs_to_ref": ref("user-account")}),
	"email-message": sco([]string{"is_multipart"}, map[string]prop{
		"is_multipart": p(kBool), "date": p(kTimestamp), "content_type": p(kString),
		"from_ref": ref("email-addr"), "sender_ref": ref("email-addr"), "to_refs": refs("email-addr"),
		"cc_refs": refs("email-addr"), "bcc_refs": refs("email-addr"), "message_id": p(kString),
		"subject": p(kString), "received_lines": p(kStringList), "additional_header_fields": p(kDict),
		"body": p(kString), "body_multipart": p(kObjectList), "raw_email_ref": ref("artifact")}),
	"file": sco(nil, map[string]prop{
		"hashes": p(kHashes), "size": intRange(0, maxInt), "name": p(kString), "name_enc": p(kString),
		"magic_number_hex": p(kHex), "mime_type": p(kString), "ctime": p(kTimestamp), "mtime": p(kTimestamp),
		"atime": p(kTimestamp), "parent_directory_ref": ref("directory"), "contains_refs": refs(),
		"content_ref": ref("artifact")},
		"ntfs-ext", "raster-image-ext", "pdf-ext", "archive-ext", "windows-pebinary-ext"),
	"ipv4-addr": sco([]string{"value"}, map[string]prop{
		"value": p(kString), "resolves_to_refs": refs("mac-addr"), "belongs_to_refs": refs("autonomous-system")}),
	"ipv6-addr": sco([]string{"value"}, map[string]prop{
		"value": p(kString), "resolves_to_refs": refs("mac-addr"), "belongs_to_refs": refs("autonomous-system")}),
	"mac-addr": sco([]string{"value"}, map[string]prop{"value": p(kString)}),
	"mutex":    sco([]string{"name"}, map[string]prop{"name": p(kString)}),
	"network-traffic": sco([]string{"protocols"}, map[string]prop{
		"start": p(kTimestamp), "end": p(kTimestamp), "is_active": p(kBool),
		"src_ref":  ref("ipv4-addr", "ipv6-addr", "mac-addr", "domain-name"),
		"dst_ref":  ref("ipv4-addr", "ipv6-addr", "mac-addr", "domain-name"),
		"src_port": intRange(0, 65535), "dst_port": intRange(0, 65535), "protocols": p(kStringList),
		"src_byte_count": intRange(0, maxInt), "dst_byte_count": intRange(0, maxInt),
		"src_packets": intRange(0, maxInt), "dst_packets": intRange(0, maxInt), "ipfix": p(kDict),
		"src_payload_ref": ref("artifact"), "dst_payload_ref": ref("artifact"),
		"encapsulates_refs": refs("network-traffic"), "encapsulated_by_ref": ref("network-traffic")},
		"http-request-ext", "icmp-ext", "socket-ext", "tcp-ext"),
	"process": sco(nil, map[string]prop{
		"is_hidden": p(kBool), "pid": p(kInt), "created_time": p(kTimestamp), "cwd": p(kString),
		"command_line": p(kString), "environment_variables": p(kDict),
		"opened_connection_refs": refs("network-traffic"), "creator_user_ref": ref("user-account"),
		"image_ref": ref("file"), "parent_ref": ref("process"), "child_refs": refs("process")},
		"windows-process-ext", "windows-service-ext"),
	"software": sco([]string{"name"}, map[string]prop{
		"name": p(kString), "cpe": p(kString), "swid": p(kString), "languages": p(kStringList),
		"vendor": p(kString), "version": p(kString)}),
	"url": sco([]string{"value"}, map[string]prop{"value": p(kString)}),
	"user-account": sco(nil, map[string]prop{
		"user_id": p(kString), "credential": p(kString), "account_login": p(kString),
		"account_type": p(kString), "display_name": p(kString), "is_service_account": p(kBool),
		"is_privileged": p(kBool), "can_escalate_privs": p(kBool), "is_disabled": p(kBool),
		"account_created": p(kTimestamp), "account_expires": p(kTimestamp),
		"credential_last_changed": p(kTimestamp), "account_first_login": p(kTimestamp),
		"account_last_login": p(kTimestamp)},
		"unix-account-ext"),
	"windows-registry-key": sco(nil, map[string]prop{
		"key": p(kString), "values": p(kObjectList), "modified_time": p(kTimestamp),
		"creator_user_ref": ref("user-account"), "number_of_subkeys": intRange(0, maxInt)}),
	"x509-certificate": sco(nil, map[string]prop{
		"is_self_signed": p(kBool), "hashes": p(kHashes), "version": p(kString), "serial_number": p(kString),
		"signature_algorithm": p(kString), "issuer": p(kString), "validity_not_before": p(kTimestamp),
		"validity_not_after": p(kTimestamp), "subject": p(kString),
		"subject_public_key_algorithm": p(kString), "subject_public_key_modulus": p(kString),
		"subject_public_key_exponent": intRange(0, maxInt), "x509_v3_extensions": p(kDict)}),
}

var extensionTypes = []string{"new-sdo", "new-sco", "new-sro", "property-extension", "toplevel-property-extension"}

// customSpec applies to custom object types: the common SDO (or SCO)
// properties are checked and any other property is the type's own.
var (
	customSDOSpec = &typeSpec{cat: catCustom, props: sdoCommon}
	customSCOSpec = &typeSpec{cat: catSCO, props: scoCommon}
)

// IsSCO reports whether typ is one of the 18 STIX 2.1 cyber-observable types.
func IsSCO(typ string) bool {
	s, ok := specs[typ]
	return ok && s.cat == catSCO
}
