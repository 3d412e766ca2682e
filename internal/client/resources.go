package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Discovery is the discovery resource (TAXII 2.1 section 4.1.1).
type Discovery struct {
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Contact     string   `json:"contact,omitempty"`
	Default     string   `json:"default,omitempty"`
	APIRoots    []string `json:"api_roots,omitempty"`
}

// APIRoot is the API root resource (section 4.2.1).
type APIRoot struct {
	Title            string   `json:"title"`
	Description      string   `json:"description,omitempty"`
	Versions         []string `json:"versions"`
	MaxContentLength int64    `json:"max_content_length"`
}

// Collection is the collection resource (section 5.2.1).
type Collection struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Alias       string   `json:"alias,omitempty"`
	CanRead     bool     `json:"can_read"`
	CanWrite    bool     `json:"can_write"`
	MediaTypes  []string `json:"media_types,omitempty"`
}

// StatusDetails is one entry of a status resource's successes/failures/pendings.
type StatusDetails struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Message string `json:"message,omitempty"`
}

// Status is the status resource (section 4.3.1).
type Status struct {
	ID               string          `json:"id"`
	Status           string          `json:"status"` // "complete" or "pending"
	RequestTimestamp string          `json:"request_timestamp,omitempty"`
	TotalCount       int             `json:"total_count"`
	SuccessCount     int             `json:"success_count"`
	Successes        []StatusDetails `json:"successes,omitempty"`
	FailureCount     int             `json:"failure_count"`
	Failures         []StatusDetails `json:"failures,omitempty"`
	PendingCount     int             `json:"pending_count"`
	Pendings         []StatusDetails `json:"pendings,omitempty"`
}

// Complete reports whether the server has finished processing the request.
func (s *Status) Complete() bool { return s.Status == "complete" }

// ManifestRecord is one entry of a manifest (section 5.3.1).
type ManifestRecord struct {
	ID        string `json:"id"`
	DateAdded string `json:"date_added"`
	Version   string `json:"version"`
	MediaType string `json:"media_type,omitempty"`
}

// Manifest is one page of a collection's manifest.
type Manifest struct {
	More    bool             `json:"more,omitempty"`
	Next    string           `json:"next,omitempty"`
	Objects []ManifestRecord `json:"objects,omitempty"`
	// From the X-TAXII-Date-Added-First/Last headers; zero when absent.
	DateAddedFirst time.Time `json:"-"`
	DateAddedLast  time.Time `json:"-"`
}

// Versions is one page of an object's versions (section 5.8.1).
type Versions struct {
	More     bool     `json:"more,omitempty"`
	Next     string   `json:"next,omitempty"`
	Versions []string `json:"versions,omitempty"`
	// From the X-TAXII-Date-Added-First/Last headers; zero when absent.
	DateAddedFirst time.Time `json:"-"`
	DateAddedLast  time.Time `json:"-"`
}

// Filter holds the TAXII 2.1 filtering and paging parameters (section 3.4).
// Zero values are omitted from the query.
type Filter struct {
	IDs          []string  // match[id]
	Types        []string  // match[type]
	Versions     []string  // match[version]: "all", "first", "last" or timestamps
	SpecVersions []string  // match[spec_version]
	AddedAfter   time.Time // added_after
	Limit        int       // limit
	Next         string    // next
}

// TimestampFormat is how the client writes TAXII timestamps: RFC 3339 in UTC
// with microseconds, which is what the spec's examples and medallion parse.
const TimestampFormat = "2006-01-02T15:04:05.000000Z"

// Query encodes the filter as URL query parameters.
func (f Filter) Query() url.Values {
	q := url.Values{}
	add := func(k string, vs []string) {
		if len(vs) > 0 {
			q.Set(k, strings.Join(vs, ","))
		}
	}
	add("match[id]", f.IDs)
	add("match[type]", f.Types)
	add("match[version]", f.Versions)
	add("match[spec_version]", f.SpecVersions)
	if !f.AddedAfter.IsZero() {
		q.Set("added_after", f.AddedAfter.UTC().Format(TimestampFormat))
	}
	if f.Limit > 0 {
		q.Set("limit", fmt.Sprint(f.Limit))
	}
	if f.Next != "" {
		q.Set("next", f.Next)
	}
	return q
}

func withQuery(u *url.URL, q url.Values) *url.URL {
	v := *u
	v.RawQuery = q.Encode()
	return &v
}

