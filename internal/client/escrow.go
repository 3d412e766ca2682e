package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/wire"
)

// The management API's bodies, shared with the server (package wire).
type (
	Handover         = wire.Handover
	HandoverDeposit  = wire.HandoverDeposit
	HandoverProposal = wire.HandoverProposal
	Request          = wire.Request
	NewRequest       = wire.NewRequest
)

// ProposeHandover opens a case.
func (c *Client) ProposeHandover(ctx context.Context, p HandoverProposal) (*Handover, error) {
	var h Handover
	_, err := c.call(ctx, http.MethodPost, "/api/v1/handovers", p, &h)
	return &h, err
}

// Handovers lists the caller's cases (agreement optional).
func (c *Client) Handovers(ctx context.Context, agreement string) ([]Handover, error) {
	var out struct {
		Handovers []Handover `json:"handovers"`
	}
	path := "/api/v1/handovers"
	if agreement != "" {
		path += "?agreement=" + url.QueryEscape(agreement)
	}
	_, err := c.callRaw(ctx, http.MethodGet, path, &out)
	return out.Handovers, err
}

// Handover returns one case with its deposits' metadata.
func (c *Client) Handover(ctx context.Context, id string) (*Handover, error) {
	var h Handover
	_, err := c.call(ctx, http.MethodGet, "/api/v1/handovers/"+url.PathEscape(id), nil, &h)
	return &h, err
}

// AcceptHandover accepts a proposed case (the counterpart only).
func (c *Client) AcceptHandover(ctx context.Context, id string) (*Handover, error) {
	var h Handover
	_, err := c.call(ctx, http.MethodPost, "/api/v1/handovers/"+url.PathEscape(id)+"/accept", nil, &h)
	return &h, err
}

// DeclineHandover declines a proposed case (the counterpart only).
func (c *Client) DeclineHandover(ctx context.Context, id string) (*Handover, error) {
	var h Handover
	_, err := c.call(ctx, http.MethodPost, "/api/v1/handovers/"+url.PathEscape(id)+"/decline", nil, &h)
	return &h, err
}

// DepositResult is the server's receipt for a deposit.
type DepositResult struct {
	wire.DepositReceipt
	Receipt Receipt `json:"-"`
}

// DepositOptions tune a deposit.
type DepositOptions struct {
	// Agreement, when set, makes the server refuse the deposit unless the
	// case is under this agreement.
	Agreement string
	// Manifest, when set, is the depositor's signed agreement.Manifest
	// (JSON) sent with the deposit (see SignedManifest).
	Manifest []byte
}

// Deposit deposits a plain STIX bundle.
func (c *Client) Deposit(ctx context.Context, id string, bundle []byte, opt DepositOptions) (*DepositResult, error) {
	sum := sha256.Sum256(bundle)
	return c.deposit(ctx, id, bundle, wire.MediaJSON, hex.EncodeToString(sum[:]), opt)
}

// DepositSealed deposits an age ciphertext, stating its SHA-256 (hex): the
// server refuses it if the bytes it receives hash differently.
func (c *Client) DepositSealed(ctx context.Context, id string, ciphertext []byte, sha256Hex string, opt DepositOptions) (*DepositResult, error) {
	return c.deposit(ctx, id, ciphertext, wire.MediaSealed, sha256Hex, opt)
}

