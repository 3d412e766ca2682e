package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
)

// ReportSignature is one party's signature of a joint report, as the
// server recorded it.
type ReportSignature struct {
	Party       string    `json:"party"`
	KeyID       string    `json:"key_id"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	SignedAt    time.Time `json:"signed_at"`
	LedgerIndex int64     `json:"ledger_index"`
	Matches     bool      `json:"matches"`
	// Statement is the signed statement (agreement.SignedReport as JSON)
	// byte for byte as the ledger entry's "statement" digest covers it
	// (base64 in JSON); absent for signatures recorded before the server
	// kept statements.
	Statement  []byte `json:"statement,omitempty"`
	ReportHash string `json:"report_hash,omitempty"`
}

func reportPath(agreementID string) string {
	return "/api/v1/agreements/" + url.PathEscape(agreementID) + "/report"
}

// Report returns the joint report on an agreement over [from, to) as the
// server sends it (JSON: facts, hash, checkpoint, signatures, names);
// from and to are RFC 3339 times or YYYY-MM-DD dates. The caller decodes
// it (package report's Report) and checks the hash of the facts itself
// before signing.
func (c *Client) Report(ctx context.Context, agreementID, from, to string) (json.RawMessage, error) {
	u := c.base.ResolveReference(&url.URL{Path: reportPath(agreementID), RawQuery: url.Values{"from": {from}, "to": {to}}.Encode()})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	c.authorize(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	defer closeBody(resp.Body)
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResourceBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		e := &APIError{StatusCode: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Code, e.Message = "http", http.StatusText(resp.StatusCode)
		}
		return nil, e
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("%w: GET %s: the report is not JSON", ErrProtocol, u.Redacted())
	}
	return data, nil
}

// SignReport submits the caller's signed statement of a joint report
// (agreement.SignReport); the answer's receipt is the report.signed entry.
func (c *Client) SignReport(ctx context.Context, sr agreement.SignedReport) (*ReportSignature, Receipt, error) {
	var out ReportSignature
	rc, err := c.call(ctx, http.MethodPost, reportPath(sr.AgreementID)+"/signatures", map[string]any{"signature": sr}, &out)
	return &out, rc, err
}

// ReportSignatures lists every report signature recorded under the
// agreement with its signed statement, in ledger order.
func (c *Client) ReportSignatures(ctx context.Context, agreementID string) ([]ReportSignature, error) {
	var out struct {
		Signatures []ReportSignature `json:"signatures"`
	}
	_, err := c.callRaw(ctx, http.MethodGet, reportPath(agreementID)+"/signatures", &out)
	return out.Signatures, err
}
