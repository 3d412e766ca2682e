package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
)

// Contest is a contest of one credit, as both parties to the agreement see
// it.
type Contest struct {
	ID            string          `json:"id"`
	Agreement     string          `json:"agreement"`
	Contester     string          `json:"contester"`
	Contributor   string          `json:"contributor"`
	ObjectID      string          `json:"object_id"`
	Weight        float64         `json:"weight"`
	Reason        string          `json:"reason"`
	FiledAt       time.Time       `json:"filed_at"`
	LedgerIndex   int64           `json:"ledger_index"`
	Statement     json.RawMessage `json:"statement"`
	WithdrawnAt   *time.Time      `json:"withdrawn_at,omitempty"`
	WithdrawIndex int64           `json:"withdraw_ledger_index,omitempty"`
	Withdrawal    json.RawMessage `json:"withdrawal,omitempty"`
}

func contestsPath(agreementID string) string {
	return "/api/v1/agreements/" + url.PathEscape(agreementID) + "/contests"
}

// FileContest submits a signed contest (agreement.SignContest with action
// "contest") of the credit for one object the other side contributed.
func (c *Client) FileContest(ctx context.Context, sc agreement.SignedContest) (*Contest, error) {
	var out Contest
	_, err := c.call(ctx, http.MethodPost, contestsPath(sc.AgreementID), map[string]any{"contest": sc}, &out)
	return &out, err
}

// WithdrawContest submits a signed withdrawal (action "withdraw") of one of
// the caller's contests.
func (c *Client) WithdrawContest(ctx context.Context, sc agreement.SignedContest) (*Contest, error) {
	var out Contest
	_, err := c.call(ctx, http.MethodPost, contestsPath(sc.AgreementID)+"/"+url.PathEscape(sc.ContestID)+"/withdraw", map[string]any{"withdrawal": sc}, &out)
	return &out, err
}

// Contests lists every contest under an agreement, by either side.
func (c *Client) Contests(ctx context.Context, agreementID string) ([]Contest, error) {
	var out struct {
		Contests []Contest `json:"contests"`
	}
	_, err := c.call(ctx, http.MethodGet, contestsPath(agreementID), nil, &out)
	return out.Contests, err
}
