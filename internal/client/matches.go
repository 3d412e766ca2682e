package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"time"

	"filippo.io/age"

	"github.com/parley-cti/parley/internal/psi"
	"github.com/parley-cti/parley/internal/wire"
)

// Match is a session as the management API returns it, with the receipt
// of the call that started it.
type Match struct {
	wire.Match
	Receipt Receipt `json:"-"`
}

// The round-1 bodies, shared with the server (package wire).
type (
	MatchRound1  = wire.MatchRound1
	Round1Result = wire.Round1Receipt
)

// StartMatch opens a matching session under an agreement; the caller is its
// initiator.
func (c *Client) StartMatch(ctx context.Context, agreementID string) (*Match, error) {
	var m Match
	rc, err := c.call(ctx, http.MethodPost, "/api/v1/matches", map[string]string{"agreement": agreementID}, &m)
	m.Receipt = rc
	return &m, err
}

// Matches lists the caller's sessions (agreement optional).
func (c *Client) Matches(ctx context.Context, agreementID string) ([]Match, error) {
	var out struct {
		Matches []Match `json:"matches"`
	}
	path := "/api/v1/matches"
	if agreementID != "" {
		path += "?agreement=" + url.QueryEscape(agreementID)
	}
	_, err := c.callRaw(ctx, http.MethodGet, path, &out)
	return out.Matches, err
}

// Match returns one session.
func (c *Client) Match(ctx context.Context, id string) (*Match, error) {
	var m Match
	_, err := c.call(ctx, http.MethodGet, "/api/v1/matches/"+url.PathEscape(id), nil, &m)
	return &m, err
}

