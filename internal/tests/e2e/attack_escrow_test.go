package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/audit"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/request"
)

// TestAttackSealedJunk: a party deposits, as its sealed half of a swap,
// bytes that only look sealed (an age header followed by zeros, a header
// alone, a truncated or malformed file), stating their true SHA-256, so
// that the server releases the other side's real dossier against nothing.
// The server refuses each with a clear error, the case stays open, and the
// honest side's deposit is neither released nor changed.
func TestAttackSealedJunk(t *testing.T) {
	s := Start(t)
	honest, cheat := s.NewParty(t, "honest"), s.NewParty(t, "cheat")
	d := Document(t, honest, cheat, nil)
	Activate(t, honest, cheat, d)
	h := OpenCase(t, honest, cheat, d.ID, time.Time{})

	dossier := Bundle(Indicator(1, ""))
	ct, sum, err := client.Seal(dossier, cheat.Keys.Public().SealingRecipient)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := honest.C.DepositSealed(ctx, h.ID, ct, sum, client.DepositOptions{}); err != nil {
		t.Fatalf("honest deposit: %v", err)
	}

	// A real age file sealed to the honest side, to cut up.
	real, _, err := client.Seal(Bundle(Indicator(2, "")), honest.Keys.Public().SealingRecipient)
	if err != nil {
		t.Fatal(err)
	}
	macAt := bytes.Index(real, []byte("\n--- "))
	headerEnd := macAt + 1 + bytes.IndexByte(real[macAt+1:], '\n') + 1
	header, payload := real[:headerEnd], real[headerEnd:]
	lines := strings.SplitAfter(string(header), "\n")
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	junk := []struct {
		name, mention string
		body          []byte
	}{
		{"age header followed by zeros", "without its MAC line", cat([]byte("age-encryption.org/v1\n"), make([]byte, 8192))},
		{"real header followed by zeros", "run of 32 zero bytes", cat(header, make([]byte, len(payload)))},
		{"header only", "shorter than its 16-byte nonce", header},
		{"truncated payload", "last chunk is 8 bytes", cat(header, payload[:16+8])},
		{"no recipient stanza", "no recipient stanza", cat([]byte(lines[0]+lines[3]), payload)},
		{"bad MAC line", "MAC line must be", cat([]byte(lines[0]+lines[1]+lines[2]+"---"+strings.TrimPrefix(lines[3], "--- ")), payload)},
		{"plaintext", "must start with", dossier},
	}
	for _, j := range junk {
		s := sha256.Sum256(j.body)
		_, err := cheat.C.DepositSealed(ctx, h.ID, j.body, hex.EncodeToString(s[:]), client.DepositOptions{})
		wantAPIError(t, j.name, err, http.StatusBadRequest, "invalid", j.mention)
	}

	got, err := honest.C.Handover(ctx, h.ID)
	if err != nil || got.State != "accepted" || len(got.Deposits) != 1 || got.Deposits[0].Party != honest.ID || got.Deposits[0].SHA256 != sum {
		t.Fatalf("after the junk deposits the case is %+v, %v; want it accepted with only the honest deposit", got, err)
	}
	_, err = cheat.C.FetchDeposit(ctx, h.ID, "")
	wantAPIError(t, "cheat fetching the unreleased dossier", err, http.StatusConflict, "conflict", "only once it is released")
	mine, err := honest.C.FetchDeposit(ctx, h.ID, honest.ID)
	if err != nil || !bytes.Equal(mine.Content, ct) {
		t.Fatalf("the honest deposit changed: %v", err)
	}
}

