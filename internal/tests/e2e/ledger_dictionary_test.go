package e2e

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/audit"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/psi"
	"github.com/parley-cti/parley/internal/stix"
)

// stixID returns the deterministic id STIX 2.1 gives a cyber-observable
// (UUIDv5 in the STIX namespace over its canonical id contributing
// properties), as an attacker enumerating values computes it.
func stixID(typ, value string) string {
	ns := [16]byte{0x00, 0xab, 0xed, 0xb4, 0xaa, 0x42, 0x55, 0xc7, 0xaa, 0x81, 0x0e, 0x2a, 0x8d, 0x7c, 0x3b, 0xd3}
	name, _ := json.Marshal(map[string]string{"value": value})
	h := sha1.New()
	h.Write(ns[:])
	h.Write(name)
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%s--%x-%x-%x-%x-%x", typ, u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func observable(typ, value string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":%q,"spec_version":"2.1","id":%q,"value":%q}`, typ, stixID(typ, value), value))
}

// dictionary is what a reader of the public ledger tries against it: each
// guessable value, hashed every plausible way, in every plausible encoding.
type dictionary struct {
	plain  map[string]string // needle → the value it stands for
	hashed map[string]string // encoded hash → how it was made
}

func newDictionary() *dictionary {
	return &dictionary{plain: map[string]string{}, hashed: map[string]string{}}
}

func (d *dictionary) hash(label string, data []byte) {
	sums := map[string][]byte{}
	s256 := sha256.Sum256(data)
	s512 := sha512.Sum512(data)
	s1 := sha1.Sum(data)
	sums["sha256"], sums["sha512"], sums["sha512/256"], sums["sha1"] = s256[:], s512[:], s512[:32], s1[:]
	for alg, sum := range sums {
		for enc, s := range map[string]string{
			"hex": hex.EncodeToString(sum), "HEX": strings.ToUpper(hex.EncodeToString(sum)),
			"base64": base64.StdEncoding.EncodeToString(sum), "base64url": base64.RawURLEncoding.EncodeToString(sum),
		} {
			d.hashed[s] = alg + "(" + label + ") as " + enc
		}
	}
}

// value adds a guessable value: itself (it must never appear in plain) and
// its hashes alone, with a newline, as a JSON string, and inside every
// record format parley has used (object id and version, id alone, the two
// halves of handover terms).
func (d *dictionary) value(label, v string, versions []string) {
	d.plain[v] = label
	quoted, _ := json.Marshal(v)
	for _, form := range []string{v, v + "\n", string(quoted), strings.ToLower(v)} {
		d.hash(label, []byte(form))
	}
	for _, ver := range versions {
		d.hash(label+" id+version", []byte(v+" "+ver+"\n"))
		d.hash(label+" id+version (no newline)", []byte(v+" "+ver))
	}
	d.hash(label+" id list", []byte(v+"\n"))
}

// pair adds values hashed together the way handover terms were.
func (d *dictionary) pair(label, a, b string) {
	for _, sep := range []string{"\x00", "\n", " ", ""} {
		d.hash(label, []byte(a+sep+b))
	}
}

// attack searches every entry for every needle and reports what it found.
func (d *dictionary) attack(entries [][]byte) []string {
	var found []string
	for i, e := range entries {
		for needle, label := range d.plain {
			if bytes.Contains(e, []byte(needle)) {
				found = append(found, fmt.Sprintf("entry %d carries %s in plain", i, label))
			}
		}
		// Every string field of the entry, and every "alg:value" tail.
		var fields []string
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case string:
				fields = append(fields, x)
				if _, tail, ok := strings.Cut(x, ":"); ok {
					fields = append(fields, tail)
				}
			case map[string]any:
				for _, y := range x {
					walk(y)
				}
			case []any:
				for _, y := range x {
					walk(y)
				}
			}
		}
		var m any
		if err := json.Unmarshal(e, &m); err != nil {
			found = append(found, fmt.Sprintf("entry %d is not JSON", i))
			continue
		}
		walk(m)
		for _, f := range fields {
			if how, ok := d.hashed[f]; ok {
				found = append(found, fmt.Sprintf("entry %d: %q = %s", i, f, how))
			}
		}
	}
	return found
}

// TestLedgerDictionaryAttack: the ledger is readable by every party, and
// checkable by anyone, but reveals nothing a reader could not read through
// the API. One entry of every kind is made through the real server with
// guessable secrets in it (an IPv4 address bravo may not read, a domain in
// an operator collection only alpha reads, a phone number in handover
// terms, refusal and dispute texts, deposits, wanted lists); then bravo
// (the non-entitled counterpart) and charlie (an outsider) read the whole
// public ledger and try a dictionary holding the true values, hashed every
// plausible way, against every field. They must recover nothing; the
// entitled party's verify (checkpoint, receipts opened with its keys,
// replay, API comparison) must still pass; and the opening keys go only to
// the entitled.
// aboutNodes are the ledger kinds that record what one node saw of
// another, not anything of a party's: they bind no intelligence and carry
// no commitment to open, so this attack has nothing to try on them, and
// one server holding two parties never writes them. Each is covered where
// it is made.
var aboutNodes = map[ledger.Kind]string{
	// Peer names, node keys and checkpoint sizes and roots; made and
	// checked by internal/crosswitness (TestHostilePeer).
	ledger.KindNodePeerIncident: "a peer node caught misbehaving",
	// A range of the peer's publish order and a count of contributions,
	// no id, digest or commitment (the objects themselves are committed
	// by the feed.batch of their ingest); made by internal/node's puller
	// and counted by joint reports across nodes (TestJointReportAcrossNodes).
	ledger.KindFeedReceived: "a page pulled from the other party's node",
	// Gradual release runs only between two nodes without an escrow node
	// (one server releases both deposits in one transaction). Their
	// digests are of sealed chunks (age ciphertexts) and of the parties'
	// signed statements about them, as for a sealed deposit; made and
	// attacked by internal/node (gradual_test.go).
	ledger.KindHandoverChunksCommitted: "a side's signed commitment to its sealed chunks (between nodes only)",
	ledger.KindHandoverChunkMoved:      "a sealed chunk sent or received (between nodes only)",
	ledger.KindHandoverChunkConfirmed:  "a recipient's signed confirmation of a chunk (between nodes only)",
	ledger.KindHandoverStopped:         "a gradual exchange stopped by a rejection (between nodes only)",
	// A request closed on its requester's node because the responder's
	// node refused its filing for good: the peer's name and its refusal
	// code, no text, digest or commitment; made and attacked by
	// internal/node (TestRequestUndeliveredAcrossNodes,
	// TestRequestUndeliveredHostile).
	ledger.KindRequestUndelivered: "a request whose filing the other party's node refused for good (between nodes only)",
}

func TestLedgerDictionaryAttack(t *testing.T) {
	w := newDictionaryWorld(t)
	// The attack, by the counterpart and by an outsider: both read the same
	// public bytes, and neither recovers anything.
	entries := w.readAll(w.c)
	if !slices.EqualFunc(entries, w.readAll(w.b), bytes.Equal) {
		t.Fatal("bravo and charlie are shown different ledgers")
	}
	got := w.kindsIn(entries)
	for _, k := range ledger.Kinds() {
		if why, ok := aboutNodes[k]; ok {
			if got[k] != 0 {
				t.Errorf("%s entries appeared between parties of one server; the exemption (%s) is wrong", k, why)
			}
			continue
		}
		if got[k] == 0 {
			t.Errorf("no %s entry was made; the attack must cover every kind (got %v)", k, got)
		}
	}
	if len(w.dict.hashed) < 10000 {
		t.Fatalf("dictionary of %d hashes is too small to mean anything", len(w.dict.hashed))
	}
	for _, f := range w.dict.attack(entries) {
		t.Errorf("recovered from the public ledger: %s", f)
	}
	// Nor does bravo through the API: its views of every handover (one
	// holding alpha's unreleased IPv4 deposit) and its events.
	var views [][]byte
	hs, err := w.b.C.Handovers(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		v, err := w.b.C.Handover(ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(v)
		views = append(views, raw)
	}
	if !slices.ContainsFunc(hs, func(h client.Handover) bool { return h.ID == w.h5.ID }) {
		t.Fatalf("bravo's handovers %v lack the open case %s", hs, w.h5.ID)
	}
	for _, e := range events(t, w.b) {
		raw, _ := json.Marshal(e)
		views = append(views, raw)
	}
	for _, f := range w.hidden.attack(views) {
		t.Errorf("bravo recovers through the API: %s", f)
	}
	// Live check of the attack itself: a plain digest of the IP object, as
	// version-1 entries held it, is caught.
	plainV1 := sha256.Sum256([]byte(stixID("ipv4-addr", dictIP) + " " + w.timeless + "\n"))
	if len(w.dict.attack([][]byte{fmt.Appendf(nil, `{"digests":{"objects":"sha256:%x"}}`, plainV1)})) == 0 {
		t.Fatal("the dictionary does not recognize a plain digest of the IP's one-object batch")
	}
}

// dictionaryWorld is the ledger of TestLedgerDictionaryAttack and what its
// entitled parties know.
type dictionaryWorld struct {
	t                 *testing.T
	s                 *Server
	a, b, c           *Party
	agreement         string
	dict              *dictionary
	timeless          string
	ipStatus          *client.Status
	h1                *client.Handover
	delivers, expects string
	bundleA, bundleB  []byte
	depA              *client.DepositResult
	h5                *client.Handover // open: alpha's IPv4 deposit, not released
	unreleased        []byte
	hidden            *dictionary // what bravo may not read through the API
	dispute           string
}

const (
	dictIP     = "203.0.113.77"
	dictDomain = "c2-dictionary-victim.example"
	dictPhone  = "+44 20 7946 0958"
)

func (w *dictionaryWorld) readAll(p *Party) [][]byte {
	w.t.Helper()
	size := ledgerSize(w.t, w.s)
	waitCheckpoint(w.t, w.s, p.Token, size)
	es, err := audit.NewRemote(w.s.URL, p.Token, nil).Entries(ctx, 0, size)
	if err != nil || int64(len(es)) != size {
		w.t.Fatalf("%s reads the ledger: %d entries of %d, %v", p.Name, len(es), size, err)
	}
	return es
}

func (w *dictionaryWorld) kindsIn(es [][]byte) map[ledger.Kind]int {
	out := map[ledger.Kind]int{}
	for _, raw := range es {
		e, err := ledger.DecodeEntry(raw)
		if err != nil {
			w.t.Fatalf("entry %s: %v", raw, err)
		}
		out[e.Kind]++
	}
	return out
}

// newDictionaryWorld makes one entry of every kind through the real server,
// with guessable secrets in them.
func newDictionaryWorld(t *testing.T) *dictionaryWorld {
	s := Start(t)
	a, b, c := s.NewParty(t, "alpha"), s.NewParty(t, "bravo"), s.NewParty(t, "charlie")
	terms := func(m map[string]any) {
		m["scope"] = map[string]any{"types": []string{"indicator", "ipv4-addr", "domain-name"}, "max_tlp": "amber", "unmarked": "allow"}
		m["reciprocity"] = map[string]any{"ratio": "1:1", "grace": 0, "contest_window": "1h"}
		m["request_deadlines"] = map[string]any{"acknowledge": "1s", "fulfil": "2s"}
		m["match_cap"] = 100
	}
	d := Document(t, a, b, terms)
	Activate(t, a, b, d)
	aColl, bColl := Collections(t, a, d.ID)

	ip, domain, phone := dictIP, dictDomain, dictPhone
	timeless := stix.FormatTime(stix.TimelessVersion)
	versions := []string{timeless, "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00Z"}
	dict := newDictionary()
	w := &dictionaryWorld{t: t, s: s, a: a, b: b, c: c, agreement: d.ID, dict: dict, timeless: timeless, hidden: newDictionary()}

	// Feed: alpha gives one indicator, bravo one (released to each other),
	// then alpha one IPv4 address bravo's allowance does not reach.
	mustAdd := func(p *Party, root, coll string, objs ...json.RawMessage) *client.Status {
		t.Helper()
		st, err := p.C.AddObjects(ctx, root, coll, objs)
		if err != nil || st.SuccessCount != len(objs) {
			t.Fatalf("%s adds %d objects: %+v, %v", p.Name, len(objs), st, err)
		}
		return st
	}
	mustAdd(a, d.ID, aColl, Indicator(9001, ""))
	mustAdd(b, d.ID, bColl, Indicator(9002, ""))
	secretIP := observable("ipv4-addr", ip)
	w.ipStatus = mustAdd(a, d.ID, aColl, secretIP)
	if ids := ReadAll(t, b, d.ID, aColl, 10); slices.Contains(ids, stixID("ipv4-addr", ip)) {
		t.Fatalf("bravo reads alpha's IPv4 address through the API (%v): the test needs it hidden", ids)
	}
	// An operator collection only alpha reads and writes.
	op, err := s.Srv.Ex.CreateCollection(ctx, "alpha's notes", "", []string{a.ID}, []string{a.ID})
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(a, "shared", op.ID, observable("domain-name", domain))
	// Alpha contests the credit for bravo's indicator, then withdraws:
	// neither entry may name the object.
	contested := "indicator--00000000-0000-4000-8000-000000009002"
	dict.value("contested object id", contested, versions)
	contest, err := a.C.FileContest(ctx, contestStatement(t, a, agreement.ContestStatement{Action: agreement.ContestFile, AgreementID: d.ID,
		ObjectID: contested, Reason: "a test address"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.C.WithdrawContest(ctx, contestStatement(t, a, agreement.ContestStatement{Action: agreement.ContestWithdraw, AgreementID: d.ID,
		ContestID: contest.ID})); err != nil {
		t.Fatal(err)
	}

	// Every guessable value goes into the dictionary, with enumerations
	// around the true ones as an attacker would try them.
	for i := range 256 {
		v := fmt.Sprintf("203.0.113.%d", i)
		dict.value("ipv4-addr id of "+v, stixID("ipv4-addr", v), versions)
		dict.hash("ipv4 value "+v, []byte(v))
	}
	for _, v := range []string{"evil.example", "c2.example", domain, "dictionary-victim.example"} {
		dict.value("domain-name id of "+v, stixID("domain-name", v), versions)
		dict.value("domain "+v, v, nil)
	}
	for i := range 100 {
		dict.hash("phone", fmt.Appendf(nil, "+44 20 7946 09%02d", i))
	}
	// The domain is not among them: alpha names it to bravo in a request.
	for _, x := range []struct{ label, v string }{{"the IP", ip}, {"alpha's IPv4 object", string(secretIP)}} {
		w.hidden.value(x.label, x.v, versions)
	}
	w.hidden.value("ipv4-addr id", stixID("ipv4-addr", ip), versions)
	dict.value("the IP", ip, nil)
	dict.value("the domain", domain, nil)
	dict.value("the phone number", phone, nil)
	dict.value("alpha's IPv4 object", string(secretIP), nil)
	dict.value("the domain object", string(observable("domain-name", domain)), nil)

	// Handovers: one released (with a request and a dispute), one whose
	// deposit is withdrawn, one that expires.
	req1, err := a.C.FileRequest(ctx, client.NewRequest{Agreement: d.ID, Subject: "subscriber of " + phone, Reason: "ransom call from " + phone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.C.AckRequest(ctx, req1.ID); err != nil {
		t.Fatal(err)
	}
	delivers, expects := "call records of "+phone, "subscriber of "+phone
	w.delivers, w.expects = delivers, expects
	dict.value("terms (delivers)", delivers, nil)
	dict.value("terms (expects)", expects, nil)
	dict.pair("terms", delivers, expects)
	dict.value("request subject", req1.Subject, nil)
	dict.value("request reason", "ransom call from "+phone, nil)
	h1, err := b.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: d.ID, Delivers: delivers, Expects: expects, Request: req1.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.C.AcceptHandover(ctx, h1.ID); err != nil {
		t.Fatal(err)
	}
	bundleA, bundleB := Bundle(Indicator(9004, "")), Bundle(Indicator(9003, ""))
	w.bundleA, w.bundleB = bundleA, bundleB
	dict.value("alpha's deposit", string(bundleA), nil)
	dict.value("bravo's deposit", string(bundleB), nil)
	w.h1 = h1
	w.depA, err = a.C.Deposit(ctx, h1.ID, bundleA, client.DepositOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rel, err := b.C.Deposit(ctx, h1.ID, bundleB, client.DepositOptions{}); err != nil || !rel.Released {
		t.Fatalf("second deposit: %+v, %v", rel, err)
	}
	if _, err := b.C.FulfilRequest(ctx, req1.ID, h1.ID); err != nil {
		t.Logf("fulfil (the release may have fulfilled it already): %v", err)
	}
	dispute := "the bundle is not the subscriber of " + phone
	w.dispute = dispute
	dict.value("dispute text", dispute, nil)
	if _, err := b.C.DisputeHandover(ctx, h1.ID, dispute); err != nil {
		t.Fatal(err)
	}
	// alpha deposits its IPv4 address in a case bravo has not deposited in:
	// bravo may not read it, nor test guesses of it, before release.
	w.h5 = OpenCase(t, a, b, d.ID, time.Now().Add(time.Hour))
	w.unreleased = Bundle(secretIP)
	dict.value("alpha's unreleased deposit", string(w.unreleased), nil)
	w.hidden.value("alpha's unreleased deposit", string(w.unreleased), nil)
	if _, err := a.C.Deposit(ctx, w.h5.ID, w.unreleased, client.DepositOptions{}); err != nil {
		t.Fatal(err)
	}
	h2 := OpenCase(t, a, b, d.ID, time.Now().Add(time.Hour))
	if _, err := a.C.Deposit(ctx, h2.ID, bundleA, client.DepositOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.C.Withdraw(ctx, h2.ID); err != nil {
		t.Fatal(err)
	}
	h3, err := a.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: d.ID, Delivers: "X " + phone, Expects: "Y", Deadline: time.Now().Add(3 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	dict.pair("third terms", "X "+phone, "Y")
	if _, err := b.C.AcceptHandover(ctx, h3.ID); err != nil {
		t.Fatal(err)
	}
	// Requests: one refused with a text, one answered by a handover that is
	// declined, then left to go overdue.
	req2, err := a.C.FileRequest(ctx, client.NewRequest{Agreement: d.ID, Subject: "owner of " + domain, Reason: "phishing"})
	if err != nil {
		t.Fatal(err)
	}
	refusal := "we hold nothing on " + phone
	dict.value("refusal text", refusal, nil)
	if _, err := b.C.RefuseRequest(ctx, req2.ID, "other", refusal); err != nil {
		t.Fatal(err)
	}
	req3, err := a.C.FileRequest(ctx, client.NewRequest{Agreement: d.ID, Subject: "wallet of crew X", Reason: "extortion"})
	if err != nil {
		t.Fatal(err)
	}
	// An answer named while its handover is only proposed is pending; the
	// handover declined, the request reopens.
	h4, err := b.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: d.ID, Delivers: "wallet " + phone, Expects: "nothing", Request: req3.ID})
	if err != nil {
		t.Fatal(err)
	}
	dict.pair("fourth terms", "wallet "+phone, "nothing")
	if _, err := b.C.FulfilRequest(ctx, req3.ID, h4.ID); err != nil {
		t.Fatalf("answer pending: %v", err)
	}
	if _, err := a.C.DeclineHandover(ctx, h4.ID); err != nil {
		t.Fatal(err)
	}
	// Private matching: alpha wants the IP, bravo the domain.
	mw := &matchWorld{s: s, a: a, b: b, agreement: d.ID}
	mw.runBoth(t, []psi.Item{{Kind: psi.KindIPv4, Value: ip}}, []psi.Item{{Kind: psi.KindDomain, Value: domain}})
	// Agreement lifecycle: an amendment countersigned, a suspension lifted.
	d2 := Document(t, a, b, func(m map[string]any) { terms(m); m["id"], m["version"] = d.ID, 2 })
	if _, err := a.C.Amend(ctx, d2, Sign(t, a, d2, agreement.ActionAmend)); err != nil {
		t.Fatalf("amend: %v", err)
	}
	if _, err := b.C.Sign(ctx, Sign(t, b, d2, agreement.ActionCountersign)); err != nil {
		t.Fatalf("countersign the amendment: %v", err)
	}
	for _, act := range []agreement.Action{agreement.ActionSuspend, agreement.ActionResume} {
		if _, err := a.C.Sign(ctx, Sign(t, a, d2, act)); err != nil {
			t.Fatalf("%s: %v", act, err)
		}
	}

	// Wait for the sweepers: the second handover expires, a request goes
	// overdue. Then terminate, so every kind is in the log.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := w.kindsIn(w.readAll(a))
		if got[ledger.KindHandoverExpired] > 0 && got[ledger.KindRequestOverdue] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no expiry or overdue entry within 20 s: %v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A joint report on the agreement, signed by alpha (issue 17).
	signJointReport(t, a, d.ID, time.Now().Add(-time.Hour), time.Now())
	if _, err := b.C.Sign(ctx, Sign(t, b, d2, agreement.ActionTerminate)); err != nil {
		t.Fatalf("terminate: %v", err)
	}

	return w
}
