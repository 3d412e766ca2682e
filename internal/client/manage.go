package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/wire"
)

// APIError is an error answer of parley's management API.
type APIError struct {
	StatusCode int
	Code       string `json:"error"`
	Message    string `json:"message"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.StatusCode, e.Message)
}

// Unwrap maps the status to the same sentinels TAXII errors use.
func (e *APIError) Unwrap() error {
	switch e.StatusCode {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrUnauthorized
	case http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	}
	return nil
}

// Receipt is the ledger index a state-changing call returned (-1 if none).
type Receipt int64

// call sends a management API request and decodes a JSON answer into out.
func (c *Client) call(ctx context.Context, method, path string, in, out any) (Receipt, error) {
	u := c.base.ResolveReference(&url.URL{Path: path})
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return -1, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return -1, err
	}
	req.Header.Set("Accept", wire.MediaJSON)
	if in != nil {
		req.Header.Set("Content-Type", wire.MediaJSON)
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	c.authorize(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		return -1, fmt.Errorf("%s %s: %w", method, u.Redacted(), err)
	}
	defer closeBody(resp.Body)
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResourceBytes))
	if err != nil {
		return -1, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
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
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return rc, fmt.Errorf("%s %s: decoding the answer: %w", method, u.Redacted(), err)
		}
	}
	return rc, nil
}

// Me describes the authenticated party.
type Me struct {
	PartyID string `json:"party_id"`
	Name    string `json:"name"`
	TokenID string `json:"token_id"`
	Keys    []Key  `json:"keys"`
}

// Key is a registered key set.
type Key struct {
	Keys       agreement.PublicKeys `json:"keys"`
	ValidFrom  string               `json:"valid_from"`
	ValidUntil string               `json:"valid_until,omitempty"`
	// Rotation is the agreement.KeyRotation, signed by the key before,
	// that made this key current; absent for a first registration.
	Rotation json.RawMessage `json:"rotation,omitempty"`
}

// Party is a directory entry.
type Party struct {
	ID   string `json:"party_id"`
	Name string `json:"name"`
}

// Me returns who the token belongs to.
func (c *Client) Me(ctx context.Context) (*Me, error) {
	var m Me
	_, err := c.call(ctx, http.MethodGet, "/api/v1/me", nil, &m)
	return &m, err
}

// Parties lists the parties of the server.
func (c *Client) Parties(ctx context.Context) ([]Party, error) {
	var out struct {
		Parties []Party `json:"parties"`
	}
	_, err := c.call(ctx, http.MethodGet, "/api/v1/parties", nil, &out)
	return out.Parties, err
}

// PartyByName finds a party in the directory by name or id.
func (c *Client) PartyByName(ctx context.Context, nameOrID string) (Party, error) {
	ps, err := c.Parties(ctx)
	if err != nil {
		return Party{}, err
	}
	for _, p := range ps {
		if p.Name == nameOrID || p.ID == nameOrID {
			return p, nil
		}
	}
	return Party{}, fmt.Errorf("no party named %q on the server: %w", nameOrID, ErrNotFound)
}

// PartyKeys returns a party's registered keys.
func (c *Client) PartyKeys(ctx context.Context, partyID string) ([]Key, error) {
	var out struct {
		Keys []Key `json:"keys"`
	}
	_, err := c.call(ctx, http.MethodGet, "/api/v1/parties/"+url.PathEscape(partyID)+"/keys", nil, &out)
	return out.Keys, err
}

// CurrentKey returns a party's current key set.
func (c *Client) CurrentKey(ctx context.Context, partyID string) (agreement.PublicKeys, error) {
	ks, err := c.PartyKeys(ctx, partyID)
	if err != nil {
		return agreement.PublicKeys{}, err
	}
	for i := len(ks) - 1; i >= 0; i-- {
		if ks[i].ValidUntil == "" {
			return ks[i].Keys, nil
		}
	}
	return agreement.PublicKeys{}, fmt.Errorf("party %s has registered no keys: %w", partyID, ErrNotFound)
}

// RegisterKeys registers the caller's first public keys.
func (c *Client) RegisterKeys(ctx context.Context, pub agreement.PublicKeys) error {
	_, err := c.call(ctx, http.MethodPost, "/api/v1/keys", pub, nil)
	return err
}

// RotateKeys replaces the caller's keys with a rotation signed by the old key.
func (c *Client) RotateKeys(ctx context.Context, rot agreement.KeyRotation) error {
	_, err := c.call(ctx, http.MethodPost, "/api/v1/keys/rotate", rot, nil)
	return err
}

// Agreement is the server's view of an agreement.
type Agreement struct {
	ID             string   `json:"id"`
	Parties        []string `json:"parties"`
	Phase          string   `json:"phase"`             // "broken" when its history no longer verifies
	Problem        string   `json:"problem,omitempty"` // why it is broken
	InForce        bool     `json:"in_force"`
	Version        int      `json:"version"`
	DocumentHash   string   `json:"document_hash,omitempty"`
	PendingVersion int      `json:"pending_version,omitempty"`
	// The version awaiting a countersignature and its document hash.
	AwaitingVersion      int                   `json:"awaiting_version,omitempty"`
	AwaitingDocumentHash string                `json:"awaiting_document_hash,omitempty"`
	SuspendedBy          []string              `json:"suspended_by,omitempty"`
	TerminationAt        string                `json:"termination_at,omitempty"`
	Reason               string                `json:"reason,omitempty"`
	APIRoot              string                `json:"taxii_api_root"`
	Document             json.RawMessage       `json:"document"`
	Versions             []json.RawMessage     `json:"versions"`
	Signatures           []agreement.Signature `json:"signatures"`
	Collections          []AgreementCollection `json:"collections,omitempty"`
	LedgerIndex          *int64                `json:"ledger_index,omitempty"`
}

// AgreementCollection is one of an agreement's TAXII collections.
type AgreementCollection struct {
	ID          string `json:"id"`
	Contributor string `json:"contributor"`
	Title       string `json:"title"`
	CanWrite    bool   `json:"can_write"`
}

// CollectionOf returns the id of the collection holding contributor's
// contributions under the agreement (own or the other party's).
func (a *Agreement) CollectionOf(contributor string, own bool) (string, error) {
	for _, c := range a.Collections {
		if (c.Contributor == contributor) == own {
			return c.ID, nil
		}
	}
	return "", fmt.Errorf("agreement %s has no such collection (is it countersigned?): %w", a.ID, ErrNotFound)
}

// Doc parses the governing document.
func (a *Agreement) Doc() (*agreement.Document, error) { return agreement.ParseDocument(a.Document) }

// VersionDoc parses one version's document.
func (a *Agreement) VersionDoc(v int) (*agreement.Document, error) {
	for _, raw := range a.Versions {
		d, err := agreement.ParseDocument(raw)
		if err != nil {
			return nil, err
		}
		if d.Version == v {
			return d, nil
		}
	}
	return nil, fmt.Errorf("agreement %s has no version %d: %w", a.ID, v, ErrNotFound)
}

// Agreements lists the caller's agreements.
func (c *Client) Agreements(ctx context.Context) ([]Agreement, error) {
	var out struct {
		Agreements []Agreement `json:"agreements"`
	}
	_, err := c.call(ctx, http.MethodGet, "/api/v1/agreements", nil, &out)
	return out.Agreements, err
}

// Agreement fetches one agreement.
func (c *Client) Agreement(ctx context.Context, id string) (*Agreement, error) {
	var a Agreement
	_, err := c.call(ctx, http.MethodGet, "/api/v1/agreements/"+url.PathEscape(id), nil, &a)
	return &a, err
}

// Propose submits a new agreement with the proposer's signature.
func (c *Client) Propose(ctx context.Context, doc *agreement.Document, sig agreement.Signature) (*Agreement, error) {
	var a Agreement
	_, err := c.call(ctx, http.MethodPost, "/api/v1/agreements", map[string]any{"document": doc, "signature": sig}, &a)
	return &a, err
}

// Amend submits a new version signed by the caller.
func (c *Client) Amend(ctx context.Context, doc *agreement.Document, sig agreement.Signature) (*Agreement, error) {
	var a Agreement
	_, err := c.call(ctx, http.MethodPost, "/api/v1/agreements/"+url.PathEscape(doc.ID)+"/versions", map[string]any{"document": doc, "signature": sig}, &a)
	return &a, err
}

// Sign submits a countersignature, suspension, resumption or termination.
func (c *Client) Sign(ctx context.Context, sig agreement.Signature) (*Agreement, error) {
	var a Agreement
	_, err := c.call(ctx, http.MethodPost, "/api/v1/agreements/"+url.PathEscape(sig.AgreementID)+"/signatures", map[string]any{"signature": sig}, &a)
	return &a, err
}

// Balance is a party's give-to-get standing.
type Balance struct {
	Agreement   string  `json:"agreement"`
	Party       string  `json:"party"`
	Contributed int64   `json:"contributed"`
	Credits     float64 `json:"credits"`   // less contested credits
	Contested   float64 `json:"contested"` // the weight of its contributions the other side contests
	Allowance   int64   `json:"allowance"`
	Available   int64   `json:"available"`
	Released    int64   `json:"released"`
	NextUnlocks int64   `json:"next_unlocks"`
	InForce     bool    `json:"in_force"`
	Phase       string  `json:"phase"`
}

// Balance returns the caller's balance under an agreement.
func (c *Client) Balance(ctx context.Context, agreementID string) (*Balance, error) {
	var b Balance
	_, err := c.call(ctx, http.MethodGet, "/api/v1/agreements/"+url.PathEscape(agreementID)+"/balance", nil, &b)
	return &b, err
}

// IsAPIError reports whether err is a management API error with this code.
func IsAPIError(err error, code string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == code
}

// RemoteParty is a party of a peer node, as this party's own node learned
// it from the peer (GET /api/v1/peers/{peer}/parties/{party}).
type RemoteParty struct {
	PartyID string `json:"party_id"`
	Name    string `json:"name"`  // on its own node, as documents name it
	Local   string `json:"local"` // its name on this node, NAME@PEER
	Node    string `json:"node"`  // its node's key
	Self    string `json:"self"`  // this node's key
	KeyID   string `json:"key_id"`
	Peer    string `json:"peer"`
	HasKeys bool   `json:"has_keys"`
}

// RemoteParty asks this node to look up party (an id or a name) on its
// peer named peer; the node asks the peer, signing as itself.
func (c *Client) RemoteParty(ctx context.Context, peer, party string) (*RemoteParty, error) {
	var rp RemoteParty
	_, err := c.call(ctx, http.MethodGet, "/api/v1/peers/"+url.PathEscape(peer)+"/parties/"+url.PathEscape(party), nil, &rp)
	return &rp, err
}

// OutboxEntry is a message this node owes, or delivered to, a peer.
type OutboxEntry struct {
	Seq       int64  `json:"seq"`
	Kind      string `json:"kind"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
}

