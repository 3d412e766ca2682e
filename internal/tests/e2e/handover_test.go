package e2e

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/exchange"
)

const tlpRed = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"

// Bundle wraps objects in a STIX bundle.
func Bundle(objs ...json.RawMessage) []byte {
	b, _ := json.Marshal(map[string]any{"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000001", "objects": objs})
	return b
}

// wantAPIError fails unless err is an API error with this status (and, when
// given, this code), naming what was wrong.
func wantAPIError(t *testing.T, what string, err error, status int, code, mention string) {
	t.Helper()
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != status || (code != "" && ae.Code != code) || !strings.Contains(ae.Message, mention) {
		t.Fatalf("%s: %v; want HTTP %d %s mentioning %q", what, err, status, code, mention)
	}
}

// OpenCase has a propose and b accept a case under agreement ag.
func OpenCase(t testing.TB, a, b *Party, ag string, deadline time.Time) *client.Handover {
	t.Helper()
	h, err := a.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: ag, Delivers: "dossier on suspect X", Expects: "dossier on suspect Y", Deadline: deadline})
	if err != nil {
		t.Fatalf("propose: %v", err)
	}
	if h, err = b.C.AcceptHandover(ctx, h.ID); err != nil || h.State != "accepted" {
		t.Fatalf("accept: %+v, %v", h, err)
	}
	return h
}

// events returns p's stored events after seq 0.
func events(t testing.TB, p *Party) []client.Event {
	t.Helper()
	var out []client.Event
	if err := p.C.Events(ctx, 0, false, func(e client.Event) error { out = append(out, e); return nil }); err != nil {
		t.Fatalf("%s's events: %v", p.Name, err)
	}
	return out
}

func kinds(evs []client.Event, subject string) []string {
	var out []string
	for _, e := range evs {
		if e.Subject == subject {
			out = append(out, e.Kind)
		}
	}
	return out
}

