package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/parley-cti/parley/internal/wire"
)

// MirrorSpec defines a mirror: the source (a TAXII 2.1 API root URL and a
// collection id in it, with its credential) and the agreement it feeds.
type MirrorSpec = wire.MirrorSpec

// Mirror is one of the party's mirrors with its progress. SourceToken is
// "[redacted]" when a token is set: the server never returns it.
type Mirror = wire.Mirror

// AddMirror defines a mirror (POST /api/v1/mirrors); the server starts
// pulling at once.
func (c *Client) AddMirror(ctx context.Context, spec MirrorSpec) (*Mirror, error) {
	var out Mirror
	_, err := c.call(ctx, http.MethodPost, "/api/v1/mirrors", spec, &out)
	return &out, err
}

// Mirrors lists the party's mirrors with their progress.
func (c *Client) Mirrors(ctx context.Context) ([]Mirror, error) {
	var out struct {
		Mirrors []Mirror `json:"mirrors"`
	}
	_, err := c.call(ctx, http.MethodGet, "/api/v1/mirrors", nil, &out)
	return out.Mirrors, err
}

// MirrorStatus returns one of the party's mirrors.
func (c *Client) MirrorStatus(ctx context.Context, id string) (*Mirror, error) {
	var out Mirror
	_, err := c.call(ctx, http.MethodGet, "/api/v1/mirrors/"+url.PathEscape(id), nil, &out)
	return &out, err
}

// RemoveMirror deletes one of the party's mirrors; what it stored stays.
func (c *Client) RemoveMirror(ctx context.Context, id string) error {
	_, err := c.call(ctx, http.MethodDelete, "/api/v1/mirrors/"+url.PathEscape(id), nil, nil)
	return err
}