// Outbox lists what this node owes the peer of an agreement between two
// nodes, newest first.
func (c *Client) Outbox(ctx context.Context, agreementID string) ([]OutboxEntry, error) {
	var out struct {
		Outbox []OutboxEntry `json:"outbox"`
	}
	_, err := c.call(ctx, http.MethodGet, "/api/v1/agreements/"+url.PathEscape(agreementID)+"/outbox", nil, &out)
	return out.Outbox, err
}

// FeedPull is where this node's pull of the other party's contributions
// under an agreement between two nodes stands.
type FeedPull struct {
	Agreement    string     `json:"agreement"`
	Peer         string     `json:"peer"`
	Party        string     `json:"party"`
	PartyName    string     `json:"party_name"`
	Cursor       int64      `json:"cursor"`
	PeerReleased int64      `json:"peer_released"`
	Pulled       int64      `json:"pulled"`
	Refused      int64      `json:"refused"`
	Attempts     int        `json:"attempts"`
	LastSuccess  *time.Time `json:"last_success,omitempty"`
	LastError    string     `json:"last_error,omitempty"`
	NextAttempt  *time.Time `json:"next_attempt,omitempty"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// Feeds lists the pulls feeding an agreement on this node
// (GET /api/v1/agreements/{id}/feeds).
func (c *Client) Feeds(ctx context.Context, agreementID string) ([]FeedPull, error) {
	var out struct {
		Feeds []FeedPull `json:"feeds"`
	}
	_, err := c.call(ctx, http.MethodGet, "/api/v1/agreements/"+url.PathEscape(agreementID)+"/feeds", nil, &out)
	return out.Feeds, err
}