func TestPlainHandover(t *testing.T) {
	s := Start(t)
	a, b, c := s.NewParty(t, "alpha"), s.NewParty(t, "bravo"), s.NewParty(t, "charlie")
	d := Document(t, a, b, nil)
	Activate(t, a, b, d)
	other := Document(t, a, c, nil)
	Activate(t, a, c, other)

	h, err := a.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: d.ID, Delivers: "X", Expects: "Y", Deadline: time.Now().Add(100 * time.Hour)})
	wantAPIError(t, "deadline beyond the escrow deadline", err, http.StatusBadRequest, "invalid", "escrow deadline")
	_, err = c.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: d.ID, Delivers: "X", Expects: "Y"})
	wantAPIError(t, "proposal under someone else's agreement", err, http.StatusNotFound, "not_found", "")
	h, err = a.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: d.ID, Delivers: "X", Expects: "Y"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.C.Deposit(ctx, h.ID, Bundle(Indicator(1, "")), client.DepositOptions{})
	wantAPIError(t, "deposit before acceptance", err, http.StatusConflict, "conflict", "not been accepted")
	_, err = a.C.AcceptHandover(ctx, h.ID)
	wantAPIError(t, "proposer accepting", err, http.StatusForbidden, "forbidden", "counterpart")
	if _, err := b.C.AcceptHandover(ctx, h.ID); err != nil {
		t.Fatal(err)
	}

	mine := Bundle(Indicator(1, ""), Indicator(2, ""))
	res, err := a.C.Deposit(ctx, h.ID, mine, client.DepositOptions{Agreement: d.ID})
	if err != nil || res.Released || res.Objects != 2 || res.Receipt < 0 {
		t.Fatalf("first deposit: %+v, %v", res, err)
	}
	// Bad input, each refused with the case unchanged.
	_, err = a.C.Deposit(ctx, h.ID, mine, client.DepositOptions{})
	wantAPIError(t, "depositing twice", err, http.StatusConflict, "conflict", "already deposited")
	_, err = c.C.Deposit(ctx, h.ID, mine, client.DepositOptions{})
	wantAPIError(t, "deposit by a third party", err, http.StatusNotFound, "not_found", "")
	_, err = b.C.Deposit(ctx, h.ID, Bundle(Indicator(3, "")), client.DepositOptions{Agreement: other.ID})
	wantAPIError(t, "deposit naming another agreement", err, http.StatusBadRequest, "invalid", "not "+other.ID)
	_, err = b.C.Deposit(ctx, h.ID, Bundle(Indicator(3, ""), Indicator(4, tlpRed)), client.DepositOptions{})
	wantAPIError(t, "out-of-scope deposit", err, http.StatusBadRequest, "invalid", "indicator--00000000-0000-4000-8000-000000000004")
	_, err = b.C.Deposit(ctx, h.ID, []byte(`{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000001","objects":[{"type":"indicator"}]}`), client.DepositOptions{})
	wantAPIError(t, "invalid bundle", err, http.StatusBadRequest, "invalid", "objects[0]")
	_, err = b.C.FetchDeposit(ctx, h.ID, "")
	wantAPIError(t, "fetching before release", err, http.StatusConflict, "conflict", "released")
	if got, err := a.C.Handover(ctx, h.ID); err != nil || got.State != "accepted" || len(got.Deposits) != 1 {
		t.Fatalf("case after refused deposits: %+v, %v", got, err)
	}

	theirs := Bundle(Indicator(5, ""), Indicator(6, ""), Indicator(7, ""))
	res, err = b.C.Deposit(ctx, h.ID, theirs, client.DepositOptions{})
	if err != nil || !res.Released || res.Handover.State != "released" {
		t.Fatalf("second deposit: %+v, %v", res, err)
	}
	_, err = a.C.Withdraw(ctx, h.ID)
	wantAPIError(t, "withdrawing after release", err, http.StatusConflict, "conflict", "released")
	for _, tc := range []struct {
		p    *Party
		want []byte
		from string
	}{{a, theirs, b.ID}, {b, mine, a.ID}} {
		got, err := tc.p.C.FetchDeposit(ctx, h.ID, "")
		if err != nil || got.Sealed || string(got.Content) != string(tc.want) || got.Depositor != tc.from {
			t.Fatalf("%s fetching: %+v, %v", tc.p.Name, got, err)
		}
	}
	// The plain objects are readable over TAXII in the recipient's
	// "handed over" collection, and only there.
	for _, tc := range []struct {
		p    *Party
		want []string
	}{{a, []string{"indicator--00000000-0000-4000-8000-000000000005", "indicator--00000000-0000-4000-8000-000000000006", "indicator--00000000-0000-4000-8000-000000000007"}},
		{b, []string{"indicator--00000000-0000-4000-8000-000000000001", "indicator--00000000-0000-4000-8000-000000000002"}}} {
		cs, err := tc.p.C.Collections(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, col := range cs {
			if strings.HasPrefix(col.Title, exchange.HandoverCollectionTitle) {
				if col.CanWrite {
					t.Fatalf("%s may write its handover collection", tc.p.Name)
				}
				got = append(got, ReadAll(t, tc.p, d.ID, col.ID, 100)...)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Fatalf("%s's handed-over objects = %v, want %v", tc.p.Name, got, tc.want)
		}
	}
	if got := kinds(events(t, a), h.ID); !slices.Equal(got, []string{escrow.EventAccepted, escrow.EventDeposited, escrow.EventReleased}) {
		t.Fatalf("alpha's events = %v", got)
	}
	if got := kinds(events(t, b), h.ID); !slices.Equal(got, []string{escrow.EventProposed, escrow.EventDeposited, escrow.EventReleased}) {
		t.Fatalf("bravo's events = %v", got)
	}
	// Resuming after an event id returns only what follows it.
	all := events(t, b)
	var resumed []int64
	if err := b.C.Events(ctx, all[0].Seq, false, func(e client.Event) error { resumed = append(resumed, e.Seq); return nil }); err != nil || len(resumed) != len(all)-1 || resumed[0] != all[1].Seq {
		t.Fatalf("resumed after %d: %v, %v", all[0].Seq, resumed, err)
	}
	if list, err := c.C.Handovers(ctx, ""); err != nil || len(list) != 0 {
		t.Fatalf("a third party lists %+v, %v", list, err)
	}
}

func TestSealedHandover(t *testing.T) {
	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "bravo")
	d := Document(t, a, b, nil)
	Activate(t, a, b, d)
	h := OpenCase(t, a, b, d.ID, time.Time{})

	mine := Bundle(Indicator(1, ""))
	ct, sum, err := client.Seal(mine, b.Keys.Public().SealingRecipient)
	if err != nil {
		t.Fatal(err)
	}
	wrong := strings.Repeat("0", 64)
	_, err = a.C.DepositSealed(ctx, h.ID, ct, wrong, client.DepositOptions{})
	wantAPIError(t, "ciphertext not matching its hash", err, http.StatusBadRequest, "hash_mismatch", "stated")
	_, err = a.C.DepositSealed(ctx, h.ID, mine, fmt.Sprintf("%x", sha256.Sum256(mine)), client.DepositOptions{})
	wantAPIError(t, "plaintext sent as sealed", err, http.StatusBadRequest, "invalid", "not a well-formed age file")
	if res, err := a.C.DepositSealed(ctx, h.ID, ct, sum, client.DepositOptions{}); err != nil || res.Released || res.SHA256 != sum {
		t.Fatalf("sealed deposit: %+v, %v", res, err)
	}
	theirs := Bundle(Indicator(2, ""))
	ct2, sum2, err := client.Seal(theirs, a.Keys.Public().SealingRecipient)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := b.C.DepositSealed(ctx, h.ID, ct2, sum2, client.DepositOptions{}); err != nil || !res.Released {
		t.Fatalf("second sealed deposit: %+v, %v", res, err)
	}
	got, err := b.C.FetchDeposit(ctx, h.ID, "")
	if err != nil || !got.Sealed || got.SHA256 != sum {
		t.Fatalf("bravo fetching: %+v, %v", got, err)
	}
	plain, err := client.Unseal(got.Content, b.Keys.Sealing)
	if err != nil || string(plain) != string(mine) {
		t.Fatalf("bravo decrypting with its key: %q, %v", plain, err)
	}
	if _, err := escrow.ParseBundle(plain); err != nil {
		t.Fatalf("decrypted bundle: %v", err)
	}
	stranger, _ := age.GenerateX25519Identity()
	for name, id := range map[string]age.Identity{"alpha's key": a.Keys.Sealing, "a stranger's key": stranger} {
		if _, err := client.Unseal(got.Content, id); err == nil {
			t.Fatalf("decrypting with %s succeeded", name)
		}
	}
	if _, err := b.C.DisputeHandover(ctx, h.ID, "the dossier names the wrong suspect"); err != nil {
		t.Fatal(err)
	}
	_, err = b.C.DisputeHandover(ctx, h.ID, "again")
	wantAPIError(t, "disputing twice", err, http.StatusConflict, "conflict", "already disputed")
	view, err := a.C.Handover(ctx, h.ID)
	if err != nil || len(view.Deposits) != 2 {
		t.Fatalf("show: %+v, %v", view, err)
	}
	for _, dep := range view.Deposits {
		if (dep.Party == a.ID) != (dep.Dispute != "") || !dep.Sealed {
			t.Fatalf("deposit %+v: only alpha's should be disputed, both sealed", dep)
		}
	}
	if got := kinds(events(t, a), h.ID); !slices.Contains(got, escrow.EventDisputed) {
		t.Fatalf("alpha was not told of the dispute: %v", got)
	}
}

