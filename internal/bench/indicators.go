// Package bench measures TAXII 2.1 servers — parley or any other, such as the
// OASIS reference server medallion — from the outside, through
// internal/client: a fixed workload (ingest N indicators, read them all back
// page by page, time single-object GETs) and a concurrent load generator.
//
// It owns the synthetic STIX data, the timing and the reports. It must never
// reach into a server's internals (it sees only HTTP), never assert timings
// (it reports them), and the load generator must never send traffic to any
// host but this machine's loopback.
package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/parley-cti/parley/internal/client"
)

// TLPGreen is the STIX 2.1 predefined TLP:GREEN marking definition every
// generated indicator carries, so that servers enforcing a TLP ceiling accept it.
const TLPGreen = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"

var (
	families = []string{"LockBit", "BlackCat", "Conti", "DarkSide", "REvil", "Clop", "Royal", "Akira",
		"Black Basta", "Play", "Rhysida", "Medusa", "Qakbot", "Emotet", "IcedID", "Cobalt Strike"}
	brands = []string{"payroll", "invoice", "sharepoint", "office365", "docusign", "dhl", "paypal", "bank"}
	tlds   = []string{"com", "net", "org", "info", "top", "xyz", "ru", "cc"}
)

// indicatorGen makes distinct, valid STIX 2.1 indicators. Object i is a
// function of (seed, i) only, so runs are reproducible and ids never repeat
// within a run: the id's last 48 bits are i.
type indicatorGen struct {
	seed uint64
	base time.Time
}

func newIndicatorGen(seed uint64) *indicatorGen {
	return &indicatorGen{seed: seed, base: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// id returns the STIX id of indicator i.
func (g *indicatorGen) id(i int) string {
	r := rand.New(rand.NewPCG(g.seed, uint64(i)))
	hi := r.Uint64()
	// Version 4, variant 10; the low 48 bits carry i for uniqueness.
	return fmt.Sprintf("indicator--%08x-%04x-4%03x-%04x-%012x",
		uint32(hi>>32), uint16(hi>>16), uint16(hi)&0x0fff, 0x8000|(uint16(g.seed)&0x3fff), uint64(i)&0xffffffffffff)
}

type indicator struct {
	Type              string   `json:"type"`
	SpecVersion       string   `json:"spec_version"`
	ID                string   `json:"id"`
	Created           string   `json:"created"`
	Modified          string   `json:"modified"`
	Name              string   `json:"name"`
	Description       string   `json:"description"`
	IndicatorTypes    []string `json:"indicator_types"`
	Pattern           string   `json:"pattern"`
	PatternType       string   `json:"pattern_type"`
	ValidFrom         string   `json:"valid_from"`
	Labels            []string `json:"labels"`
	Confidence        int      `json:"confidence"`
	ObjectMarkingRefs []string `json:"object_marking_refs"`
}

// object returns indicator i as JSON: an IPv4, domain or SHA-256 pattern in turn.
func (g *indicatorGen) object(i int) json.RawMessage {
	r := rand.New(rand.NewPCG(g.seed^0x9e3779b97f4a7c15, uint64(i)))
	fam := families[r.IntN(len(families))]
	ts := g.base.Add(time.Duration(i) * time.Millisecond).Format("2006-01-02T15:04:05.000Z")
	in := indicator{
		Type: "indicator", SpecVersion: "2.1", ID: g.id(i), Created: ts, Modified: ts, ValidFrom: ts,
		PatternType: "stix", Confidence: 50 + r.IntN(50), ObjectMarkingRefs: []string{TLPGreen},
		Labels: []string{fam},
	}
	switch i % 3 {
	case 0:
		// 10.0.0.0/8 is never routed publicly; i fixes three octets, so IPs are distinct.
		ip := fmt.Sprintf("10.%d.%d.%d", (i>>16)&0xff, (i>>8)&0xff, i&0xff)
		in.Name = fmt.Sprintf("%s command-and-control server %s", fam, ip)
		in.Description = fmt.Sprintf("IPv4 address observed beaconing for %s operators.", fam)
		in.IndicatorTypes = []string{"malicious-activity"}
		in.Pattern = fmt.Sprintf("[ipv4-addr:value = '%s']", ip)
	case 1:
		d := fmt.Sprintf("%s-%s-%d.%s", brands[r.IntN(len(brands))], "secure", i, tlds[r.IntN(len(tlds))])
		in.Name = fmt.Sprintf("Phishing domain %s used by %s affiliates", d, fam)
		in.Description = "Credential-phishing domain registered shortly before the campaign."
		in.IndicatorTypes = []string{"malicious-activity", "attribution"}
		in.Pattern = fmt.Sprintf("[domain-name:value = '%s']", d)
	default:
		sum := sha256.Sum256(fmt.Appendf(nil, "%d/%d", g.seed, i))
		h := hex.EncodeToString(sum[:])
		in.Name = fmt.Sprintf("%s payload %s", fam, h[:12])
		in.Description = fmt.Sprintf("SHA-256 of a %s loader recovered from an intrusion.", fam)
		in.IndicatorTypes = []string{"malicious-activity"}
		in.Pattern = fmt.Sprintf("[file:hashes.'SHA-256' = '%s']", h)
	}
	b, err := json.Marshal(in)
	if err != nil {
		panic(err) // a fixed struct of strings always marshals
	}
	return b
}

// idOf extracts an object's id; "" when it has none.
func idOf(obj json.RawMessage) string { return client.ObjectID(obj) }
