// Package client is parley's HTTP client, what a party's side runs: the Go
// code the CLI, the tests and the benchmarks use to talk to a parley server
// (or, for TAXII, any TAXII 2.1 server). One Client, with the party's
// token, speaks both of the server's client-facing surfaces:
//
//   - TAXII 2.1 (client.go, resources.go, envelope.go, push.go): media
//     types and the Accept/Content-Type headers, token authentication, the
//     filter query parameters, following `more`/`next` pagination, decoding
//     envelopes as a token stream so that a large page is never held twice,
//     pushing a STIX bundle of any size in envelopes the server accepts, and
//     turning TAXII error resources into typed errors (*Error wrapping
//     ErrNotFound, ErrUnauthorized, ErrTooLarge, ErrUnsupportedMedia) that
//     callers branch on with errors.Is.
//   - The management API under /api/v1 (manage.go for keys and agreements,
//     escrow.go for handovers and requests, matches.go, contests.go,
//     reports.go, verifications.go, mirrors.go, ledger.go for openings), in
//     the JSON shapes of package wire, and local helpers of those steps
//     (sealing.go seals deposits to the recipient).
//
// Verifying the ledger is not here: that is internal/audit, which uses
// this package to fetch what it checks.
//
// # What it must never do
//
// It never decides what a party may read or write (that is the server's
// internal/exchange), never validates STIX content beyond "each object is a
// JSON object" (that is internal/stix), and never imports any server package,
// so that it behaves exactly like a third-party client would.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/wire"
)

// MediaTypeTAXII is the TAXII 2.1 media type sent in Accept and Content-Type.
const MediaTypeTAXII = wire.MediaTAXII

// Default limits on what the client reads from a server; a hostile or broken
// server must not make a client allocate without bound.
const (
	DefaultMaxResourceBytes = 16 << 20 // discovery, collections, status, errors
	DefaultMaxEnvelopeBytes = 1 << 30  // one page of objects, streamed
	maxErrorBodyBytes       = 64 << 10
)

// Sentinel errors. A *Error from a server response wraps exactly one of the
// first four when its HTTP status maps to it; ErrProtocol marks responses
// that do not follow TAXII 2.1 (wrong media type, malformed JSON). The
// first three wrap their fault kind.
var (
	ErrNotFound         = fault.Generic(fault.NotFound, "taxii: not found")           // 404
	ErrUnauthorized     = fault.Generic(fault.Unauthenticated, "taxii: unauthorized") // 401, 403
	ErrTooLarge         = fault.Generic(fault.TooLarge, "taxii: request too large")   // 413, or an object above max_content_length
	ErrUnsupportedMedia = errors.New("taxii: unsupported media type")                 // 406, 415
	ErrProtocol         = errors.New("taxii: response violates TAXII 2.1")            // bad media type, bad JSON, paging loops
	ErrNotLoopback      = errors.New("taxii: host is not a loopback address")         // see RequireLoopback
)