func (c *Client) deposit(ctx context.Context, id string, body []byte, ct, sum string, opt DepositOptions) (*DepositResult, error) {
	path := "/api/v1/handovers/" + url.PathEscape(id) + "/deposit"
	if opt.Agreement != "" {
		path += "?agreement=" + url.QueryEscape(opt.Agreement)
	}
	req, err := c.manageRequest(ctx, http.MethodPut, path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set(wire.ContentSHA256Header, sum)
	if opt.Manifest != nil {
		req.Header.Set(wire.ManifestHeader, base64.StdEncoding.EncodeToString(opt.Manifest))
	}
	req.ContentLength = int64(len(body))
	var out DepositResult
	rc, err := c.send(req, &out, nil)
	out.Receipt = rc
	return &out, err
}

// Withdraw takes the caller's deposit back while the other side has not deposited.
func (c *Client) Withdraw(ctx context.Context, id string) (*Handover, error) {
	var h Handover
	_, err := c.call(ctx, http.MethodDelete, "/api/v1/handovers/"+url.PathEscape(id)+"/deposit", nil, &h)
	return &h, err
}

// FetchedDeposit is a deposit's bytes as the server holds them.
type FetchedDeposit struct {
	Depositor string
	Sealed    bool
	SHA256    string
	Content   []byte
}

// FetchDeposit downloads a deposit: the other side's once released (from
// empty), or from a named depositor (the caller's own, any time it is held).
// It checks the content against the hash the server states.
func (c *Client) FetchDeposit(ctx context.Context, id, from string) (*FetchedDeposit, error) {
	path := "/api/v1/handovers/" + url.PathEscape(id) + "/deposit"
	if from != "" {
		path += "?from=" + url.QueryEscape(from)
	}
	req, err := c.manageRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	d := &FetchedDeposit{}
	_, err = c.send(req, nil, func(resp *http.Response) error {
		d.Depositor = resp.Header.Get(wire.DepositorHeader)
		d.Sealed = resp.Header.Get(wire.SealedHeader) == "true"
		d.SHA256 = resp.Header.Get(wire.ContentSHA256Header)
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		d.Content = b
		return err
	})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(d.Content)
	if hex.EncodeToString(sum[:]) != d.SHA256 {
		return nil, fmt.Errorf("%w: the deposit's bytes do not match the SHA-256 the server states", ErrProtocol)
	}
	return d, nil
}

// DisputeHandover records the caller's complaint about what it received.
func (c *Client) DisputeHandover(ctx context.Context, id, text string) (*Handover, error) {
	var h Handover
	_, err := c.call(ctx, http.MethodPost, "/api/v1/handovers/"+url.PathEscape(id)+"/dispute", map[string]string{"text": text}, &h)
	return &h, err
}

// DisputeHandoverSigned records a dispute with its signed statement (see
// agreement.SignDispute); its Reason is the dispute's text.
func (c *Client) DisputeHandoverSigned(ctx context.Context, d agreement.Dispute) (*Handover, error) {
	var h Handover
	_, err := c.call(ctx, http.MethodPost, "/api/v1/handovers/"+url.PathEscape(d.Handover)+"/dispute",
		map[string]any{"text": d.Reason, "statement": d}, &h)
	return &h, err
}

// Errors of CheckDeposit.
var (
	// ErrNoManifest: the depositor sent no signed manifest.
	ErrNoManifest = errors.New("the deposit has no signed manifest")
	// ErrManifestMismatch: the opened deposit is not what its depositor's
	// signed manifest promised (or the manifest is not validly signed).
	ErrManifestMismatch = errors.New("the deposit does not match its depositor's signed manifest")
)

// SignedManifest builds and signs, with keys, the manifest of bundle
// deposited by depositor in handover id as content (the bundle itself, or
// its age ciphertext).
func SignedManifest(keys *agreement.PrivateKeys, id, depositor string, bundle, content []byte) ([]byte, error) {
	sum, err := agreement.SummarizeBundle(bundle)
	if err != nil {
		return nil, err
	}
	csum := sha256.Sum256(content)
	m, err := agreement.SignManifest(keys, agreement.Manifest{Handover: id, Depositor: depositor,
		ContentSHA256: hex.EncodeToString(csum[:]), BundleSummary: sum})
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// CheckDeposit holds an opened deposit (bundle, the plaintext of d) to
// its depositor's signed manifest in h: the manifest must name this case,
// the depositor and the bytes fetched, verify under the depositor's key
// it names, and describe bundle exactly. It returns the manifest, and
// ErrNoManifest or ErrManifestMismatch (saying what differs) otherwise.
func (c *Client) CheckDeposit(ctx context.Context, h *Handover, d *FetchedDeposit, bundle []byte) (*agreement.Manifest, error) {
	var raw json.RawMessage
	for _, dep := range h.Deposits {
		if dep.Party == d.Depositor {
			raw = dep.Manifest
		}
	}
	if len(raw) == 0 {
		return nil, ErrNoManifest
	}
	var m agreement.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: the manifest does not parse: %v", ErrManifestMismatch, err)
	}
	if m.Handover != h.ID || m.Depositor != d.Depositor || m.ContentSHA256 != d.SHA256 {
		return &m, fmt.Errorf("%w: it is for handover %s, depositor %s and content %s, not these", ErrManifestMismatch, m.Handover, m.Depositor, m.ContentSHA256)
	}
	keys, err := c.PartyKeys(ctx, d.Depositor)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(keys, func(k Key) bool { return k.Keys.KeyID == m.KeyID })
	if i < 0 {
		return &m, fmt.Errorf("%w: it is signed by key %s, which %s never registered", ErrManifestMismatch, m.KeyID, d.Depositor)
	}
	if err := agreement.VerifyManifest(keys[i].Keys, m); err != nil {
		return &m, fmt.Errorf("%w: %v", ErrManifestMismatch, err)
	}
	got, err := agreement.SummarizeBundle(bundle)
	if err != nil {
		return &m, fmt.Errorf("%w: %v", ErrManifestMismatch, err)
	}
	if diff := m.BundleSummary.Diff(got); diff != "" {
		return &m, fmt.Errorf("%w: %s", ErrManifestMismatch, diff)
	}
	return &m, nil
}

// Seal encrypts a bundle with age to the counterpart's X25519 recipient
// ("age1..."), on the depositor's machine: the server never sees the
// plaintext. It returns the ciphertext and its SHA-256 (hex).
func Seal(bundle []byte, recipient string) ([]byte, string, error) {
	r, err := age.ParseX25519Recipient(recipient)
	if err != nil {
		return nil, "", fmt.Errorf("sealing recipient %q: %w", recipient, err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		return nil, "", err
	}
	if _, err := w.Write(bundle); err != nil {
		return nil, "", err
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:]), nil
}

// Unseal decrypts a sealed deposit with the recipient's identity. It fails
// (wrapping age.ErrIncorrectIdentity, among others) for any other key.
func Unseal(ciphertext []byte, id age.Identity) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(ciphertext), id)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(r, 64<<20))
}