func TestHandoverWithdrawalAndExpiry(t *testing.T) {
	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "bravo")
	d := Document(t, a, b, nil)
	Activate(t, a, b, d)

	declined, err := a.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: d.ID, Delivers: "X", Expects: "Y"})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := b.C.DeclineHandover(ctx, declined.ID); err != nil || h.State != "declined" {
		t.Fatalf("decline: %+v, %v", h, err)
	}
	_, err = a.C.Deposit(ctx, declined.ID, Bundle(Indicator(1, "")), client.DepositOptions{})
	wantAPIError(t, "deposit in a declined case", err, http.StatusConflict, "conflict", "declined")

	h := OpenCase(t, a, b, d.ID, time.Now().Add(3*time.Second))
	mine := Bundle(Indicator(1, ""))
	if _, err := a.C.Deposit(ctx, h.ID, mine, client.DepositOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.C.Withdraw(ctx, h.ID); err != nil {
		t.Fatalf("withdraw: %v", err)
	}
	_, err = a.C.FetchDeposit(ctx, h.ID, a.ID)
	wantAPIError(t, "fetching a withdrawn deposit", err, http.StatusNotFound, "not_found", "")
	_, err = a.C.Withdraw(ctx, h.ID)
	wantAPIError(t, "withdrawing nothing", err, http.StatusConflict, "conflict", "no deposit")
	if _, err := a.C.Deposit(ctx, h.ID, mine, client.DepositOptions{}); err != nil {
		t.Fatalf("deposit again after withdrawing: %v", err)
	}
	if got := kinds(events(t, b), h.ID); slices.Index(got, escrow.EventWithdrawn) < 0 || len(got) < 4 {
		t.Fatalf("bravo's events = %v; want the deposit, the withdrawal and the new deposit", got)
	}

	// The sweeper expires the case after its deadline and destroys the deposit.
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := a.C.Handover(ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == "expired" {
			if len(got.Deposits) != 0 {
				t.Fatalf("expired case still holds deposits: %+v", got.Deposits)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("case not expired: %+v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, err = b.C.Deposit(ctx, h.ID, Bundle(Indicator(2, "")), client.DepositOptions{})
	wantAPIError(t, "deposit after expiry", err, http.StatusConflict, "deadline_passed", "expired")
	_, err = a.C.FetchDeposit(ctx, h.ID, a.ID)
	wantAPIError(t, "fetching a destroyed deposit", err, http.StatusNotFound, "not_found", "")
	var told bool
	for _, e := range events(t, a) {
		if e.Subject == h.ID && e.Kind == escrow.EventExpired {
			var data struct {
				Destroyed bool `json:"your_deposit_destroyed"`
			}
			json.Unmarshal(e.Data, &data)
			told = data.Destroyed
		}
	}
	if !told {
		t.Fatal("the depositor was not told its deposit was destroyed")
	}
	if !slices.Contains(kinds(events(t, b), h.ID), escrow.EventDeadlineNear) {
		t.Fatal("no deadline-near event before expiry")
	}
}