// Error is a non-2xx response. It carries the TAXII error resource when the
// server sent one (section 3.6.1) and unwraps to the sentinel for its status.
type Error struct {
	Method     string // request method
	URL        string // request URL
	StatusCode int    // HTTP status of the response

	Title           string         `json:"title"`
	Description     string         `json:"description,omitempty"`
	ErrorID         string         `json:"error_id,omitempty"`
	ErrorCode       string         `json:"error_code,omitempty"`
	HTTPStatus      string         `json:"http_status,omitempty"`
	ExternalDetails string         `json:"external_details,omitempty"`
	Details         map[string]any `json:"details,omitempty"`
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "taxii: %s %s: %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Title != "" {
		b.WriteString(": ")
		b.WriteString(e.Title)
	}
	if e.Description != "" {
		b.WriteString(" (")
		b.WriteString(e.Description)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap maps the HTTP status to a sentinel so that errors.Is works.
func (e *Error) Unwrap() error {
	switch e.StatusCode {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrUnauthorized
	case http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case http.StatusUnsupportedMediaType, http.StatusNotAcceptable:
		return ErrUnsupportedMedia
	}
	return nil
}

// Client talks to one TAXII 2.1 server. It is safe for concurrent use.
type Client struct {
	base             *url.URL
	hc               *http.Client
	authorize        func(*http.Request)
	userAgent        string
	maxResourceBytes int64
	maxEnvelopeBytes int64
	pollInterval     time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithToken authenticates with "Authorization: Bearer <token>" (the default form).
func WithToken(token string) Option {
	return func(c *Client) {
		c.authorize = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	}
}

// WithBasicAuth authenticates with HTTP Basic, user and token as password;
// existing TAXII servers (medallion among them) only speak Basic.
func WithBasicAuth(user, password string) Option {
	return func(c *Client) {
		c.authorize = func(r *http.Request) { r.SetBasicAuth(user, password) }
	}
}

// WithHTTPClient replaces the *http.Client (timeouts, transport, proxies).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.hc = hc }
}

// WithTLSConfig uses a transport with the given TLS configuration (private CA,
// client certificates).
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *Client) {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = cfg
		c.hc = &http.Client{Transport: t}
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// WithMaxEnvelopeBytes bounds the bytes read for one page of objects.
func WithMaxEnvelopeBytes(n int64) Option {
	return func(c *Client) { c.maxEnvelopeBytes = n }
}

// WithPollInterval sets how often WaitStatus polls a pending status.
func WithPollInterval(d time.Duration) Option {
	return func(c *Client) { c.pollInterval = d }
}

// New returns a client for the server at baseURL (scheme, host and the path
// under which the server lives, e.g. "https://taxii.example/"). API roots
// passed to methods are either absolute URLs (as discovery lists them) or
// paths resolved against baseURL.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("taxii: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("taxii: base URL %q: scheme must be http or https", baseURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("taxii: base URL %q: no host", baseURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery, u.Fragment = "", ""
	c := &Client{
		base:             u,
		hc:               &http.Client{Timeout: 10 * time.Minute},
		authorize:        func(*http.Request) {},
		userAgent:        "parley-taxii-client/1",
		maxResourceBytes: DefaultMaxResourceBytes,
		maxEnvelopeBytes: DefaultMaxEnvelopeBytes,
		pollInterval:     200 * time.Millisecond,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// RequireLoopback returns an error wrapping ErrNotLoopback unless rawURL's
// host is localhost or a loopback IP address; load generators call it so
// that they can only ever hit a server on this machine.
func RequireLoopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("taxii: %w", err)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %q", ErrNotLoopback, host)
}

// BaseURL returns the server base URL the client resolves paths against.
func (c *Client) BaseURL() string { return c.base.String() }

// rootURL resolves an API root name, path or URL to an absolute URL ending in "/".
func (c *Client) rootURL(root string) (*url.URL, error) {
	if root == "" {
		return nil, errors.New("taxii: empty API root")
	}
	r, err := url.Parse(root)
	if err != nil {
		return nil, fmt.Errorf("taxii: API root %q: %w", root, err)
	}
	u := c.base.ResolveReference(r)
	// Credentials go with every request: never to a host the caller did not
	// name in the base URL, whatever a discovery document lists.
	if u.Scheme != c.base.Scheme || u.Host != c.base.Host {
		return nil, fmt.Errorf("taxii: API root %q is not on %s://%s", root, c.base.Scheme, c.base.Host)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// endpoint builds root + segments with a trailing "/". Each segment is
// path-escaped, so an id holding "/" or ".." cannot leave its place.
func (c *Client) endpoint(root string, segments ...string) (*url.URL, error) {
	u, err := c.rootURL(root)
	if err != nil {
		return nil, err
	}
	raw, path := u.EscapedPath(), u.Path
	for _, s := range segments {
		if s == "" {
			return nil, errors.New("taxii: empty path segment")
		}
		raw += url.PathEscape(s) + "/"
		path += s + "/"
	}
	u.Path, u.RawPath = path, raw
	return u, nil
}

// newRequest sets the headers every TAXII request carries.
func (c *Client) newRequest(ctx context.Context, method string, u *url.URL, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("taxii: %w", err)
	}
	req.Header.Set("Accept", MediaTypeTAXII)
	if body != nil {
		req.Header.Set("Content-Type", MediaTypeTAXII)
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	c.authorize(req)
	return req, nil
}

// do sends req and returns the response when it is 2xx with a TAXII media
// type; otherwise it drains and closes the body and returns an error.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("taxii: %s %s: %w", req.Method, req.URL, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer closeBody(resp.Body)
		return nil, errorFromResponse(req, resp)
	}
	if resp.StatusCode == http.StatusNoContent || req.Method == http.MethodDelete {
		return resp, nil
	}
	if err := checkMediaType(resp.Header.Get("Content-Type")); err != nil {
		closeBody(resp.Body)
		return nil, fmt.Errorf("%w: %s %s: %v", ErrProtocol, req.Method, req.URL, err)
	}
	return resp, nil
}

func closeBody(b io.ReadCloser) {
	// Draining a little lets the connection be reused; a huge body is not worth it.
	_, _ = io.Copy(io.Discard, io.LimitReader(b, 64<<10))
	_ = b.Close()
}

// checkMediaType accepts application/taxii+json with version 2.1 or no
// version (servers that omit it mean their only version).
func checkMediaType(ct string) error {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("Content-Type %q: %v", ct, err)
	}
	if mt != wire.MediaTypeTAXII {
		return fmt.Errorf("Content-Type %q is not application/taxii+json", ct)
	}
	if v, ok := params["version"]; ok && v != "2.1" {
		return fmt.Errorf("Content-Type %q: version %q is not 2.1", ct, v)
	}
	return nil
}

