package crash

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/audit"
)

// harness is the state of one Run.
type harness struct {
	cfg                Config
	bin, data, logPath string
	log                *os.File
	rng                *rand.Rand // the main goroutine's
	sum                Summary
	m                  *model
	next               atomic.Int64 // object counter
	alpha, bravo       *partyState
	opColl             string
	ag                 agreementState
	vkey               string
	nv                 note.Verifier
	cpMu               sync.Mutex // guards led.handed (the reader adds to it)
	led                ledgerState
	versionsChecked    int
	statusesChecked    int
	sigsChecked        int
	handovers          []*handover // driven by one worker per life
}

// agreementState is the agreement the two parties exchange under.
type agreementState struct {
	id    string
	doc   *agreement.Document
	terms agreement.Terms
}

// Run builds (unless cfg.Binary is set) and runs the harness: setup, then
// cfg.Kills cycles of workload, SIGKILL, restart and checks, then a final
// full check and `parley verify`. It returns the first violation, wrapping
// ErrInvariant, with the end of the server log.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	start := time.Now()
	if cfg.MinDelay <= 0 {
		cfg.MinDelay = 20 * time.Millisecond
	}
	if cfg.MaxDelay < cfg.MinDelay {
		cfg.MaxDelay = max(cfg.MinDelay, 800*time.Millisecond)
	}
	if cfg.StartupKillRate == 0 {
		cfg.StartupKillRate = 0.1
	}
	h := &harness{cfg: cfg, m: newModel(), rng: rand.New(rand.NewPCG(cfg.Seed, 1)),
		data: filepath.Join(cfg.Dir, "data"), logPath: filepath.Join(cfg.Dir, "server.log")}
	h.led.init()
	h.bin = cfg.Binary
	if h.bin == "" {
		var err error
		if h.bin, err = Build(ctx, cfg.Root, cfg.Dir); err != nil {
			return h.sum, err
		}
	}
	f, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return h.sum, err
	}
	defer f.Close()
	h.log = f
	err = h.run(ctx)
	h.sum.Duration = time.Since(start)
	h.m.mu.Lock()
	h.sum.Posts, h.sum.Versions, h.sum.Unacked, h.sum.Reads = h.m.posts, len(h.m.acked), h.m.unacked, h.m.reads
	h.sum.Signatures, h.sum.Steps = len(h.m.sigs), h.m.steps
	h.sum.Handovers = len(h.handovers)
	for _, c := range h.handovers {
		if c.state == "released" {
			h.sum.Released++
		}
	}
	h.m.mu.Unlock()
	h.sum.Checkpoints, h.sum.LedgerSize = len(h.led.handed), h.led.size
	if err != nil && errors.Is(err, ErrInvariant) {
		err = fmt.Errorf("%w\nseed %d; server log %s\n%s", err, cfg.Seed, h.logPath, h.logTail())
	}
	return h.sum, err
}

