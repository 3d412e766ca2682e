package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/audit"
	"github.com/parley-cti/parley/internal/ledger"
)

// TestLedgerOpenings: the keys that open ledger commitments go only to the
// parties entitled to what each entry binds (a feed batch and a deposit to
// the party that made them; terms, releases and disputes to both sides;
// nothing to an outsider), a refusal looks like a missing entry, and the
// entitled party's verify passes with receipts it checks against the
// digests it knows, while a wrong guess fails.
func TestLedgerOpenings(t *testing.T) {
	w := newDictionaryWorld(t)
	a, b, c := w.a, w.b, w.c
	entries := w.readAll(a)
	// Opening keys go to the entitled only. Find the entries by subject.
	index := func(kind ledger.Kind, subject, actor string) int64 {
		t.Helper()
		for i, raw := range entries {
			e, _ := ledger.DecodeEntry(raw)
			if e.Kind == kind && e.Subject == subject && (actor == "" || e.Actor == actor) {
				return int64(i)
			}
		}
		t.Fatalf("no %s entry about %s", kind, subject)
		return -1
	}
	ipBatch := index(ledger.KindFeedBatch, "status--"+w.ipStatus.ID, a.ID)
	terms1 := index(ledger.KindHandoverProposed, w.h1.ID, b.ID)
	depositA := index(ledger.KindHandoverDepositCommitted, w.h1.ID, a.ID)
	released := index(ledger.KindHandoverReleased, w.h1.ID, "")
	disputed := index(ledger.KindHandoverDisputed, w.h1.ID, "")
	missing := int64(len(entries) + 1000)
	_, missingErr := c.C.LedgerOpening(ctx, missing)
	wantAPIError(t, "opening a missing entry", missingErr, 404, "not_found", "")
	for _, tc := range []struct {
		who   *Party
		index int64
		may   bool
	}{
		{a, ipBatch, true}, {b, ipBatch, false}, {c, ipBatch, false},
		{a, depositA, true}, {b, depositA, false}, {c, depositA, false},
		{a, terms1, true}, {b, terms1, true}, {c, terms1, false},
		{a, released, true}, {b, released, true}, {c, released, false},
		{c, disputed, false},
	} {
		o, err := tc.who.C.LedgerOpening(ctx, tc.index)
		switch {
		case tc.may && (err != nil || o.Key == "" || o.V != ledger.EntryVersion):
			t.Errorf("%s opening entry %d: %+v, %v; want its key", tc.who.Name, tc.index, o, err)
		case !tc.may && err == nil:
			t.Errorf("%s got the key of entry %d it is not entitled to", tc.who.Name, tc.index)
		case !tc.may && err.Error() != missingErr.Error():
			t.Errorf("%s refused entry %d with %v, unlike a missing entry (%v)", tc.who.Name, tc.index, err, missingErr)
		}
	}

	// The entitled party's verify: receipts with the digests it knows,
	// opened with the keys the server gives it, then replay and the API.
	var ipDigest bytes.Buffer
	for _, sd := range w.ipStatus.Successes {
		fmt.Fprintf(&ipDigest, "%s %s\n", sd.ID, sd.Version)
	}
	sum := func(b []byte) string { s := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(s[:]) }
	receipts := []audit.Receipt{
		{Index: ipBatch, Kind: ledger.KindFeedBatch, Party: a.ID, Digests: map[string]string{"objects": sum(ipDigest.Bytes())}},
		{Index: terms1, Kind: ledger.KindHandoverProposed, Party: a.ID, Digests: map[string]string{"terms": sum([]byte(w.delivers + "\x00" + w.expects))}},
		{Index: depositA, Kind: ledger.KindHandoverDepositCommitted, Party: a.ID, Digests: map[string]string{"bundle": "sha256:" + w.depA.SHA256}},
		{Index: released, Kind: ledger.KindHandoverReleased, Party: a.ID, Digests: map[string]string{"proposer": sum(w.bundleB), "counterpart": sum(w.bundleA)}},
		{Index: disputed, Kind: ledger.KindHandoverDisputed, Party: a.ID, Digests: map[string]string{"dispute": sum([]byte(w.dispute))}},
	}
	verify := func(p *Party, rs []audit.Receipt) (*audit.Report, error) {
		st := audit.State{Dir: t.TempDir()}
		for _, r := range rs {
			if err := st.RecordReceipt(r); err != nil {
				t.Fatal(err)
			}
		}
		vctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return audit.Verify(vctx, audit.Options{State: st, Remote: audit.NewRemote(w.s.URL, p.Token, nil), API: p.C, Party: p.ID,
			FetchKey: func(ctx context.Context) (string, error) { return audit.FetchLogKey(ctx, w.s.URL, p.Token, nil) }, Settle: 10 * time.Second})
	}
	rep, err := verify(a, receipts)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("alpha's verify fails: %v\n%+v", err, rep.Checks)
	}
	if len(rep.Agreements) != 1 || rep.Agreements[0].ID != w.agreement {
		t.Fatalf("alpha's replay: %+v", rep.Agreements)
	}
	// The commitment check is live: a receipt expecting another IP fails,
	// and bravo cannot open alpha's batch even with the right guess.
	wrong := receipts[0]
	wrong.Digests = map[string]string{"objects": sum(fmt.Appendf(nil, "%s %s\n", stixID("ipv4-addr", "203.0.113.78"), w.timeless))}
	if rep, err := verify(a, []audit.Receipt{wrong}); err != nil || !errors.Is(rep.Err(), audit.ErrReceipt) {
		t.Fatalf("a receipt expecting another IP: %v, %v; want ErrReceipt", rep.Err(), err)
	}
	guess := receipts[0]
	guess.Party = ""
	if rep, err := verify(b, []audit.Receipt{guess}); err != nil || !errors.Is(rep.Err(), audit.ErrReceipt) {
		t.Fatalf("bravo opening alpha's batch with the right guess: %v, %v; want ErrReceipt (no key)", rep.Err(), err)
	}
	mine := []audit.Receipt{receipts[1], receipts[3]}
	for i := range mine {
		mine[i].Party = b.ID
	}
	if rep, err := verify(b, mine); err != nil || rep.Err() != nil {
		t.Fatalf("bravo's verify of the handover it is party to: %v, %v", rep.Err(), err)
	}
}
