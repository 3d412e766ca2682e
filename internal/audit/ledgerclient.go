package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/parley-cti/parley/internal/ledger"
)

// LedgerClient reads a ledger served by ledgerhttp.Register; it implements
// ledger.Remote. It is the party side of that protocol, kept here so that
// verifying links nothing of the server.
// Nothing it returns is trusted: ledger.Verifier checks it all.
type LedgerClient struct {
	// BaseURL is the server's URL including the ledger prefix, e.g.
	// "https://parley.example/ledger".
	BaseURL string
	// HTTP is the client to use; nil means http.DefaultClient.
	HTTP *http.Client
}

var _ ledger.Remote = (*LedgerClient)(nil)

// maxResponse bounds any response body: an entry bundle is at most
// 256 × (2 + 65535) bytes.
const maxResponse = 256*(2+ledger.MaxEntrySize) + 1

// get fetches path and returns the body; a 404 becomes ledger.ErrNotFound.
func (c *LedgerClient) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.BaseURL, "/")+"/"+path, nil)
	if err != nil {
		return nil, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes: %w", path, limit, ledger.ErrMalformed)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("GET %s: %w", path, ledger.ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: %s: %.200s", path, resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}

// Checkpoint fetches the latest signed checkpoint with its cosignatures.
func (c *LedgerClient) Checkpoint(ctx context.Context) ([]byte, error) {
	return c.get(ctx, "checkpoint", ledger.MaxNoteSize)
}

// ConsistencyProof fetches a consistency proof from → to.
func (c *LedgerClient) ConsistencyProof(ctx context.Context, from, to int64) (tlog.TreeProof, error) {
	q := url.Values{"from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}}
	body, err := c.get(ctx, "proof/consistency?"+q.Encode(), 64<<10)
	if err != nil {
		return nil, err
	}
	p, err := ledger.ParseProof(body)
	return tlog.TreeProof(p), err
}

// InclusionProof fetches an inclusion proof of index in the tree of size.
func (c *LedgerClient) InclusionProof(ctx context.Context, index, size int64) (tlog.RecordProof, error) {
	q := url.Values{"index": {strconv.FormatInt(index, 10)}, "size": {strconv.FormatInt(size, 10)}}
	body, err := c.get(ctx, "proof/inclusion?"+q.Encode(), 64<<10)
	if err != nil {
		return nil, err
	}
	p, err := ledger.ParseProof(body)
	return tlog.RecordProof(p), err
}

// Entries fetches entries from the entry bundle holding start, returning
// those in [start, end) (at most up to the bundle's end).
func (c *LedgerClient) Entries(ctx context.Context, start, end int64) ([][]byte, error) {
	if start < 0 || start >= end {
		return nil, fmt.Errorf("entries [%d, %d): %w", start, end, ledger.ErrInvalid)
	}
	const w = 256
	n := start / w
	width := min(end-n*w, w)
	body, err := c.get(ctx, ledger.TileRef{Level: ledger.EntriesLevel, N: n, Width: int(width)}.Path(), maxResponse)
	if err != nil {
		return nil, err
	}
	es, err := ledger.ParseEntryBundle(body)
	if err != nil {
		return nil, err
	}
	if int64(len(es)) != width {
		return nil, fmt.Errorf("entry bundle %d has %d entries, want %d: %w", n, len(es), width, ledger.ErrMalformed)
	}
	return es[start-n*w:], nil
}

// SubmitCosignature hands a witness's cosignature line to the log
// (POST {prefix}/cosign?size=).
func (c *LedgerClient) SubmitCosignature(ctx context.Context, size int64, line []byte) error {
	u := strings.TrimSuffix(c.BaseURL, "/") + "/cosign?size=" + strconv.FormatInt(size, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(line))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusOK:
		return nil
	case http.StatusForbidden:
		return fmt.Errorf("cosignature refused: %s: %w", bytes.TrimSpace(msg), ledger.ErrBadSignature)
	case http.StatusNotFound:
		return fmt.Errorf("no checkpoint at size %d: %w", size, ledger.ErrNotFound)
	}
	return fmt.Errorf("cosign: %s: %.200s", resp.Status, bytes.TrimSpace(msg))
}

// errUnexpected marks a response the protocol does not allow.
var errUnexpected = errors.New("ledger server: unexpected response")
