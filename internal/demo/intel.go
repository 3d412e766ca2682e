// Package demo plays parley's whole idea on a running server: two parties
// sign an agreement and exchange generated, realistic intelligence on a
// ransomware crew under give-to-get, then check the ledger. `parley demo`
// runs it; its test is the demo's acceptance test.
//
// The intelligence is synthetic, generated here from a seed (documentation
// address ranges, example domains), so the demo needs no data files and
// leaks nothing real.
package demo

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// TLP 2.0 marking definitions used by the generated objects.
const (
	tlpGreen = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	tlpAmber = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
)

// Crew is a generated dossier on one ransomware crew, as one party knows it.
type Crew struct {
	Name       string
	Objects    []json.RawMessage
	Indicators int
	// Wanted are identifiers this party would like to know whether the
	// other side holds (for private matching).
	Wanted []string
	// Held are identifiers that appear in this party's own intelligence.
	Held []string
}

type gen struct {
	r    *rand.Rand
	now  time.Time
	objs []json.RawMessage
}

func (g *gen) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (g *gen) ts(back time.Duration) string {
	return g.now.Add(-back).UTC().Format("2006-01-02T15:04:05.000Z")
}

func (g *gen) add(m map[string]any) string {
	m["spec_version"] = "2.1"
	if _, ok := m["id"]; !ok {
		m["id"] = m["type"].(string) + "--" + g.uuid()
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // only maps of strings and slices: cannot fail
	}
	g.objs = append(g.objs, b)
	return m["id"].(string)
}

// GenerateCrew returns a party's dossier on the crew: a threat actor, its
// intrusion set, the ransomware family, C2 infrastructure, relationships and
// n indicators (IPv4 C2 addresses, domains, file hashes and a ransom
// wallet). seed makes it reproducible; perspective varies what each party
// holds so the two sides overlap only partly.
func GenerateCrew(seed uint64, perspective string, n int, now time.Time) *Crew {
	g := &gen{r: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), now: now}
	c := &Crew{Name: "Black Lantern"}
	ident := g.add(map[string]any{"type": "identity", "name": perspective, "identity_class": "organization",
		"created": g.ts(400 * 24 * time.Hour), "modified": g.ts(400 * 24 * time.Hour), "object_marking_refs": []string{tlpGreen}})
	base := map[string]any{"created_by_ref": ident}
	with := func(m map[string]any, marking string) map[string]any {
		for k, v := range base {
			m[k] = v
		}
		m["object_marking_refs"] = []string{marking}
		return m
	}
	actor := g.add(with(map[string]any{"type": "threat-actor", "name": "Black Lantern", "aliases": []string{"BLK-LNTRN", "Lantern Spider"},
		"threat_actor_types": []string{"crime-syndicate"}, "sophistication": "advanced", "resource_level": "organization",
		"primary_motivation": "personal-gain", "created": g.ts(300 * 24 * time.Hour), "modified": g.ts(10 * 24 * time.Hour),
		"description": "Ransomware-as-a-service crew running double extortion against hospitals and municipalities."}, tlpAmber))
	iset := g.add(with(map[string]any{"type": "intrusion-set", "name": "Black Lantern operations", "created": g.ts(300 * 24 * time.Hour),
		"modified": g.ts(10 * 24 * time.Hour), "goals": []string{"extortion"}, "primary_motivation": "personal-gain"}, tlpAmber))
	mal := g.add(with(map[string]any{"type": "malware", "name": "LanternLock", "is_family": true, "malware_types": []string{"ransomware"},
		"created": g.ts(280 * 24 * time.Hour), "modified": g.ts(5 * 24 * time.Hour), "capabilities": []string{"evades-av", "communicates-with-c2"},
		"description": "Encrypts with ChaCha20, deletes shadow copies, exfiltrates before encryption."}, tlpGreen))
	infra := g.add(with(map[string]any{"type": "infrastructure", "name": "Lantern C2 cluster", "infrastructure_types": []string{"command-and-control"},
		"created": g.ts(200 * 24 * time.Hour), "modified": g.ts(2 * 24 * time.Hour)}, tlpAmber))
	rel := func(src, kind, dst string) {
		g.add(with(map[string]any{"type": "relationship", "relationship_type": kind, "source_ref": src, "target_ref": dst,
			"created": g.ts(100 * 24 * time.Hour), "modified": g.ts(100 * 24 * time.Hour)}, tlpGreen))
	}
	rel(iset, "attributed-to", actor)
	rel(iset, "uses", mal)
	rel(mal, "uses", infra)
	// Shared identifiers both sides see (the crew's well-known C2 and wallet),
	// plus identifiers only this perspective holds.
	common := []string{"198.51.100.23", "lanternlock-support.example", "bc1qlanternxqz7e4j5h2k8w9d0f3g6t5r4e3w2q1"}
	for i := 0; i < n; i++ {
		var pattern, value, name string
		switch i % 4 {
		case 0:
			value = fmt.Sprintf("203.0.%d.%d", g.r.IntN(256), 1+g.r.IntN(254))
			pattern, name = fmt.Sprintf("[ipv4-addr:value = '%s']", value), "LanternLock C2 "+value
		case 1:
			value = fmt.Sprintf("%s-%d.example.net", []string{"update", "cdn", "files", "panel"}[g.r.IntN(4)], g.r.IntN(100000))
			pattern, name = fmt.Sprintf("[domain-name:value = '%s']", value), "Lantern staging domain"
		case 2:
			value = fmt.Sprintf("%016x%016x%016x%016x", g.r.Uint64(), g.r.Uint64(), g.r.Uint64(), g.r.Uint64())
			pattern, name = fmt.Sprintf("[file:hashes.'SHA-256' = '%s']", value), "LanternLock payload"
		default:
			value = fmt.Sprintf("198.51.100.%d", 1+g.r.IntN(254))
			pattern, name = fmt.Sprintf("[ipv4-addr:value = '%s'] AND [network-traffic:dst_port = 443]", value), "Lantern exfiltration node"
		}
		if i < len(common) {
			value = common[i]
			switch i {
			case 0:
				pattern = fmt.Sprintf("[ipv4-addr:value = '%s']", value)
			case 1:
				pattern = fmt.Sprintf("[domain-name:value = '%s']", value)
			default:
				pattern, name = "[x-crypto-wallet:address = '"+value+"']", "Ransom wallet"
			}
		}
		c.Held = append(c.Held, value)
		ind := g.add(with(map[string]any{"type": "indicator", "name": name, "pattern": pattern, "pattern_type": "stix",
			"indicator_types": []string{"malicious-activity"}, "valid_from": g.ts(time.Duration(60-i%60) * 24 * time.Hour),
			"created": g.ts(time.Duration(60-i%60) * 24 * time.Hour), "modified": g.ts(time.Duration(30-i%30) * time.Hour),
			"confidence": 60 + g.r.IntN(40)}, []string{tlpGreen, tlpAmber}[i%2]))
		if i%25 == 0 {
			rel(ind, "indicates", mal)
		}
		c.Indicators++
	}
	// What this party wants to know about: the crew's known identifiers,
	// a few from its own leads, and some that nobody holds.
	c.Wanted = append(c.Wanted, common...)
	for i := 0; i < 5; i++ {
		c.Wanted = append(c.Wanted, fmt.Sprintf("suspect%d@lantern-mail.example", g.r.IntN(1000)))
	}
	c.Objects = g.objs
	return c
}
