package client

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
)

// LedgerOpening is the key that opens one ledger entry's commitments
// (GET /api/v1/ledger/openings/{index}).
type LedgerOpening struct {
	Index int64  `json:"index"`
	Kind  string `json:"kind"`
	V     int    `json:"v"`
	Key   string `json:"key,omitempty"` // hex; empty for a version-1 entry
}

// KeyBytes returns the decoded entry key (nil for a version-1 entry).
func (o *LedgerOpening) KeyBytes() ([]byte, error) {
	if o.Key == "" {
		return nil, nil
	}
	k, err := hex.DecodeString(o.Key)
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("ledger opening of entry %d: key %.80q is not 64 hex digits", o.Index, o.Key)
	}
	return k, nil
}

// LedgerOpening asks for the key of the ledger entry at index; the server
// gives it only to a party entitled to the data the entry binds, and
// answers anyone else with the API error "not_found".
func (c *Client) LedgerOpening(ctx context.Context, index int64) (*LedgerOpening, error) {
	var o LedgerOpening
	_, err := c.call(ctx, http.MethodGet, "/api/v1/ledger/openings/"+strconv.FormatInt(index, 10), nil, &o)
	if err != nil {
		return nil, err
	}
	return &o, nil
}
