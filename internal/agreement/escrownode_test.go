package agreement

import (
	"bytes"
	"strings"
	"testing"
)

func crossNode(m map[string]any) {
	ps := m["parties"].([]any)
	ps[0].(map[string]any)["node"] = "parley-node-a+01234567+AQ"
	ps[1].(map[string]any)["node"] = "parley-node-b+89abcdef+AQ"
}

// An agreement between two nodes may name a third node as escrow: the
// field is part of the canonical bytes (so both signatures bind it) and
// absent from every document that names none (so those keep their bytes).
func TestEscrowNodeDocument(t *testing.T) {
	plain, err := ParseDocument(mutate(t, crossNode))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(plain.Canonical(), []byte(`escrow_node`)) || plain.EscrowNode != "" {
		t.Fatalf("a document naming no escrow node carries the field: %s", plain.Canonical())
	}
	d, err := ParseDocument(mutate(t, func(m map[string]any) {
		crossNode(m)
		m["escrow_node"] = "parley-node-c+fedcba98+AQ"
	}))
	if err != nil {
		t.Fatal(err)
	}
	if d.EscrowNode != "parley-node-c+fedcba98+AQ" {
		t.Fatalf("escrow node = %q", d.EscrowNode)
	}
	if !bytes.Contains(d.Canonical(), []byte(`"escrow_node":"parley-node-c+fedcba98+AQ"`)) {
		t.Fatalf("canonical form lacks the escrow node: %s", d.Canonical())
	}
	if d.Hash() == plain.Hash() {
		t.Fatal("naming an escrow node does not change the hash: the signatures would not bind it")
	}
	back, err := ParseDocument(d.Canonical())
	if err != nil || back.Hash() != d.Hash() || back.EscrowNode != d.EscrowNode {
		t.Fatalf("the escrow node does not survive the canonical form: %v", err)
	}
}

func TestEscrowNodeRefused(t *testing.T) {
	for name, c := range map[string]struct {
		edit func(m map[string]any)
		want string
	}{
		"one server":     {func(m map[string]any) { m["escrow_node"] = "parley-node-c+fedcba98+AQ" }, "names no escrow node"},
		"a party's node": {func(m map[string]any) { crossNode(m); m["escrow_node"] = "parley-node-b+89abcdef+AQ" }, "must be a third node"},
		"empty":          {func(m map[string]any) { crossNode(m); m["escrow_node"] = "" }, "must not be empty"},
		"not a string":   {func(m map[string]any) { crossNode(m); m["escrow_node"] = 3 }, "must be a string"},
		"blank around":   {func(m map[string]any) { crossNode(m); m["escrow_node"] = " x " }, "printable"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseDocument(mutate(t, c.edit))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one naming %q", err, c.want)
			}
		})
	}
}
