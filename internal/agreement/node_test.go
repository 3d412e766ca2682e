package agreement

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// A document on one server names no nodes: its canonical bytes, and so
// every signature already made over them, are what they were before
// documents could name nodes. The hash below was computed by the code
// before the node field existed.
func TestLocalDocumentBytesUnchanged(t *testing.T) {
	d, err := ParseDocument(exampleRaw(t))
	if err != nil {
		t.Fatal(err)
	}
	h := d.Hash()
	if got, want := hex.EncodeToString(h[:]), "2c5cce92b437a0db13fcc1f13187348c657e734dc68bb4a6fc71413958209c8c"; got != want {
		t.Fatalf("the example's document hash is %s, was %s before documents could name nodes", got, want)
	}
	if bytes.Contains(d.Canonical(), []byte(`"node"`)) || d.CrossNode() {
		t.Fatalf("a local document's canonical form names a node: %s", d.Canonical())
	}
}

func TestCrossNodeDocument(t *testing.T) {
	raw := mutate(t, func(m map[string]any) {
		ps := m["parties"].([]any)
		ps[0].(map[string]any)["node"] = "parley-node-a+01234567+AQ"
		ps[1].(map[string]any)["node"] = "parley-node-b+89abcdef+AQ"
	})
	d, err := ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !d.CrossNode() || d.Parties[0].Node != "parley-node-a+01234567+AQ" || d.Parties[1].Node != "parley-node-b+89abcdef+AQ" {
		t.Fatalf("nodes = %q, %q", d.Parties[0].Node, d.Parties[1].Node)
	}
	back, err := ParseDocument(d.Canonical())
	if err != nil {
		t.Fatal(err)
	}
	if back.Hash() != d.Hash() || back.Parties != d.Parties {
		t.Fatal("a cross-node document does not survive its canonical form")
	}
	local, _ := ParseDocument(exampleRaw(t))
	if local.Hash() == d.Hash() {
		t.Fatal("naming the nodes does not change the document hash: a signature would not bind them")
	}
}

func TestNodeFieldRefused(t *testing.T) {
	for name, c := range map[string]struct {
		edit func(ps []any)
		want string
	}{
		"one side only": {func(ps []any) { ps[0].(map[string]any)["node"] = "parley-node-a+01234567+AQ" }, "both parties"},
		"same node":     {func(ps []any) { ps[0].(map[string]any)["node"] = "n+1+AQ"; ps[1].(map[string]any)["node"] = "n+1+AQ" }, "both parties are on node"},
		"empty":         {func(ps []any) { ps[0].(map[string]any)["node"] = ""; ps[1].(map[string]any)["node"] = "n+1+AQ" }, "must not be empty"},
		"not a string":  {func(ps []any) { ps[0].(map[string]any)["node"] = 7; ps[1].(map[string]any)["node"] = "n+1+AQ" }, "must be a string"},
	} {
		t.Run(name, func(t *testing.T) {
			raw := mutate(t, func(m map[string]any) { c.edit(m["parties"].([]any)) })
			_, err := ParseDocument(raw)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one naming %q", err, c.want)
			}
		})
	}
}