func (c *Client) requestCall(ctx context.Context, method, path string, in any) (*Request, error) {
	var r Request
	_, err := c.call(ctx, method, path, in, &r)
	return &r, err
}

// FileRequest files a request to the other side of an agreement.
func (c *Client) FileRequest(ctx context.Context, r NewRequest) (*Request, error) {
	return c.requestCall(ctx, http.MethodPost, "/api/v1/requests", r)
}

// Requests lists the caller's requests, made and received (agreement optional).
func (c *Client) Requests(ctx context.Context, agreement string) ([]Request, error) {
	var out struct {
		Requests []Request `json:"requests"`
	}
	path := "/api/v1/requests"
	if agreement != "" {
		path += "?agreement=" + url.QueryEscape(agreement)
	}
	_, err := c.callRaw(ctx, http.MethodGet, path, &out)
	return out.Requests, err
}

// Request returns one request.
func (c *Client) Request(ctx context.Context, id string) (*Request, error) {
	return c.requestCall(ctx, http.MethodGet, "/api/v1/requests/"+url.PathEscape(id), nil)
}

// AckRequest acknowledges a request addressed to the caller.
func (c *Client) AckRequest(ctx context.Context, id string) (*Request, error) {
	return c.requestCall(ctx, http.MethodPost, "/api/v1/requests/"+url.PathEscape(id)+"/ack", nil)
}

// FulfilRequest answers a request with a handover that references it.
func (c *Client) FulfilRequest(ctx context.Context, id, handover string) (*Request, error) {
	return c.requestCall(ctx, http.MethodPost, "/api/v1/requests/"+url.PathEscape(id)+"/fulfil", map[string]string{"handover": handover})
}

// RefuseRequest refuses a request with a coded ground (text needed for "other").
func (c *Client) RefuseRequest(ctx context.Context, id, ground, text string) (*Request, error) {
	return c.requestCall(ctx, http.MethodPost, "/api/v1/requests/"+url.PathEscape(id)+"/refuse", map[string]string{"ground": ground, "text": text})
}

