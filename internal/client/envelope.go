package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"time"
)

// Envelope is one page of objects (TAXII 2.1 section 3.7).
type Envelope struct {
	More    bool              `json:"more,omitempty"`
	Next    string            `json:"next,omitempty"`
	Objects []json.RawMessage `json:"objects,omitempty"`
	// From the X-TAXII-Date-Added-First/Last headers; zero when absent.
	DateAddedFirst time.Time `json:"-"`
	DateAddedLast  time.Time `json:"-"`
}

func decodeObjects(dec *json.Decoder, each func(json.RawMessage) error) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("envelope: objects: %w", err)
	}
	if tok == nil {
		return nil // "objects": null is an empty page
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("envelope: objects: want an array, got %v", tok)
	}
	for i := 0; dec.More(); i++ {
		var obj json.RawMessage
		if err := dec.Decode(&obj); err != nil {
			return fmt.Errorf("envelope: object %d: %w", i, err)
		}
		if len(obj) == 0 || obj[0] != '{' {
			return fmt.Errorf("envelope: object %d is not a JSON object", i)
		}
		if err := each(obj); err != nil {
			return err
		}
	}
	return expectDelim(dec, ']')
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("want %q, got %v", want, tok)
	}
	return nil
}

// streamObjects GETs u and hands each object of the page to each.
func (c *Client) streamObjects(ctx context.Context, u *url.URL, reset func(), each func(json.RawMessage) error) (*Envelope, error) {
	req, err := c.newRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp.Body)
	env := &Envelope{
		DateAddedFirst: parseTimestamp(resp.Header.Get("X-TAXII-Date-Added-First")),
		DateAddedLast:  parseTimestamp(resp.Header.Get("X-TAXII-Date-Added-Last")),
	}
	lr := &io.LimitedReader{R: resp.Body, N: c.maxEnvelopeBytes + 1}
	if err := decodeEnvelope(lr, env, reset, each); err != nil {
		if errors.Is(err, errStop) {
			return env, err
		}
		if lr.N <= 0 {
			return nil, fmt.Errorf("%w: GET %s: envelope larger than %d bytes", ErrProtocol, u.Redacted(), c.maxEnvelopeBytes)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("taxii: GET %s: %w", u.Redacted(), ctx.Err())
		}
		return nil, fmt.Errorf("%w: GET %s: %v", ErrProtocol, u.Redacted(), err)
	}
	return env, nil
}

func (c *Client) getEnvelope(ctx context.Context, u *url.URL) (*Envelope, error) {
	var objs []json.RawMessage
	env, err := c.streamObjects(ctx, u, func() { objs = objs[:0] }, func(o json.RawMessage) error {
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		return nil, err
	}
	env.Objects = objs
	return env, nil
}

// GetObjects fetches one page of a collection's objects. ErrNotFound for an
// unknown collection, ErrUnauthorized when it is not readable.
func (c *Client) GetObjects(ctx context.Context, root, coll string, f Filter) (*Envelope, error) {
	u, err := c.endpoint(root, "collections", coll, "objects")
	if err != nil {
		return nil, err
	}
	return c.getEnvelope(ctx, withQuery(u, f.Query()))
}

// GetObject fetches the versions of one object that f selects (by default the
// latest). ErrNotFound when the object is absent or not visible.
func (c *Client) GetObject(ctx context.Context, root, coll, id string, f Filter) (*Envelope, error) {
	u, err := c.endpoint(root, "collections", coll, "objects", id)
	if err != nil {
		return nil, err
	}
	return c.getEnvelope(ctx, withQuery(u, f.Query()))
}

// AllObjects yields every object the filter selects, page by page (see
// Pages). On error the sequence yields (nil, err) once, after the objects
// read before it, and stops.
func (c *Client) AllObjects(ctx context.Context, root, coll string, f Filter) iter.Seq2[json.RawMessage, error] {
	return func(yield func(json.RawMessage, error) bool) {
		for env, err := range c.Pages(ctx, root, coll, f) {
			for _, o := range env.Objects {
				if !yield(o, nil) {
					return
				}
			}
			if err != nil {
				yield(nil, err)
				return
			}
		}
	}
}

// Pages yields the pages of objects the filter selects. It follows `next`
// when the server gives one; when a server says `more` without `next` it
// pages with added_after set to the page's X-TAXII-Date-Added-Last header,
// as section 3.4.2 allows. A page that claims more but makes no progress
// ends the sequence with ErrProtocol. On error it yields the objects read
// before it with the error (the envelope is never nil), then stops.
//
// It reads one page ahead: while the caller works on page k, page k+1 is
// already being fetched, so the server's work on the next page overlaps the
// caller's on this one (a client reading a large collection alone
// otherwise leaves the server idle half the time). At most two pages are
// held: the one yielded and the next. Stopping early cancels the read ahead.
func (c *Client) Pages(ctx context.Context, root, coll string, f Filter) iter.Seq2[*Envelope, error] {
	return func(yield func(*Envelope, error) bool) {
		u, err := c.endpoint(root, "collections", coll, "objects")
		if err != nil {
			yield(&Envelope{}, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		type page struct {
			env *Envelope
			err error
		}
		fetch := func(f Filter) <-chan page {
			ch := make(chan page, 1)
			go func() {
				var objs []json.RawMessage
				env, err := c.streamObjects(ctx, withQuery(u, f.Query()), func() { objs = objs[:0] }, func(o json.RawMessage) error {
					objs = append(objs, o)
					return nil
				})
				if env == nil {
					env = &Envelope{}
				}
				env.Objects = objs
				ch <- page{env, err}
			}()
			return ch
		}
		cur := fetch(f)
		for {
			p := <-cur
			var ahead <-chan page
			err := p.err
			if err == nil && p.env.More {
				switch n := len(p.env.Objects); {
				case p.env.Next != "":
					if p.env.Next == f.Next && n == 0 {
						err = fmt.Errorf("%w: server repeats next=%q without objects", ErrProtocol, p.env.Next)
						break
					}
					f.Next = p.env.Next
					ahead = fetch(f)
				case !p.env.DateAddedLast.IsZero() && n > 0 && p.env.DateAddedLast.After(f.AddedAfter):
					f.AddedAfter = p.env.DateAddedLast
					ahead = fetch(f)
				default:
					err = fmt.Errorf("%w: more=true without next or a later X-TAXII-Date-Added-Last", ErrProtocol)
				}
			}
			if !yield(p.env, err) || err != nil || ahead == nil {
				cancel()
				if ahead != nil {
					<-ahead
				}
				return
			}
			cur = ahead
		}
	}
}
