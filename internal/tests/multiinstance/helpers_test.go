package multiinstance

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/tests/e2e"
)

var ctx = context.Background()

// document builds an agreement document from a to b, in force now.
func document(t testing.TB, a, b *e2e.Party, reciprocity map[string]any) *agreement.Document {
	t.Helper()
	now := time.Now().UTC()
	if reciprocity == nil {
		reciprocity = map[string]any{"ratio": "1:2", "grace": 10}
	}
	m := map[string]any{
		"schema_version": 1, "id": agreement.NewID(), "version": 1,
		"parties": []map[string]any{
			{"party_id": a.ID, "name": a.Name, "key_id": a.Keys.KeyID()},
			{"party_id": b.ID, "name": b.Name, "key_id": b.Keys.KeyID()},
		},
		"scope":              map[string]any{"types": []string{"indicator", "malware", "threat-actor"}, "max_tlp": "amber", "unmarked": "allow"},
		"reciprocity":        reciprocity,
		"escrow_deadline":    "72h",
		"request_deadlines":  map[string]any{"acknowledge": "24h", "fulfil": "168h"},
		"not_before":         now.Add(-time.Minute).Format(time.RFC3339),
		"not_after":          now.Add(365 * 24 * time.Hour).Format(time.RFC3339),
		"termination_notice": "0s",
	}
	raw, _ := json.Marshal(m)
	d, err := agreement.ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sign(t testing.TB, p *e2e.Party, d *agreement.Document, action agreement.Action) agreement.Signature {
	t.Helper()
	sig, err := agreement.Sign(p.Keys, agreement.StatementFor(d, action, p.ID, p.Keys.KeyID(), time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// activate has a propose d (through a's client) and b countersign it
// (through b's, which may talk to another instance).
func activate(t testing.TB, a, b *e2e.Party, d *agreement.Document) *client.Agreement {
	t.Helper()
	if _, err := a.C.Propose(ctx, d, sign(t, a, d, agreement.ActionPropose)); err != nil {
		t.Fatalf("propose: %v", err)
	}
	ag, err := b.C.Sign(ctx, sign(t, b, d, agreement.ActionCountersign))
	if err != nil {
		t.Fatalf("countersign: %v", err)
	}
	if !ag.InForce {
		t.Fatalf("after countersigning: phase %s, not in force", ag.Phase)
	}
	return ag
}

// collections returns p's own and the counterpart's collection under an
// agreement.
func collections(t testing.TB, p *e2e.Party, agreementID string) (own, theirs string) {
	t.Helper()
	cs, err := p.C.Collections(ctx, agreementID)
	if err != nil || len(cs) != 2 {
		t.Fatalf("%s's collections under %s: %+v, %v", p.Name, agreementID, cs, err)
	}
	for _, c := range cs {
		if c.CanWrite {
			own = c.ID
		} else {
			theirs = c.ID
		}
	}
	return own, theirs
}

func indicator(n int, modified string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--00000000-0000-4000-8000-%012d","created":"2026-01-01T00:00:00.000Z","modified":%q,"name":"C2 %d","pattern":"[ipv4-addr:value = '10.%d.%d.%d']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`,
		n, modified, n, (n>>16)&255, (n>>8)&255, n&255))
}

func indicators(from, n int) []json.RawMessage {
	out := make([]json.RawMessage, 0, n)
	for i := from; i < from+n; i++ {
		out = append(out, indicator(i, "2026-01-01T00:00:00.000Z"))
	}
	return out
}

// readAll pages through a collection with limit/next and returns the ids.
func readAll(t testing.TB, c *client.Client, root, coll string, limit int) []string {
	t.Helper()
	ids, err := tryReadAll(c, root, coll, limit)
	if err != nil {
		t.Fatalf("reading %s: %v", coll, err)
	}
	return ids
}

func tryReadAll(c *client.Client, root, coll string, limit int) ([]string, error) {
	var ids []string
	for o, err := range c.AllObjects(ctx, root, coll, client.Filter{Limit: limit}) {
		if err != nil {
			return ids, err
		}
		var head struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(o, &head); err != nil {
			return ids, err
		}
		ids = append(ids, head.ID)
	}
	return ids, nil
}

// clientFor is p's client against another instance.
func clientFor(t testing.TB, base string, p *e2e.Party) *client.Client {
	t.Helper()
	c, err := client.New(base+"/taxii2/", client.WithToken(p.Token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