// requestEntries returns, in log order, the kinds (with the "cause"
// attribute when present) of the ledger entries about subject, and checks
// the whole log with the replay parley verify runs.
func requestEntries(t *testing.T, s *Server, subject string) []string {
	t.Helper()
	l, err := sqliteLedger(s)
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := l.ReadEntries(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	rp := audit.NewReplay()
	var out []string
	for i, rec := range recs {
		e, err := ledger.DecodeEntry(rec)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if err := rp.Apply(int64(i), rec, e); err != nil {
			t.Fatalf("replay refuses the log: %v", err)
		}
		if e.Subject == subject {
			k := string(e.Kind)
			if c := e.Attrs["cause"]; c != "" {
				k += ":" + c
			}
			out = append(out, k)
		}
	}
	return out
}

// TestAttackFulfilWithoutDelivery: a responder marks a request fulfilled
// with a handover it only proposed, then lets it be declined, expire, or
// withdraws its deposit, so the request counts as answered in time with
// nothing delivered. Now naming the handover leaves the request open with
// its answer pending; only the release fulfils it; every failure reopens
// it; each step is in the ledger and the replay of parley verify accepts
// the sequences.
func TestAttackFulfilWithoutDelivery(t *testing.T) {
	s := Start(t)
	asker, cheat := s.NewParty(t, "asker"), s.NewParty(t, "cheat")
	d := Document(t, asker, cheat, nil)
	Activate(t, asker, cheat, d)
	r, err := asker.C.FileRequest(ctx, client.NewRequest{Agreement: d.ID, Subject: "the crew's wallets", Reason: "case 7"})
	if err != nil {
		t.Fatal(err)
	}
	propose := func(deadline time.Time) *client.Handover {
		t.Helper()
		h, err := cheat.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: d.ID, Delivers: "the wallets", Expects: "a receipt", Request: r.ID, Deadline: deadline})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	wantOpen := func(what, pendingOn string) {
		t.Helper()
		got, err := asker.C.Request(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != "filed" || got.AnsweredAt != nil || got.AnswerPending != (pendingOn != "") || got.Handover != pendingOn {
			t.Fatalf("%s: request is %+v; want it open (filed), unanswered, pending on %q", what, got, pendingOn)
		}
		stats, err := asker.C.RequestStats(ctx, d.ID)
		if err != nil || stats[1].Party != cheat.ID || stats[1].Fulfilled != 0 || stats[1].AnsweredInTime != 0 || stats[1].Open != 1 {
			t.Fatalf("%s: stats %+v, %v; want the request open, not answered", what, stats, err)
		}
	}
	fulfil := func(h *client.Handover) {
		t.Helper()
		got, err := cheat.C.FulfilRequest(ctx, r.ID, h.ID)
		if err != nil || got.State != "filed" || !got.AnswerPending || got.Handover != h.ID {
			t.Fatalf("fulfilling with unreleased handover %s: %+v, %v; want the answer pending", h.ID, got, err)
		}
	}

	// 1. Proposed, named as the answer, then declined.
	h := propose(time.Time{})
	fulfil(h)
	wantOpen("answer pending on a proposed handover", h.ID)
	_, err = cheat.C.FulfilRequest(ctx, r.ID, h.ID)
	wantAPIError(t, "naming the same handover twice", err, http.StatusConflict, "conflict", "pending its release")
	if _, err := asker.C.DeclineHandover(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	wantOpen("after the decline", "")
	_, err = cheat.C.FulfilRequest(ctx, r.ID, h.ID)
	wantAPIError(t, "fulfilling with the declined handover", err, http.StatusConflict, "conflict", "declined")

	// 2. Accepted, deposited, named, then the responder withdraws.
	accepted := func() *client.Handover {
		t.Helper()
		h := propose(time.Time{})
		if _, err := asker.C.AcceptHandover(ctx, h.ID); err != nil {
			t.Fatal(err)
		}
		return h
	}
	h = accepted()
	if _, err := cheat.C.Deposit(ctx, h.ID, Bundle(Indicator(1, "")), client.DepositOptions{}); err != nil {
		t.Fatal(err)
	}
	fulfil(h)
	other := propose(time.Time{})
	_, err = cheat.C.FulfilRequest(ctx, r.ID, other.ID)
	wantAPIError(t, "naming a second handover while one is pending", err, http.StatusConflict, "conflict", "already answered by handover "+h.ID)
	if _, err := cheat.C.Withdraw(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	wantOpen("after the responder withdrew its deposit", "")

	// 3. Another case named; declining a case that is not the answer
	// changes nothing.
	h = accepted()
	if _, err := cheat.C.Deposit(ctx, h.ID, Bundle(Indicator(1, "")), client.DepositOptions{}); err != nil {
		t.Fatal(err)
	}
	fulfil(h)
	if _, err := asker.C.DeclineHandover(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	wantOpen("declining a case that is not the answer", h.ID)

	// 5. Released: now, and only now, the request is fulfilled.
	res, err := asker.C.Deposit(ctx, h.ID, Bundle(Indicator(2, "")), client.DepositOptions{})
	if err != nil || !res.Released {
		t.Fatalf("second deposit: %+v, %v", res, err)
	}
	got, err := asker.C.Request(ctx, r.ID)
	if err != nil || got.State != "fulfilled" || got.AnswerPending || got.Handover != h.ID || got.AnsweredAt == nil {
		t.Fatalf("after the release the request is %+v, %v; want it fulfilled by %s", got, err, h.ID)
	}
	stats, err := asker.C.RequestStats(ctx, d.ID)
	if err != nil || stats[1].Fulfilled != 1 || stats[1].AnsweredInTime != 1 {
		t.Fatalf("stats after the release: %+v, %v", stats, err)
	}
	if got := kinds(events(t, asker), r.ID); !slices.Contains(got, request.EventReopened) || !slices.Contains(got, request.EventFulfilled) {
		t.Fatalf("the requester's events on the request: %v", got)
	}
	want := []string{"request.filed", "request.answer_pending", "request.reopened:declined", "request.answer_pending",
		"request.reopened:withdrawn", "request.answer_pending", "request.fulfilled"}
	if got := requestEntries(t, s, r.ID); !slices.Equal(got, want) {
		t.Fatalf("ledger entries of the request:\n got %v\nwant %v", got, want)
	}
}

// TestAttackFulfilThenExpire: the answering handover's deadline passes
// without the responder's deposit; the sweeper expires it and the request
// is open again, still counted against the responder's deadlines. A
// withdrawal by the requester on the way reopens nothing.
func TestAttackFulfilThenExpire(t *testing.T) {
	s := Start(t)
	asker, cheat := s.NewParty(t, "asker"), s.NewParty(t, "cheat")
	d := Document(t, asker, cheat, nil)
	Activate(t, asker, cheat, d)
	r, err := asker.C.FileRequest(ctx, client.NewRequest{Agreement: d.ID, Subject: "the crew's servers", Reason: "case 8"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := cheat.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: d.ID, Delivers: "logs", Expects: "a receipt", Request: r.ID,
		Deadline: time.Now().Add(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := asker.C.AcceptHandover(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := cheat.C.FulfilRequest(ctx, r.ID, h.ID); err != nil || !got.AnswerPending {
		t.Fatalf("fulfil: %+v, %v", got, err)
	}
	// The requester depositing and withdrawing its own half leaves the
	// answer pending: the responder has taken nothing back.
	if _, err := asker.C.Deposit(ctx, h.ID, Bundle(Indicator(3, "")), client.DepositOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := asker.C.Withdraw(ctx, h.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := asker.C.Request(ctx, r.ID); err != nil || !got.AnswerPending || got.Handover != h.ID {
		t.Fatalf("after the requester withdrew: %+v, %v; want the answer still pending", got, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := asker.C.Request(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.AnswerPending {
			if got.State != "filed" || got.Handover != "" || got.AnsweredAt != nil {
				t.Fatalf("after expiry: %+v; want the request open again", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the request was not reopened: %+v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if hv, err := asker.C.Handover(ctx, h.ID); err != nil || hv.State != "expired" {
		t.Fatalf("handover: %+v, %v", hv, err)
	}
	want := []string{"request.filed", "request.answer_pending", "request.reopened:expired"}
	if got := requestEntries(t, s, r.ID); !slices.Equal(got, want) {
		t.Fatalf("ledger entries of the request:\n got %v\nwant %v", got, want)
	}
}

// keyProxy stands between a party's client and the real server and, when
// rewrite is set, rewrites the JSON of what the server answers: the
// operator (or whoever sits on the path) lying about keys and documents.
type keyProxy struct {
	URL     string
	rewrite func(path string, body map[string]any)
}

func newKeyProxy(t *testing.T, s *Server) *keyProxy {
	t.Helper()
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	kp := &keyProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if kp.rewrite == nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			kp.rewrite(resp.Request.URL.Path, m)
			b, _ = json.Marshal(m)
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	kp.URL = srv.URL
	return kp
}

// publicJSON is p as the keys endpoint shows it.
func publicJSON(t *testing.T, p agreement.PublicKeys) map[string]any {
	t.Helper()
	b, _ := json.Marshal(p)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAttackSealingKeySubstitution: whoever answers for the server offers
// the depositor a sealing key of its own for the counterpart, so that it
// can read the sealed dossier. The client seals only to a sealing key
// signed by the counterpart's signing key the agreement names (or reached
// from it by signed rotations), pins it on first use, and refuses every
// substitution; the server refuses key registrations whose sealing key is
// not signed.
func TestAttackSealingKeySubstitution(t *testing.T) {
	s := Start(t)
	alpha, bravo := s.NewParty(t, "alpha"), s.NewParty(t, "bravo")
	d := Document(t, alpha, bravo, nil)
	Activate(t, alpha, bravo, d)
	mallory, err := agreement.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}

	// Registration: an unsigned sealing key, or someone else's, is refused.
	_, eveToken, err := s.Srv.Parties.Create(ctx, "eve")
	if err != nil {
		t.Fatal(err)
	}
	eve, err := client.New(s.URL+"/taxii2/", client.WithToken(eveToken))
	if err != nil {
		t.Fatal(err)
	}
	eveKeys, _ := agreement.GenerateKeys()
	unsigned := eveKeys.Public()
	unsigned.SealingSig = nil
	wantAPIError(t, "registering an unsigned sealing key", eve.RegisterKeys(ctx, unsigned), http.StatusBadRequest, "invalid", "not signed by its signing key")
	borrowed := eveKeys.Public()
	borrowed.SealingRecipient = mallory.Public().SealingRecipient
	wantAPIError(t, "registering a sealing key signed for another", eve.RegisterKeys(ctx, borrowed), http.StatusBadRequest, "invalid", "not signed by key")
	if err := eve.RegisterKeys(ctx, eveKeys.Public()); err != nil {
		t.Fatalf("registering signed keys: %v", err)
	}

	kp := newKeyProxy(t, s)
	via, err := client.New(kp.URL+"/taxii2/", client.WithToken(alpha.Token))
	if err != nil {
		t.Fatal(err)
	}
	pins := client.PinFile(filepath.Join(t.TempDir(), "sealing-keys.json"))
	bravoKeys := "/api/v1/parties/" + bravo.ID + "/keys"
	onKeys := func(f func(keys []any)) func(string, map[string]any) {
		return func(path string, m map[string]any) {
			if path == bravoKeys {
				ks, _ := m["keys"].([]any)
				f(ks)
				m["keys"] = ks
			}
		}
	}
	current := func(ks []any) map[string]any { return ks[len(ks)-1].(map[string]any)["keys"].(map[string]any) }
	malloryRec := publicJSON(t, mallory.Public())
	forged, err := agreement.RotateKeys(mallory, bravo.ID, mallory.Public(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged.OldKeyID = bravo.Keys.KeyID()

	attacks := []struct {
		name, mention string
		rewrite       func(string, map[string]any)
	}{
		{"sealing recipient swapped", "is not signed by key", onKeys(func(ks []any) {
			current(ks)["sealing_recipient"] = mallory.Public().SealingRecipient
		})},
		{"sealing signature stripped", "sealing_sig missing", onKeys(func(ks []any) {
			delete(current(ks), "sealing_sig")
		})},
		{"the whole key set replaced", "not the key " + bravo.Keys.KeyID(), onKeys(func(ks []any) {
			ks[len(ks)-1].(map[string]any)["keys"] = malloryRec
		})},
		{"a forged rotation to the attacker's keys", "not the key " + bravo.Keys.KeyID(), func(path string, m map[string]any) {
			if path != bravoKeys {
				return
			}
			ks := m["keys"].([]any)
			now := time.Now().UTC().Format(time.RFC3339Nano)
			ks[len(ks)-1].(map[string]any)["valid_until"] = now
			rot, _ := json.Marshal(forged)
			m["keys"] = append(ks, map[string]any{"keys": malloryRec, "valid_from": now, "rotation": json.RawMessage(rot)})
		}},
		{"the agreement's key id swapped too", "not the document you signed", func(path string, m map[string]any) {
			if path == bravoKeys {
				ks := m["keys"].([]any)
				ks[len(ks)-1].(map[string]any)["keys"] = malloryRec
			}
			if strings.HasPrefix(path, "/api/v1/agreements/") {
				doc := m["document"].(map[string]any)
				for _, p := range doc["parties"].([]any) {
					if p := p.(map[string]any); p["party_id"] == bravo.ID {
						p["key_id"] = mallory.KeyID()
					}
				}
			}
		}},
	}
	for _, a := range attacks {
		kp.rewrite = a.rewrite
		_, err := via.SealingRecipient(ctx, d.ID, bravo.ID, alpha.Keys, pins)
		if !errors.Is(err, client.ErrSealingKey) || !strings.Contains(err.Error(), a.mention) {
			t.Fatalf("%s: %v; want ErrSealingKey mentioning %q", a.name, err, a.mention)
		}
		if _, ok, _ := pins.Pinned(bravo.ID); ok {
			t.Fatalf("%s: a refused key was pinned", a.name)
		}
	}

	// Honest answers: bravo's key is accepted and pinned, and what alpha
	// seals to it only bravo opens.
	kp.rewrite = nil
	rcpt, err := via.SealingRecipient(ctx, d.ID, bravo.ID, alpha.Keys, pins)
	if err != nil || rcpt != bravo.Keys.Public().SealingRecipient {
		t.Fatalf("honest key: %q, %v", rcpt, err)
	}
	if pin, ok, _ := pins.Pinned(bravo.ID); !ok || pin.KeyID != bravo.Keys.KeyID() {
		t.Fatalf("pin after first use: %+v %v", pin, ok)
	}

	// bravo rotates its keys, signed by the old ones: accepted, pin moves.
	newKeys, _ := agreement.GenerateKeys()
	rot, err := agreement.RotateKeys(bravo.Keys, bravo.ID, newKeys.Public(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := bravo.C.RotateKeys(ctx, rot); err != nil {
		t.Fatalf("rotation: %v", err)
	}
	if rcpt, err := via.SealingRecipient(ctx, d.ID, bravo.ID, alpha.Keys, pins); err != nil || rcpt != newKeys.Public().SealingRecipient {
		t.Fatalf("after a signed rotation: %q, %v", rcpt, err)
	}
	// Rolled back to the old key (as if the rotation never happened), the
	// server contradicts the pin.
	kp.rewrite = func(path string, m map[string]any) {
		if path == bravoKeys {
			ks := m["keys"].([]any)
			old := ks[0].(map[string]any)
			delete(old, "valid_until")
			m["keys"] = []any{old}
		}
	}
	if _, err := via.SealingRecipient(ctx, d.ID, bravo.ID, alpha.Keys, pins); !errors.Is(err, client.ErrSealingKey) || !strings.Contains(err.Error(), "pinned") {
		t.Fatalf("rolled-back key: %v; want ErrSealingKey naming the pin", err)
	}
}

// TestAttackFalseDeposit: a party seals, as its half, a valid bundle that
// is not the dossier it promised. The server cannot see inside; but the
// depositor had to sign a manifest of what it hands over, the recipient's
// client finds that the opened deposit does not match it, and files a
// signed dispute that both sides see beside the manifest: the
// depositor's own signature proves the false deposit afterwards. The
// server refuses manifests it can check are false or not the depositor's.
func TestAttackFalseDeposit(t *testing.T) {
	s := Start(t)
	honest, cheat := s.NewParty(t, "honest"), s.NewParty(t, "cheat")
	d := Document(t, honest, cheat, nil)
	Activate(t, honest, cheat, d)
	h := OpenCase(t, honest, cheat, d.ID, time.Time{})

	promised := Bundle(Indicator(1, ""), Indicator(2, ""), Indicator(3, ""))
	delivered := Bundle(Indicator(1, ""), Indicator(70, ""), Indicator(71, ""))
	ct, sum, err := client.Seal(delivered, honest.Keys.Public().SealingRecipient)
	if err != nil {
		t.Fatal(err)
	}
	manifestFor := func(k *agreement.PrivateKeys, depositor string, bundle, content []byte) []byte {
		t.Helper()
		m, err := client.SignedManifest(k, h.ID, depositor, bundle, content)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	other := s.NewParty(t, "other")
	refused := []struct {
		name, mention string
		manifest      []byte
	}{
		{"a manifest of other bytes", "not the", manifestFor(cheat.Keys, cheat.ID, promised, promised)},
		{"a manifest signed by another key", "not signed by your current key", manifestFor(other.Keys, cheat.ID, promised, ct)},
		{"a manifest naming another depositor", "names depositor", manifestFor(cheat.Keys, honest.ID, promised, ct)},
		{"not JSON", "not JSON", []byte("{")},
	}
	for _, r := range refused {
		_, err := cheat.C.DepositSealed(ctx, h.ID, ct, sum, client.DepositOptions{Manifest: r.manifest})
		wantAPIError(t, r.name, err, http.StatusBadRequest, "invalid", r.mention)
	}
	// A plain deposit's manifest the server checks against the bundle.
	_, err = cheat.C.Deposit(ctx, h.ID, delivered, client.DepositOptions{Manifest: manifestFor(cheat.Keys, cheat.ID, promised, delivered)})
	wantAPIError(t, "a plain bundle not matching its manifest", err, http.StatusBadRequest, "invalid", "does not describe the bundle")

	// The false sealed deposit, with a manifest of the promised dossier.
	lie := manifestFor(cheat.Keys, cheat.ID, promised, ct)
	if _, err := cheat.C.DepositSealed(ctx, h.ID, ct, sum, client.DepositOptions{Manifest: lie}); err != nil {
		t.Fatalf("sealed deposit with a manifest: %v", err)
	}
	mine := Bundle(Indicator(9, ""))
	if res, err := honest.C.Deposit(ctx, h.ID, mine, client.DepositOptions{Manifest: manifestFor(honest.Keys, honest.ID, mine, mine)}); err != nil || !res.Released {
		t.Fatalf("honest deposit: %+v, %v", res, err)
	}

	// The recipient opens it and holds it to the manifest.
	got, err := honest.C.FetchDeposit(ctx, h.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := client.Unseal(got.Content, honest.Keys.Sealing)
	if err != nil {
		t.Fatal(err)
	}
	view, err := honest.C.Handover(ctx, h.ID)
	if err != nil {
		t.Fatal(err)
	}
	m, mismatch := honest.C.CheckDeposit(ctx, view, got, plain)
	if !errors.Is(mismatch, client.ErrManifestMismatch) || !strings.Contains(mismatch.Error(), "object contents differ") || m == nil {
		t.Fatalf("CheckDeposit = %v; want ErrManifestMismatch on the contents", mismatch)
	}
	// The cheat's own deposit as seen by the cheat matches nothing false
	// on the honest side: the honest deposit checks out.
	theirs, err := cheat.C.FetchDeposit(ctx, h.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cheat.C.CheckDeposit(ctx, view, theirs, theirs.Content); err != nil {
		t.Fatalf("the honest deposit against its manifest: %v", err)
	}

	// A signed dispute: a forged one is refused, the real one recorded.
	observed, err := agreement.SummarizeBundle(plain)
	if err != nil {
		t.Fatal(err)
	}
	st := agreement.Dispute{Handover: h.ID, Depositor: cheat.ID, Disputer: honest.ID, Reason: mismatch.Error(),
		ManifestSHA256: agreement.ManifestRef(*m), Observed: &observed, SignedAt: time.Now().UTC()}
	forged, _ := agreement.SignDispute(other.Keys, st)
	_, err = honest.C.DisputeHandoverSigned(ctx, forged)
	wantAPIError(t, "a dispute signed by another key", err, http.StatusBadRequest, "invalid", "not signed by your current key")
	signed, err := agreement.SignDispute(honest.Keys, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := honest.C.DisputeHandoverSigned(ctx, signed); err != nil {
		t.Fatalf("signed dispute: %v", err)
	}

	// Both sides see the manifest and the signed dispute, and anyone
	// holding the depositor's key can check both signatures.
	for _, p := range []*Party{honest, cheat} {
		v, err := p.C.Handover(ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(v.Deposits, func(dep client.HandoverDeposit) bool {
			return dep.Party == cheat.ID
		})
		if i < 0 {
			t.Fatalf("%s does not see the cheat's deposit", p.Name)
		}
		dep := v.Deposits[i]
		var gm agreement.Manifest
		var gd agreement.Dispute
		if json.Unmarshal(dep.Manifest, &gm) != nil || json.Unmarshal(dep.DisputeStatement, &gd) != nil || dep.Dispute != st.Reason {
			t.Fatalf("%s sees deposit %+v; want the manifest and the signed dispute", p.Name, dep)
		}
		if err := agreement.VerifyManifest(cheat.Keys.Public(), gm); err != nil || gm.Fingerprints == observed.Fingerprints {
			t.Fatalf("%s: the cheat's manifest: %v (fingerprints %s)", p.Name, err, gm.Fingerprints)
		}
		if err := agreement.VerifyDispute(honest.Keys.Public(), gd); err != nil || gd.ManifestSHA256 != agreement.ManifestRef(gm) {
			t.Fatalf("%s: the dispute: %v", p.Name, err)
		}
	}
	if got := kinds(events(t, cheat), h.ID); !slices.Contains(got, escrow.EventDisputed) {
		t.Fatalf("the cheat was not told of the dispute: %v", got)
	}
}