// parseTimestamp reads a TAXII timestamp header; an absent or malformed one is
// zero, because the headers are advisory.
func parseTimestamp(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// Discovery fetches the discovery resource at <base>/taxii2/ (or at the base
// URL itself when it already ends in /taxii2/). ErrNotFound, ErrUnauthorized.
func (c *Client) Discovery(ctx context.Context) (*Discovery, error) {
	u := c.base
	if !strings.HasSuffix(u.Path, "/taxii2/") {
		u = u.JoinPath("taxii2") // JoinPath drops the trailing slash
		u.Path += "/"
	}
	var d Discovery
	if _, err := c.getResource(ctx, u, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// APIRoot fetches an API root's information. ErrNotFound, ErrUnauthorized.
func (c *Client) APIRoot(ctx context.Context, root string) (*APIRoot, error) {
	u, err := c.rootURL(root)
	if err != nil {
		return nil, err
	}
	var a APIRoot
	if _, err := c.getResource(ctx, u, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Collections lists the collections of an API root. An API root without
// collections yields an empty slice, not an error.
func (c *Client) Collections(ctx context.Context, root string) ([]Collection, error) {
	u, err := c.endpoint(root, "collections")
	if err != nil {
		return nil, err
	}
	var res struct {
		Collections []Collection `json:"collections"`
	}
	if _, err := c.getResource(ctx, u, &res); err != nil {
		return nil, err
	}
	return res.Collections, nil
}

// Collection fetches one collection. ErrNotFound, ErrUnauthorized.
func (c *Client) Collection(ctx context.Context, root, id string) (*Collection, error) {
	u, err := c.endpoint(root, "collections", id)
	if err != nil {
		return nil, err
	}
	var col Collection
	if _, err := c.getResource(ctx, u, &col); err != nil {
		return nil, err
	}
	return &col, nil
}

// Status fetches a status resource. ErrNotFound once the server forgot it.
func (c *Client) Status(ctx context.Context, root, id string) (*Status, error) {
	u, err := c.endpoint(root, "status", id)
	if err != nil {
		return nil, err
	}
	var s Status
	if _, err := c.getResource(ctx, u, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// WaitStatus polls a status until it is complete or ctx ends.
func (c *Client) WaitStatus(ctx context.Context, root string, s *Status) (*Status, error) {
	for !s.Complete() {
		t := time.NewTimer(c.pollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return s, fmt.Errorf("taxii: waiting on status %s: %w", s.ID, ctx.Err())
		case <-t.C:
		}
		next, err := c.Status(ctx, root, s.ID)
		if err != nil {
			return s, err
		}
		s = next
	}
	return s, nil
}

// AddObjects posts one envelope holding objects. Each object must be a JSON
// object. The returned status may be pending: see WaitStatus. ErrTooLarge when
// the server refuses the size, ErrUnauthorized when the collection is not
// writable, ErrUnsupportedMedia when it refuses the media type.
func (c *Client) AddObjects(ctx context.Context, root, coll string, objects []json.RawMessage) (*Status, error) {
	body, err := encodeEnvelope(objects)
	if err != nil {
		return nil, err
	}
	return c.postEnvelope(ctx, root, coll, body)
}

// encodeEnvelope writes {"objects":[...]} without re-encoding each object.
func encodeEnvelope(objects []json.RawMessage) ([]byte, error) {
	n := envelopeOverhead
	for _, o := range objects {
		n += len(o) + 1
	}
	var b bytes.Buffer
	b.Grow(n)
	b.WriteString(`{"objects":[`)
	for i, o := range objects {
		t := bytes.TrimSpace(o)
		if len(t) == 0 || t[0] != '{' || !json.Valid(t) {
			return nil, fmt.Errorf("taxii: object %d is not a JSON object", i)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(t)
	}
	b.WriteString(`]}`)
	return b.Bytes(), nil
}

// envelopeOverhead is len(`{"objects":[`) + len(`]}`).
const envelopeOverhead = 14

func (c *Client) postEnvelope(ctx context.Context, root, coll string, body []byte) (*Status, error) {
	u, err := c.endpoint(root, "collections", coll, "objects")
	if err != nil {
		return nil, err
	}
	req, err := c.newRequest(ctx, http.MethodPost, u, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp.Body)
	var s Status
	if err := decodeResource(resp.Body, c.maxResourceBytes, &s); err != nil {
		return nil, fmt.Errorf("%w: POST %s: status: %v", ErrProtocol, u.Redacted(), err)
	}
	return &s, nil
}

// DeleteObject deletes an object (all versions, or those f.Versions and
// f.SpecVersions select). ErrNotFound, ErrUnauthorized.
func (c *Client) DeleteObject(ctx context.Context, root, coll, id string, f Filter) error {
	u, err := c.endpoint(root, "collections", coll, "objects", id)
	if err != nil {
		return err
	}
	req, err := c.newRequest(ctx, http.MethodDelete, withQuery(u, Filter{Versions: f.Versions, SpecVersions: f.SpecVersions}.Query()), nil)
	if err != nil {
		return err
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	closeBody(resp.Body)
	return nil
}

// Versions lists one page of an object's versions. ErrNotFound.
func (c *Client) Versions(ctx context.Context, root, coll, id string, f Filter) (*Versions, error) {
	u, err := c.endpoint(root, "collections", coll, "objects", id, "versions")
	if err != nil {
		return nil, err
	}
	var v Versions
	h, err := c.getResourceLimit(ctx, withQuery(u, f.Query()), c.maxEnvelopeBytes, &v)
	if err != nil {
		return nil, err
	}
	v.DateAddedFirst = parseTimestamp(h.Get("X-TAXII-Date-Added-First"))
	v.DateAddedLast = parseTimestamp(h.Get("X-TAXII-Date-Added-Last"))
	return &v, nil
}

// Manifest lists one page of a collection's manifest.
func (c *Client) Manifest(ctx context.Context, root, coll string, f Filter) (*Manifest, error) {
	u, err := c.endpoint(root, "collections", coll, "manifest")
	if err != nil {
		return nil, err
	}
	var m Manifest
	h, err := c.getResourceLimit(ctx, withQuery(u, f.Query()), c.maxEnvelopeBytes, &m)
	if err != nil {
		return nil, err
	}
	m.DateAddedFirst = parseTimestamp(h.Get("X-TAXII-Date-Added-First"))
	m.DateAddedLast = parseTimestamp(h.Get("X-TAXII-Date-Added-Last"))
	return &m, nil
}

var errStop = errors.New("stop")