// PutRound1 uploads the caller's round-1 message, streaming it from r.
func (c *Client) PutRound1(ctx context.Context, id string, r io.Reader) (*Round1Result, error) {
	req, err := c.manageRequest(ctx, http.MethodPut, "/api/v1/matches/"+url.PathEscape(id)+"/round1", r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", wire.MediaSealed)
	var out Round1Result
	_, err = c.send(req, &out, nil)
	return &out, err
}

// PeerRound1 streams the other side's round-1 message to fn. It fails with
// an *APIError of code "not_ready" until both sides have sent round 1.
func (c *Client) PeerRound1(ctx context.Context, id string, fn func(r io.Reader) error) error {
	req, err := c.manageRequest(ctx, http.MethodGet, "/api/v1/matches/"+url.PathEscape(id)+"/round1/peer", nil)
	if err != nil {
		return err
	}
	_, err = c.send(req, nil, func(resp *http.Response) error { return fn(resp.Body) })
	return err
}

// MatchOptions configure one side's run of the whole protocol.
type MatchOptions struct {
	// Agreement starts a new session under it, unless Session names one
	// to join.
	Agreement string
	Session   string
	// Items yields the caller's wanted list; it is iterated twice (for
	// round 1 and to name the matches), so it must yield the same items
	// in the same order each time.
	Items func() iter.Seq[psi.Item]
	// Identity opens the other side's round 2, sealed to the caller's
	// registered sealing key.
	Identity age.Identity
	// Poll is how often to look whether the other side has moved
	// (default 250 ms).
	Poll time.Duration
	// OnSession, when set, is called once the session is known (so the
	// caller can tell the other side which session to join).
	OnSession func(Match)
	// Progress, when set, is told each step as it starts.
	Progress func(step string)
	// Pins, when set, pins the peer's sealing key on first use (see
	// SealingRecipient); round 2 is sealed only to a key bound to the
	// peer's signing key named in the agreement either way.
	Pins SealingPins
	// Outage is how long the waits for the other side keep trying through
	// the caller's server not answering (a restart, kill -9 and start
	// again, a proxy's 502–504) before RunMatch gives up (default 10
	// minutes). The session's secret lives only in this process, so
	// giving up at the first refused connection would lose the session.
	Outage time.Duration
}

// DefaultMatchOutage is MatchOptions.Outage's default.
const DefaultMatchOutage = 10 * time.Minute

// MatchOutcome is what one side learned.
type MatchOutcome struct {
	Session   Match
	Matched   []psi.Item // the caller's own items the other side also holds, in list order
	Indices   []int      // their positions in the list
	OwnCount  int64      // distinct elements the caller sent
	PeerCount int64      // elements the other side sent
}

// ErrMatchAborted reports a session that ended before both round-2
// messages were released.
var ErrMatchAborted = errors.New("the matching session ended without release")

// RunMatch runs the whole protocol for the caller: start (or join) the
// session, send round 1, wait for the other side's, compute and deposit
// round 2 sealed to the other side, wait for the escrow to release both,
// and compute the matches. Round 1 streams to the server as it is written;
// the round-2 messages are held in memory (16 bytes per element).
func (c *Client) RunMatch(ctx context.Context, opt MatchOptions) (*MatchOutcome, error) {
	step := func(s string) {
		if opt.Progress != nil {
			opt.Progress(s)
		}
	}
	poll := opt.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	if opt.Items == nil || opt.Identity == nil {
		return nil, errors.New("client: RunMatch needs Items and Identity")
	}
	me, err := c.Me(ctx)
	if err != nil {
		return nil, err
	}
	var m *Match
	if opt.Session != "" {
		m, err = c.Match(ctx, opt.Session)
	} else if opt.Agreement != "" {
		m, err = c.StartMatch(ctx, opt.Agreement)
	} else {
		err = errors.New("client: RunMatch needs an agreement to start a session or a session to join")
	}
	if err != nil {
		return nil, err
	}
	if opt.OnSession != nil {
		opt.OnSession(*m)
	}
	sid, err := hex.DecodeString(m.SessionID)
	if err != nil {
		return nil, fmt.Errorf("%w: session id %q", ErrProtocol, m.SessionID)
	}
	cfg := psi.Config{SessionID: sid, Self: me.PartyID, MaxElements: int(m.Cap)}
	switch me.PartyID {
	case m.Initiator:
		cfg.Role, cfg.Peer = psi.RoleInitiator, m.Responder
	case m.Responder:
		cfg.Role, cfg.Peer = psi.RoleResponder, m.Initiator
	default:
		return nil, fmt.Errorf("%w: %s is not a side of session %s", ErrProtocol, me.PartyID, m.ID)
	}
	s, err := psi.NewSession(cfg)
	if err != nil {
		return nil, err
	}

	// Round 1 is written to a temporary file, then uploaded: the library
	// writes nothing until it has blinded and shuffled every item, which
	// for a long list takes longer than a server should keep a request
	// open, and the file keeps the 32-byte elements out of memory.
	step("round 1: hashing and blinding")
	f, err := os.CreateTemp("", "parley-match-round1-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	order, err := s.Round1(ctx, opt.Items(), f)
	if err != nil {
		return nil, fmt.Errorf("round 1: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	step("round 1: sending")
	r1, err := c.PutRound1(ctx, m.ID, f)
	if err != nil {
		return nil, fmt.Errorf("round 1 upload: %w", err)
	}
	f.Close()
	out := &MatchOutcome{OwnCount: r1.Count}
	down := &outage{limit: opt.Outage, step: step}
	if down.limit <= 0 {
		down.limit = DefaultMatchOutage
	}

	step("waiting for the other side's round 1")
	var own2 bytes.Buffer
	for {
		own2.Reset() // a read cut off by the server's restart starts over
		err = c.PeerRound1(ctx, m.ID, func(r io.Reader) error {
			step("round 2: blinding the other side's elements")
			return s.Round2(ctx, cutReader{r}, &own2)
		})
		if down.wait(ctx, err, poll) {
			continue
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.Code == "not_ready" {
			if err := sleep(ctx, poll); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("round 2: %w", err)
		}
		break
	}
	rcpt, err := c.SealingRecipient(ctx, m.Agreement, cfg.Peer, nil, opt.Pins)
	if err != nil {
		return nil, fmt.Errorf("%s's sealing key: %w", cfg.Peer, err)
	}
	ct, sum, err := Seal(own2.Bytes(), rcpt)
	if err != nil {
		return nil, err
	}
	step("round 2: depositing in escrow")
	dep, err := c.DepositSealed(ctx, m.Handover, ct, sum, DepositOptions{Agreement: m.Agreement})
	if err != nil {
		return nil, fmt.Errorf("round 2 deposit: %w", err)
	}
	ct = nil
	if !dep.Released {
		step("waiting for the escrow to release both round-2 messages")
		for {
			h, err := c.Handover(ctx, m.Handover)
			if down.wait(ctx, err, poll) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if h.State == "released" {
				break
			}
			if h.State != "accepted" {
				return nil, fmt.Errorf("%w: handover %s is %s", ErrMatchAborted, h.ID, h.State)
			}
			if err := sleep(ctx, poll); err != nil {
				return nil, err
			}
		}
	}
	step("computing the matches")
	d, err := c.FetchDeposit(ctx, m.Handover, "")
	for down.wait(ctx, err, poll) {
		d, err = c.FetchDeposit(ctx, m.Handover, "")
	}
	if err != nil {
		return nil, fmt.Errorf("fetching the other side's round 2: %w", err)
	}
	peer2, err := age.Decrypt(bytes.NewReader(d.Content), opt.Identity)
	if err != nil {
		return nil, fmt.Errorf("opening the other side's round 2: %w", err)
	}
	idx, err := s.Result(ctx, order, bytes.NewReader(own2.Bytes()), peer2)
	if err != nil {
		return nil, fmt.Errorf("result: %w", err)
	}
	out.Indices = idx
	out.PeerCount = int64(own2.Len()-psi.HeaderSize-32) / 16
	want := 0
	i := 0
	for it := range opt.Items() {
		if want < len(idx) && idx[want] == i {
			out.Matched = append(out.Matched, it)
			want++
		}
		i++
	}
	if fresh, err := c.Match(ctx, m.ID); err == nil {
		m = fresh
	}
	out.Session = *m
	return out, nil
}

// outage follows a run of failures to reach the caller's server during a
// session's waits.
type outage struct {
	since time.Time // zero: the server answered last time
	limit time.Duration
	step  func(string)
}

// wait reports whether err is a failure to reach the server (a refused or
// cut connection, 502, 503, 504) that has not yet lasted o.limit, and then
// waits a poll (at least half a second) before the caller asks again. Any
// other outcome ends the run of failures and returns false: the caller
// goes on, or returns its error.
func (o *outage) wait(ctx context.Context, err error, poll time.Duration) bool {
	if err == nil || ctx.Err() != nil || !unreachable(err) {
		o.since = time.Time{}
		return false
	}
	if o.since.IsZero() {
		o.since = time.Now()
		o.step("the server does not answer; waiting for it to come back")
	}
	if time.Since(o.since) > o.limit {
		return false
	}
	return sleep(ctx, max(poll, 500*time.Millisecond)) == nil
}

// unreachable reports whether err means the server could not be reached
// or said it is unavailable for now, rather than answering the request.
func unreachable(err error) bool {
	var ae *APIError
	var te *Error
	status := 0
	if errors.As(err, &ae) {
		status = ae.StatusCode
	} else if errors.As(err, &te) {
		status = te.StatusCode
	}
	if status != 0 {
		return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
	}
	var ne net.Error
	var cut *cutError
	return errors.As(err, &ne) || errors.As(err, &cut) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// cutReader marks the errors of reading a response body (a connection cut
// mid-stream), so that they are told from the errors of parsing what was
// read: a message that arrived whole but is malformed is not waited out.
type cutReader struct{ r io.Reader }

type cutError struct{ err error }

func (e *cutError) Error() string { return "reading the response: " + e.err.Error() }
func (e *cutError) Unwrap() error { return e.err }

func (c cutReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = &cutError{err}
	}
	return n, err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
