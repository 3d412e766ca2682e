package demo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/audit"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/psi"
)

// Operator is what the demo needs of the server it runs on: creating
// parties as an operator would with `parley party add`.
type Operator interface {
	CreateParty(ctx context.Context, name string) (id, token string, err error)
}

// PartyService adapts party.Service to Operator.
type PartyService struct{ S *party.Service }

// CreateParty creates a party and returns its id and first token.
func (p PartyService) CreateParty(ctx context.Context, name string) (string, string, error) {
	pt, tok, err := p.S.Create(ctx, name)
	return pt.ID, tok, err
}

// Member is one party of the demo.
type Member struct {
	Name, ID, Token string
	Keys            *agreement.PrivateKeys
	C               *client.Client
	Crew            *Crew
}

// Result is what the demo did, for its test and the closing summary.
type Result struct {
	A, B          *Member
	Agreement     string
	ReadByB       []int // what B could read after each step
	ReadByA       int
	LedgerSize    int64
	LedgerRoot    string
	ReceiptsOK    int
	RequestState  string
	HandoverState string
	Unsealed      int // objects B decrypted from A's sealed deposit
	MatchedA      []string
	MatchedB      []string
	IndicatorsA   int
	IndicatorsB   int
	BalanceA      *client.Balance
	BalanceB      *client.Balance
	CheckpointKey string
}

