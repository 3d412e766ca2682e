package audit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/parley-cti/parley/internal/ledger"
)

// bearer adds a party's token to every request: the server serves its
// ledger to authenticated parties only.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// HTTPClient returns an http.Client that authenticates as the party; base
// nil means http.DefaultTransport.
func HTTPClient(token string, base http.RoundTripper) *http.Client {
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{Transport: bearer{token, base}}
}

// NewRemote returns the ledger of the server at serverURL (its root, e.g.
// "https://parley.example") read as the party with token.
func NewRemote(serverURL, token string, base http.RoundTripper) *LedgerClient {
	return &LedgerClient{BaseURL: strings.TrimSuffix(serverURL, "/") + "/ledger", HTTP: HTTPClient(token, base)}
}

// FetchLogKey asks the server for its log's verifier key (GET /ledger/key).
// The answer is only as good as the connection it came over: callers pin
// it on first use and compare it on every later run.
func FetchLogKey(ctx context.Context, serverURL, token string, base http.RoundTripper) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(serverURL, "/")+"/ledger/key", nil)
	if err != nil {
		return "", err
	}
	resp, err := HTTPClient(token, base).Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch log key: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if err != nil {
		return "", fmt.Errorf("fetch log key: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch log key: %s", resp.Status)
	}
	vkey := strings.TrimSpace(string(body))
	if _, err := note.NewVerifier(vkey); err != nil {
		return "", fmt.Errorf("server's log key %.80q: %w", vkey, ledger.ErrMalformed)
	}
	return vkey, nil
}