// RequestStats are one side's request counts under an agreement.
type RequestStats struct {
	Party          string `json:"party"`
	Made           int    `json:"made"`
	AnsweredInTime int    `json:"answered_in_time"`
	Received       int    `json:"received"`
	Fulfilled      int    `json:"fulfilled"`
	Refused        int    `json:"refused"`
	Overdue        int    `json:"overdue"`
	Open           int    `json:"open"`
}

// RequestStats returns both sides' counts under an agreement.
func (c *Client) RequestStats(ctx context.Context, agreement string) ([]RequestStats, error) {
	var out struct {
		Sides []RequestStats `json:"sides"`
	}
	_, err := c.callRaw(ctx, http.MethodGet, "/api/v1/agreements/"+url.PathEscape(agreement)+"/requests", &out)
	return out.Sides, err
}

// Event is one entry of the caller's event stream.
type Event struct {
	Seq     int64           `json:"-"`
	Kind    string          `json:"kind"`
	Subject string          `json:"subject"`
	At      time.Time       `json:"at"`
	Data    json.RawMessage `json:"data"`
}

// Events reads the caller's event stream after sequence number after,
// calling fn for each event in order. With follow it keeps the stream
// open until ctx ends or fn returns an error (ErrStopEvents ends it
// cleanly); without, it returns once the stored events are read.
func (c *Client) Events(ctx context.Context, after int64, follow bool, fn func(Event) error) error {
	path := "/api/v1/events"
	if !follow {
		path += "?follow=false"
	}
	req, err := c.manageRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", strconv.FormatInt(after, 10))
	_, err = c.send(req, nil, func(resp *http.Response) error {
		err := ParseEventStream(resp.Body, fn)
		if errors.Is(err, ErrStopEvents) || (ctx.Err() != nil && follow) {
			return nil
		}
		return err
	})
	return err
}

// ErrStopEvents, returned by an Events callback, ends the stream without error.
var ErrStopEvents = errors.New("stop reading events")

// ParseEventStream reads Server-Sent Events as parley sends them (id,
// event, one data line of JSON) and calls fn for each complete event.
func ParseEventStream(r io.Reader, fn func(Event) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var id string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() == 0 {
				id = ""
				continue
			}
			var ev Event
			if err := json.Unmarshal([]byte(data.String()), &ev); err != nil {
				return fmt.Errorf("%w: event %s: %v", ErrProtocol, id, err)
			}
			seq, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				return fmt.Errorf("%w: event id %q is not a number", ErrProtocol, id)
			}
			ev.Seq = seq
			id = ""
			data.Reset()
			if err := fn(ev); err != nil {
				return err
			}
		case strings.HasPrefix(line, ":"):
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				id = value
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(value)
			}
		}
	}
	return sc.Err()
}

// manageRequest builds an authorized management API request.
func (c *Client) manageRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	u := c.base.ResolveReference(&url.URL{Path: path})
	if i := strings.IndexByte(path, '?'); i >= 0 {
		u = c.base.ResolveReference(&url.URL{Path: path[:i], RawQuery: path[i+1:]})
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", wire.MediaJSON)
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	c.authorize(req)
	return req, nil
}

// callRaw is call for paths that carry a query string.
func (c *Client) callRaw(ctx context.Context, method, path string, out any) (Receipt, error) {
	req, err := c.manageRequest(ctx, method, path, nil)
	if err != nil {
		return -1, err
	}
	return c.send(req, out, nil)
}

// send sends req; on 2xx it decodes JSON into out or hands the response to
// read; otherwise it returns the *APIError.
func (c *Client) send(req *http.Request, out any, read func(*http.Response) error) (Receipt, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return -1, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer closeBody(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		e := &APIError{StatusCode: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Code, e.Message = "http", http.StatusText(resp.StatusCode)
		}
		return -1, e
	}
	rc := Receipt(-1)
	if v := resp.Header.Get(wire.LedgerIndexHeader); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			rc = Receipt(n)
		}
	}
	if read != nil {
		return rc, read(resp)
	}
	if out != nil {
		data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResourceBytes))
		if err != nil {
			return rc, err
		}
		if err := json.Unmarshal(data, out); err != nil {
			return rc, fmt.Errorf("%s %s: decoding the answer: %w", req.Method, req.URL.Redacted(), err)
		}
	}
	return rc, nil
}