// Run plays the exchange against the server at baseURL, printing in plain
// language what happens.
func Run(ctx context.Context, op Operator, baseURL string, out io.Writer) (*Result, error) {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	now := time.Now().UTC()
	res := &Result{}
	mk := func(name string, seed uint64, n int) (*Member, error) {
		id, tok, err := op.CreateParty(ctx, name)
		if err != nil {
			return nil, err
		}
		c, err := client.New(strings.TrimSuffix(baseURL, "/")+"/taxii2/", client.WithToken(tok))
		if err != nil {
			return nil, err
		}
		keys, err := agreement.GenerateKeys()
		if err != nil {
			return nil, err
		}
		if err := c.RegisterKeys(ctx, keys.Public()); err != nil {
			return nil, err
		}
		return &Member{Name: name, ID: id, Token: tok, Keys: keys, C: c, Crew: GenerateCrew(seed, name, n, now)}, nil
	}
	say("parley demo: two parties exchange intelligence on the ransomware crew \"Black Lantern\".")
	say("")
	a, err := mk("CERT-Nordland", 1, 240)
	if err != nil {
		return nil, err
	}
	b, err := mk("Police-Suedmark", 2, 160)
	if err != nil {
		return nil, err
	}
	res.A, res.B = a, b
	res.IndicatorsA, res.IndicatorsB = a.Crew.Indicators, b.Crew.Indicators
	say("1. The operator registered two parties; each made its own signing and sealing keys:")
	say("   %s (key %s) and %s (key %s).", a.Name, a.Keys.KeyID(), b.Name, b.Keys.KeyID())

	doc, err := agreementDoc(a, b, now)
	if err != nil {
		return nil, err
	}
	sign := func(m *Member, action agreement.Action) (agreement.Signature, error) {
		return agreement.Sign(m.Keys, agreement.StatementFor(doc, action, m.ID, m.Keys.KeyID(), time.Now()))
	}
	ps, err := sign(a, agreement.ActionPropose)
	if err != nil {
		return nil, err
	}
	if _, err := a.C.Propose(ctx, doc, ps); err != nil {
		return nil, fmt.Errorf("propose: %w", err)
	}
	cs, err := sign(b, agreement.ActionCountersign)
	if err != nil {
		return nil, err
	}
	ag, err := b.C.Sign(ctx, cs)
	if err != nil {
		return nil, fmt.Errorf("countersign: %w", err)
	}
	res.Agreement = ag.ID
	say("2. %s proposed an agreement and %s countersigned the same bytes (Ed25519 over RFC 8785 JSON).", a.Name, b.Name)
	say("   Scope: indicators, malware, actors, infrastructure up to TLP:AMBER. Terms: 1:1, a grace of 20 objects.")
	say("   Agreement %s is %s.", ag.ID, ag.Phase)

	aOwn, err := ag.CollectionOf(a.ID, true)
	if err != nil {
		return nil, err
	}
	full, err := b.C.Agreement(ctx, ag.ID)
	if err != nil {
		return nil, err
	}
	bOwn, err := full.CollectionOf(b.ID, true)
	if err != nil {
		return nil, err
	}
	bTheirs, err := full.CollectionOf(b.ID, false)
	if err != nil {
		return nil, err
	}
	aTheirs := bOwn

	var receipts []int64
	push := func(m *Member, coll string, objs []json.RawMessage) (*client.Status, error) {
		st, err := m.C.AddObjects(ctx, ag.ID, coll, objs)
		return st, err
	}
	count := func(m *Member, coll string) (int, error) {
		n := 0
		for _, err := range m.C.AllObjects(ctx, ag.ID, coll, client.Filter{Limit: 100}) {
			if err != nil {
				return 0, err
			}
			n++
		}
		return n, nil
	}
	st, err := push(a, aOwn, a.Crew.Objects)
	if err != nil {
		return nil, fmt.Errorf("%s publishes: %w", a.Name, err)
	}
	if st.FailureCount > 0 {
		return nil, fmt.Errorf("%s's dossier: %d objects refused, first: %s", a.Name, st.FailureCount, st.Failures[0].Message)
	}
	say("3. %s published its dossier over TAXII 2.1: %d objects (%d indicators), all accepted.", a.Name, len(a.Crew.Objects), a.Crew.Indicators)
	n, err := count(b, bTheirs)
	if err != nil {
		return nil, err
	}
	res.ReadByB = append(res.ReadByB, n)
	say("   %s has given nothing yet, so it can read only the grace: %d objects.", b.Name, n)

	half := len(b.Crew.Objects) / 2
	if _, err := push(b, bOwn, b.Crew.Objects[:half]); err != nil {
		return nil, fmt.Errorf("%s publishes: %w", b.Name, err)
	}
	n, err = count(b, bTheirs)
	if err != nil {
		return nil, err
	}
	res.ReadByB = append(res.ReadByB, n)
	say("4. %s published %d objects of its own; give-to-get now releases %d of %s's objects to it.", b.Name, half, n, a.Name)
	if _, err := push(b, bOwn, b.Crew.Objects[half:]); err != nil {
		return nil, err
	}
	// Re-sending what it already gave earns nothing.
	if _, err := push(b, bOwn, b.Crew.Objects[:10]); err != nil {
		return nil, err
	}
	n, err = count(b, bTheirs)
	if err != nil {
		return nil, err
	}
	res.ReadByB = append(res.ReadByB, n)
	if res.ReadByA, err = count(a, aTheirs); err != nil {
		return nil, err
	}
	if res.BalanceA, err = a.C.Balance(ctx, ag.ID); err != nil {
		return nil, err
	}
	if res.BalanceB, err = b.C.Balance(ctx, ag.ID); err != nil {
		return nil, err
	}
	say("   After the rest of its dossier (and a re-sent batch, which earns nothing): %s reads %d, %s reads %d.", b.Name, n, a.Name, res.ReadByA)
	say("   Balances: %s gave %d new objects, may read %d; %s gave %d, may read %d.",
		a.Name, res.BalanceA.Contributed, res.BalanceA.Released, b.Name, res.BalanceB.Contributed, res.BalanceB.Released)

	last, err := caseWork(ctx, a, b, ag.ID, res, say)
	if err != nil {
		return nil, err
	}

	// The ledger: every signature and batch above is an entry; check a
	// signed checkpoint and our receipts as `parley verify` does.
	lc := &audit.LedgerClient{BaseURL: strings.TrimSuffix(baseURL, "/") + "/ledger", HTTP: &http.Client{Transport: bearer{b.Token}}}
	key, err := fetchKey(ctx, lc.HTTP, strings.TrimSuffix(baseURL, "/")+"/ledger/key")
	if err != nil {
		return nil, err
	}
	res.CheckpointKey = key
	if ag.LedgerIndex != nil {
		receipts = append(receipts, *ag.LedgerIndex)
	}
	receipts = append(receipts, last)
	v, err := ledger.NewVerifier(key, "")
	if err != nil {
		return nil, err
	}
	var cp ledger.Checkpoint
	for i := 0; ; i++ {
		cp, err = v.Update(ctx, lc)
		if err == nil && cp.Size > receipts[len(receipts)-1] {
			break
		}
		if i == 100 {
			return nil, fmt.Errorf("no checkpoint covering the demo's entries after 10 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	entries, err := lc.Entries(ctx, 0, cp.Size)
	if err != nil {
		return nil, err
	}
	var rs []ledger.Receipt
	for i, e := range entries {
		rs = append(rs, ledger.ReceiptFor(int64(i), e))
	}
	if err := v.CheckReceipts(ctx, lc, rs); err != nil {
		return nil, fmt.Errorf("ledger check: %w", err)
	}
	res.LedgerSize, res.LedgerRoot, res.ReceiptsOK = cp.Size, cp.Hash.String(), len(rs)
	say("8. The ledger holds %d entries (signatures, feed batches, releases, the request, the handovers).", cp.Size)
	say("   Checkpoint signed by %s,", cp.Origin)
	say("   root %s; %s verified the signature and the inclusion of all %d entries.", cp.Hash, b.Name, len(rs))
	return res, nil
}

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func fetchKey(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetching the ledger key: %s %v", resp.Status, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func agreementDoc(a, b *Member, now time.Time) (*agreement.Document, error) {
	m := map[string]any{
		"schema_version": agreement.SchemaVersion, "id": agreement.NewID(), "version": 1,
		"parties": []map[string]any{
			{"party_id": a.ID, "name": a.Name, "key_id": a.Keys.KeyID()},
			{"party_id": b.ID, "name": b.Name, "key_id": b.Keys.KeyID()},
		},
		"scope": map[string]any{"types": []string{"identity", "threat-actor", "intrusion-set", "malware", "infrastructure", "indicator", "relationship"},
			"max_tlp": "amber", "unmarked": "refuse"},
		"reciprocity":        map[string]any{"ratio": "1:1", "grace": 20},
		"escrow_deadline":    "72h",
		"request_deadlines":  map[string]any{"acknowledge": "24h", "fulfil": "168h"},
		"not_before":         now.Add(-time.Minute).Format(time.RFC3339),
		"not_after":          now.Add(365 * 24 * time.Hour).Format(time.RFC3339),
		"termination_notice": "720h",
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return agreement.ParseDocument(raw)
}

// caseWork plays a request answered through a sealed handover, then a
// private match of wanted lists.
//
// It returns the ledger index of the handover's release, the latest entry
// the demo knows of.
func caseWork(ctx context.Context, a, b *Member, agreementID string, res *Result, say func(string, ...any)) (int64, error) {
	// 5. B asks A for something specific, under the agreement's deadlines.
	req, err := b.C.FileRequest(ctx, client.NewRequest{Agreement: agreementID, Urgency: "high",
		Subject: "Ransom wallets and negotiator handles of the Black Lantern affiliate 'NightOwl'",
		Reason:  "victim negotiation in an open case"})
	if err != nil {
		return 0, fmt.Errorf("file request: %w", err)
	}
	if _, err := a.C.AckRequest(ctx, req.ID); err != nil {
		return 0, fmt.Errorf("acknowledge: %w", err)
	}
	say("5. %s filed a request (%s); %s acknowledged it within the agreement's deadline.", b.Name, req.Subject, a.Name)

	// 6. A answers through a handover: each side delivers a dossier, and
	// the server releases both at once or neither. A seals its own to B's
	// registered key, so not even the server's operator can read it.
	h, err := a.C.ProposeHandover(ctx, client.HandoverProposal{Agreement: agreementID, Request: req.ID,
		Delivers: "dossier on affiliate NightOwl (sealed)", Expects: "server logs seized from the Lantern C2 cluster"})
	if err != nil {
		return 0, fmt.Errorf("propose handover: %w", err)
	}
	if _, err := b.C.AcceptHandover(ctx, h.ID); err != nil {
		return 0, fmt.Errorf("accept handover: %w", err)
	}
	// A seals only to a key B's signing key vouches for (finding 9).
	bRecipient, err := a.C.SealingRecipient(ctx, agreementID, b.ID, a.Keys, nil)
	if err != nil {
		return 0, err
	}
	dossierA := bundleOf(a.Crew.Objects[len(a.Crew.Objects)-30:])
	sealed, sum, err := client.Seal(dossierA, bRecipient)
	if err != nil {
		return 0, err
	}
	if _, err := a.C.DepositSealed(ctx, h.ID, sealed, sum, client.DepositOptions{Agreement: agreementID}); err != nil {
		return 0, fmt.Errorf("sealed deposit: %w", err)
	}
	dep, err := b.C.Deposit(ctx, h.ID, bundleOf(b.Crew.Objects[len(b.Crew.Objects)-20:]), client.DepositOptions{Agreement: agreementID})
	if err != nil {
		return 0, fmt.Errorf("plain deposit: %w", err)
	}
	if !dep.Released {
		return 0, fmt.Errorf("the second deposit did not release handover %s", h.ID)
	}
	got, err := b.C.FetchDeposit(ctx, h.ID, "")
	if err != nil {
		return 0, err
	}
	plain, err := client.Unseal(got.Content, b.Keys.Sealing)
	if err != nil {
		return 0, fmt.Errorf("unsealing A's dossier: %w", err)
	}
	var opened struct {
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(plain, &opened); err != nil {
		return 0, fmt.Errorf("A's dossier: %w", err)
	}
	res.Unsealed = len(opened.Objects)
	if _, err := a.C.FulfilRequest(ctx, req.ID, h.ID); err != nil {
		return 0, fmt.Errorf("fulfil: %w", err)
	}
	hv, err := b.C.Handover(ctx, h.ID)
	if err != nil {
		return 0, err
	}
	rv, err := b.C.Request(ctx, req.ID)
	if err != nil {
		return 0, err
	}
	res.HandoverState, res.RequestState = hv.State, rv.State
	say("6. %s proposed a handover answering it; both deposited (%s's sealed with age to %s's key, %d bytes of", a.Name, a.Name, b.Name, len(sealed))
	say("   ciphertext the server cannot read) and the second deposit released both in one transaction.")
	say("   %s decrypted %d objects with its own key; the request is %s.", b.Name, res.Unsealed, rv.State)

	// 7. Private matching: which of A's wanted identifiers does B hold?
	// Each side learns only the intersection; the server only the sizes.
	oa, ob, err := matchLists(ctx, a, b, agreementID)
	if err != nil {
		return 0, err
	}
	for _, it := range oa.Matched {
		res.MatchedA = append(res.MatchedA, it.Value)
	}
	for _, it := range ob.Matched {
		res.MatchedB = append(res.MatchedB, it.Value)
	}
	say("7. Private matching: %s's %d wanted identifiers against %s's %d (ECDH over X25519; the server saw",
		a.Name, oa.OwnCount, b.Name, oa.PeerCount)
	say("   only the two sizes). %s learned that %s holds %d of them: %s.", a.Name, b.Name, len(res.MatchedA), strings.Join(res.MatchedA, ", "))
	return hv.ReleaseLedgerIndex, nil
}

// bundleOf wraps objects in a STIX bundle.
func bundleOf(objs []json.RawMessage) []byte {
	b, err := json.Marshal(map[string]any{"type": "bundle", "id": "bundle--" + newUUID(), "objects": objs})
	if err != nil {
		panic(err) // raw JSON values: cannot fail
	}
	return b
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// matchLists runs a private matching session: a starts it under
// agreementID with its crew's wanted identifiers, b joins it with the
// identifiers it holds, once its own server has the session (between two
// nodes it reaches b's node through a's).
func matchLists(ctx context.Context, a, b *Member, agreementID string) (oa, ob *client.MatchOutcome, err error) {
	items := func(vals []string) func() iter.Seq[psi.Item] {
		return func() iter.Seq[psi.Item] {
			return func(yield func(psi.Item) bool) {
				for _, v := range vals {
					k, err := psi.DetectKind(v)
					if err != nil {
						k = psi.KindAlias
					}
					if !yield(psi.Item{Kind: k, Value: v}) {
						return
					}
				}
			}
		}
	}
	session := make(chan string, 1)
	type outcome struct {
		o   *client.MatchOutcome
		err error
	}
	bDone := make(chan outcome, 1)
	mctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	go func() {
		var sid string
		select {
		case sid = <-session:
		case <-mctx.Done():
			bDone <- outcome{nil, mctx.Err()}
			return
		}
		for {
			if _, err := b.C.Match(mctx, sid); err == nil {
				break
			}
			select {
			case <-mctx.Done():
				bDone <- outcome{nil, mctx.Err()}
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		o, err := b.C.RunMatch(mctx, client.MatchOptions{Session: sid, Items: items(b.Crew.Held), Identity: b.Keys.Sealing, Poll: 20 * time.Millisecond})
		bDone <- outcome{o, err}
	}()
	oa, err = a.C.RunMatch(mctx, client.MatchOptions{Agreement: agreementID, Items: items(a.Crew.Wanted), Identity: a.Keys.Sealing,
		Poll: 20 * time.Millisecond, OnSession: func(m client.Match) { session <- m.ID }})
	if err != nil {
		cancel()
		<-bDone
		return nil, nil, fmt.Errorf("private match (%s): %w", a.Name, err)
	}
	r := <-bDone
	if r.err != nil {
		return nil, nil, fmt.Errorf("private match (%s): %w", b.Name, r.err)
	}
	return oa, r.o, nil
}