func (h *harness) run(ctx context.Context) error {
	s, err := h.setup(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if s != nil {
			s.kill()
		}
	}()
	if err := h.check(ctx, s, false); err != nil {
		return err
	}
	began := time.Now()
	lastPosts, lastTook := 0, time.Duration(0)
	for h.sum.Kills < h.cfg.Kills {
		if !h.cfg.Deadline.IsZero() && time.Now().After(h.cfg.Deadline) {
			h.logf("deadline reached after %d kills", h.sum.Kills)
			break
		}
		t0 := time.Now()
		if err := h.live(ctx, s); err != nil {
			return err
		}
		h.sum.Kills++
		t1 := time.Now()
		h.sum.Workload += t1.Sub(t0)
		if h.cfg.StartupKillRate > 0 && h.rng.Float64() < h.cfg.StartupKillRate {
			if _, err := h.start(ctx, time.Duration(1+h.rng.IntN(60))*time.Millisecond); err != nil {
				return err
			}
			h.sum.StartupKills++
		}
		if s, err = h.start(ctx, 0); err != nil {
			return err
		}
		h.sum.Restarts++
		t2 := time.Now()
		h.sum.Startup += t2.Sub(t1)
		if h.cfg.tamper != nil {
			h.cfg.tamper(h)
		}
		if err := h.check(ctx, s, false); err != nil {
			return err
		}
		h.sum.Checking += time.Since(t2)
		if h.cfg.VerifyEvery > 0 && h.sum.Restarts%h.cfg.VerifyEvery == 0 {
			if err := h.verify(ctx, s); err != nil {
				return err
			}
		}
		if h.sum.Kills%10 == 0 {
			h.m.mu.Lock()
			posts, took := h.m.posts-lastPosts, h.m.postTime-lastTook
			lastPosts, lastTook = h.m.posts, h.m.postTime
			h.logf("%d kills, %d versions acknowledged, ledger size %d; last 10 lives: %d POSTs acknowledged, mean latency %s; %s so far",
				h.sum.Kills, len(h.m.acked), h.led.size, posts, (took / time.Duration(max(posts, 1))).Round(time.Microsecond), time.Since(began).Round(time.Second))
			h.m.mu.Unlock()
		}
	}
	t := time.Now()
	if err := h.check(ctx, s, true); err != nil {
		return err
	}
	h.sum.Final = time.Since(t)
	if err := h.verify(ctx, s); err != nil {
		return err
	}
	err = s.stop()
	s = nil
	return err
}

// live runs the workload on s and kills s after a random delay.
func (h *harness) live(ctx context.Context, s *server) error {
	l := h.newLife(s)
	defer l.close()
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	delay := h.delay()
	seed := h.rng.Uint64()
	suspend := h.rng.IntN(100) < 20
	done := make(chan struct{})
	go func() { l.run(lctx, seed, suspend); close(done) }()
	var died error
	select {
	case <-time.After(delay):
	case <-done: // every worker stopped early: a violation
	case <-s.exited:
		died = fmt.Errorf("%w: parley serve exited by itself under the workload: %v", ErrInvariant, s.err)
	}
	s.kill()
	cancel()
	<-done
	return errors.Join(append(l.err, died)...)
}

// setup creates the parties and the operator collection with the binary's
// operator commands, starts the server, registers the parties' keys and
// has them sign an agreement.
func (h *harness) setup(ctx context.Context) (*server, error) {
	var err error
	if h.cfg.DB != "" {
		// Operator commands never migrate PostgreSQL; `parley migrate` does.
		cmd := exec.CommandContext(ctx, h.bin, "migrate", "--db", h.cfg.DB)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("parley migrate: %w: %s", err, out)
		}
	}
	if h.alpha, err = h.addParty(ctx, "crash-alpha"); err != nil {
		return nil, err
	}
	if h.bravo, err = h.addParty(ctx, "crash-bravo"); err != nil {
		return nil, err
	}
	out, err := h.operator(ctx, "collection", "add", "--title", "crash harness",
		"--read", h.alpha.name, "--read", h.bravo.name, "--write", h.alpha.name, "--write", h.bravo.name)
	if err != nil {
		return nil, err
	}
	h.opColl = out[len(out)-1]
	s, err := h.start(ctx, 0)
	if err != nil {
		return nil, err
	}
	l := h.newLife(s)
	defer l.close()
	for _, p := range []*partyState{h.alpha, h.bravo} {
		if p.keys, err = agreement.GenerateKeys(); err != nil {
			return s, err
		}
		if err := l.client(p).RegisterKeys(ctx, p.keys.Public()); err != nil {
			return s, fmt.Errorf("registering %s's keys: %w", p.name, err)
		}
	}
	if err := h.agree(ctx, l); err != nil {
		return s, err
	}
	if h.vkey, err = audit.FetchLogKey(ctx, s.base, h.alpha.token, l.hc.Transport); err != nil {
		return s, err
	}
	if h.nv, err = note.NewVerifier(h.vkey); err != nil {
		return s, err
	}
	return s, nil
}