// errorFromResponse builds an *Error, decoding the error resource when the
// body holds one; a body that is not JSON (a proxy's HTML page) still yields
// an *Error with the status.
func errorFromResponse(req *http.Request, resp *http.Response) error {
	e := &Error{Method: req.Method, URL: req.URL.Redacted(), StatusCode: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	var res struct {
		Title           string          `json:"title"`
		Description     string          `json:"description"`
		ErrorID         string          `json:"error_id"`
		ErrorCode       string          `json:"error_code"`
		HTTPStatus      json.RawMessage `json:"http_status"`
		ExternalDetails string          `json:"external_details"`
		Details         map[string]any  `json:"details"`
	}
	if json.Unmarshal(body, &res) == nil {
		e.Title, e.Description, e.ErrorID, e.ErrorCode = res.Title, res.Description, res.ErrorID, res.ErrorCode
		e.ExternalDetails, e.Details = res.ExternalDetails, res.Details
		// The spec says string; medallion and others send a number.
		e.HTTPStatus = strings.Trim(string(res.HTTPStatus), `"`)
	}
	return e
}

// getResource GETs a small resource and decodes it into v.
func (c *Client) getResource(ctx context.Context, u *url.URL, v any) (http.Header, error) {
	return c.getResourceLimit(ctx, u, c.maxResourceBytes, v)
}

// getResourceLimit is getResource with an explicit size bound, for pages
// (manifests, versions) that grow with the collection.
func (c *Client) getResourceLimit(ctx context.Context, u *url.URL, limit int64, v any) (http.Header, error) {
	req, err := c.newRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp.Body)
	if err := decodeResource(resp.Body, limit, v); err != nil {
		return nil, fmt.Errorf("%w: GET %s: %v", ErrProtocol, u.Redacted(), err)
	}
	return resp.Header, nil
}

func decodeResource(r io.Reader, limit int64, v any) error {
	lr := &io.LimitedReader{R: r, N: limit + 1}
	body, err := io.ReadAll(lr)
	if err != nil {
		return err
	}
	if int64(len(body)) > limit {
		return fmt.Errorf("resource larger than %d bytes", limit)
	}
	return json.Unmarshal(body, v)
}
