package client

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
)

// Verification is one of the party's uploaded verifications of the ledger.
type Verification struct {
	Seq        int64                        `json:"seq"`
	Size       int64                        `json:"size"`
	Root       string                       `json:"root"`
	Entries    int64                        `json:"entries"`
	VerifiedAt time.Time                    `json:"verified_at"`
	ReceivedAt time.Time                    `json:"received_at"`
	Statement  agreement.SignedVerification `json:"statement"`
}

// UploadVerification sends the party's signed verification of the ledger
// (POST /api/v1/verifications); the server keeps it for the dashboard.
func (c *Client) UploadVerification(ctx context.Context, sv agreement.SignedVerification) (*Verification, error) {
	var out Verification
	_, err := c.call(ctx, http.MethodPost, "/api/v1/verifications", map[string]any{"verification": sv}, &out)
	return &out, err
}

// Verifications lists up to limit of the party's own uploads, newest first.
func (c *Client) Verifications(ctx context.Context, limit int) ([]Verification, error) {
	var out struct {
		Verifications []Verification `json:"verifications"`
	}
	_, err := c.callRaw(ctx, http.MethodGet, "/api/v1/verifications?limit="+strconv.Itoa(limit), &out)
	return out.Verifications, err
}