// addParty runs `parley party add` and reads the id and the token.
func (h *harness) addParty(ctx context.Context, name string) (*partyState, error) {
	out, err := h.operator(ctx, "party", "add", name)
	if err != nil {
		return nil, err
	}
	// party "NAME" created: ID / API token ... / TOKEN
	_, id, ok := strings.Cut(out[0], "created: ")
	if !ok || len(out) < 3 {
		return nil, fmt.Errorf("parley party add printed %q", out)
	}
	return &partyState{name: name, id: strings.TrimSpace(id), token: out[len(out)-1]}, nil
}

// agree has alpha propose and bravo countersign the agreement: grace 5,
// ratio 1:2, indicators, malware and threat actors up to TLP:AMBER.
func (h *harness) agree(ctx context.Context, l *life) error {
	now := time.Now().UTC()
	a, b := h.alpha, h.bravo
	m := map[string]any{
		"schema_version": 1, "id": agreement.NewID(), "version": 1,
		"parties": []map[string]any{
			{"party_id": a.id, "name": a.name, "key_id": a.keys.KeyID()},
			{"party_id": b.id, "name": b.name, "key_id": b.keys.KeyID()},
		},
		"scope":              map[string]any{"types": []string{"indicator", "malware", "threat-actor"}, "max_tlp": "amber", "unmarked": "allow"},
		"reciprocity":        map[string]any{"ratio": "1:2", "grace": 5},
		"escrow_deadline":    "72h",
		"request_deadlines":  map[string]any{"acknowledge": "24h", "fulfil": "168h"},
		"not_before":         now.Add(-time.Minute).Format(time.RFC3339),
		"not_after":          now.Add(365 * 24 * time.Hour).Format(time.RFC3339),
		"termination_notice": "0s",
	}
	raw, _ := json.Marshal(m)
	doc, err := agreement.ParseDocument(raw)
	if err != nil {
		return err
	}
	h.ag = agreementState{id: doc.ID, doc: doc, terms: doc.Reciprocity}
	sign := func(p *partyState, action agreement.Action) (agreement.Signature, error) {
		return agreement.Sign(p.keys, agreement.StatementFor(doc, action, p.id, p.keys.KeyID(), time.Now()))
	}
	sig, err := sign(a, agreement.ActionPropose)
	if err != nil {
		return err
	}
	if _, err := l.client(a).Propose(ctx, doc, sig); err != nil {
		return fmt.Errorf("propose: %w", err)
	}
	// The setup's signatures were acknowledged like any other: every
	// check after a restart proves they survive.
	h.m.mu.Lock()
	h.m.sigs = append(h.m.sigs, ackedSig{party: a.id, action: agreement.ActionPropose, signedAt: sig.SignedAt})
	h.m.mu.Unlock()
	if sig, err = sign(b, agreement.ActionCountersign); err != nil {
		return err
	}
	ag, err := l.client(b).Sign(ctx, sig)
	if err != nil {
		return fmt.Errorf("countersign: %w", err)
	}
	h.m.mu.Lock()
	h.m.sigs = append(h.m.sigs, ackedSig{party: b.id, action: agreement.ActionCountersign, signedAt: sig.SignedAt})
	h.m.mu.Unlock()
	if !ag.InForce {
		return fmt.Errorf("the agreement is %s after countersigning", ag.Phase)
	}
	for _, p := range []*partyState{a, b} {
		if p.own, err = ag.CollectionOf(p.id, true); err != nil {
			return err
		}
	}
	return nil
}

// verify runs `parley verify` as each party, keeping each one's verifier
// state (pinned key, last checkpoint) across runs like a real party would.
func (h *harness) verify(ctx context.Context, s *server) error {
	defer func(t time.Time) { h.sum.Verifying += time.Since(t) }(time.Now())
	for _, p := range []*partyState{h.alpha, h.bravo} {
		cmd := exec.CommandContext(ctx, h.bin, "verify", "--server", s.base, "--token", p.token, "--log-key", h.vkey, "--settle", "20s")
		cmd.Env = append(os.Environ(), "PARLEY_CONFIG="+filepath.Join(h.cfg.Dir, "verify-"+p.name, "profiles.json"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: parley verify as %s after %d kills: %v\n%s", ErrInvariant, p.name, h.sum.Kills, err, out)
		}
	}
	h.sum.Verifies++
	h.sum.Checks++
	return nil
}
