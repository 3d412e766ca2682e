package stix

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const schemaBaseURL = "http://raw.githubusercontent.com/oasis-open/cti-stix2-json-schemas/stix2.1/schemas/"

// schemaDisagreements explains every object on which ParseObject and the
// OASIS JSON schemas differ. Key: "file|id". The test fails on any other
// disagreement, and on an entry that no longer disagrees.
var schemaDisagreements = map[string]string{
	// Semantic rules the schemas cannot express (the testdata README says so).
	"invalid/v21/invalid_timestamp.json|identity--8c6af861-7b20-41ef-9b59-6344fd872a8f": "modified before created: a cross-property rule, not in the schema",
	"invalid/v21/identity_custom.json|identity--8c6af861-7b20-41ef-9b59-6344fd872a8f":   "custom property \"foo\" without x_: the schemas allow any extra property; the spec (and the OASIS validator's strict mode) do not",
	"invalid/v21/tool.json|tool--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f":                  "custom properties foo_value and bar_value without x_, as above",
}

// schemaFile picks the schema an object of type typ is checked against.
func schemaFile(typ string, isSCO bool) string {
	switch typ {
	case "marking-definition", "language-content", "extension-definition":
		return "common/" + typ + ".json"
	case "relationship", "sighting":
		return "sros/" + typ + ".json"
	}
	if s, ok := specs[typ]; ok {
		if s.cat == catSCO {
			return "observables/" + typ + ".json"
		}
		return "sdos/" + typ + ".json"
	}
	if isSCO {
		return "common/cyber-observable-core.json"
	}
	return "common/core.json"
}

func TestSchemaDifferential(t *testing.T) {
	root := testdataDir(t)
	c := jsonschema.NewCompiler()
	schemaDir := filepath.Join(root, "schemas")
	err := filepath.WalkDir(schemaDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(schemaDir, path)
		return c.AddResource(schemaBaseURL+filepath.ToSlash(rel), doc)
	})
	if err != nil {
		t.Fatal(err)
	}
	compiled := map[string]*jsonschema.Schema{}
	schemaFor := func(file string) *jsonschema.Schema {
		if s, ok := compiled[file]; ok {
			return s
		}
		s, err := c.Compile(schemaBaseURL + file)
		if err != nil {
			t.Fatalf("compile %s: %v", file, err)
		}
		compiled[file] = s
		return s
	}

	objs := append(loadDir(t, "valid"), loadDir(t, "invalid")...)
	used := map[string]bool{}
	var unexplained []string
	checked := 0
	for _, fo := range objs {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(fo.raw))
		if err != nil {
			continue // not JSON: both sides reject it (TestInvalidTestdata)
		}
		m, ok := inst.(map[string]any)
		if !ok {
			continue
		}
		typ, _ := m["type"].(string)
		_, hasCreated := m["created"]
		schemaErr := schemaFor(schemaFile(typ, !hasCreated)).Validate(inst)
		_, ourErr := ParseObject(fo.raw)
		checked++
		if (schemaErr == nil) == (ourErr == nil) {
			continue
		}
		key := fo.file + "|" + fo.id
		if _, ok := schemaDisagreements[key]; ok {
			used[key] = true
			continue
		}
		var ve *jsonschema.ValidationError
		detail := ""
		if errors.As(schemaErr, &ve) {
			detail = strings.ReplaceAll(ve.Error(), "\n", " ")
			if len(detail) > 300 {
				detail = detail[:300]
			}
		}
		unexplained = append(unexplained, key+": ours="+errString(ourErr)+" schema="+detail)
	}
	// The rule-table objects, one way: whatever the schemas reject,
	// ParseObject must reject too (the reverse is expected: most rules are
	// semantic).
	for _, tc := range ruleCases {
		if tc.typ == "" {
			continue
		}
		raw := build(t, tc.typ, tc.mut)
		inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		typ, _ := inst.(map[string]any)["type"].(string)
		_, hasCreated := inst.(map[string]any)["created"]
		schemaErr := schemaFor(schemaFile(typ, !hasCreated)).Validate(inst)
		if _, ourErr := ParseObject(raw); schemaErr != nil && ourErr == nil {
			key := "rule:" + tc.name
			if _, ok := schemaDisagreements[key]; ok {
				used[key] = true
				continue
			}
			unexplained = append(unexplained, key+": accepted, schema says "+strings.ReplaceAll(schemaErr.Error(), "\n", " "))
		}
	}
	sort.Strings(unexplained)
	for _, u := range unexplained {
		t.Errorf("unexplained disagreement %s", u)
	}
	for key := range schemaDisagreements {
		if !used[key] {
			t.Errorf("table entry %s no longer disagrees (or is gone); remove it", key)
		}
	}
	t.Logf("%d objects checked against both; %d explained disagreements", checked, len(used))
}

func errString(err error) string {
	if err == nil {
		return "accepted"
	}
	return err.Error()
}
