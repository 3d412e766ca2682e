package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrRejected means the server's status resources reported failures for some
// objects of a push; the others were accepted.
var ErrRejected = errors.New("taxii: server rejected objects")

// ErrMalformedBundle means the bundle being pushed (a local file or stdin,
// not a server response) is not a STIX bundle or JSON array of objects.
var ErrMalformedBundle = errors.New("not a STIX bundle")

// RejectedError lists every object the statuses of a push refused; it
// unwraps to ErrRejected. Callers that summarise a push count the refusals
// by Message.
type RejectedError struct {
	Failures []StatusDetails
}

func (e *RejectedError) Error() string {
	f := e.Failures[0]
	return fmt.Sprintf("%v: %d objects, first %s: %s", ErrRejected, len(e.Failures), f.ID, f.Message)
}

func (e *RejectedError) Unwrap() error { return ErrRejected }

// DefaultEnvelopeSize is the number of objects per envelope when none is given.
const DefaultEnvelopeSize = 1000

// PushOptions tunes PushBundleWith.
type PushOptions struct {
	// EnvelopeSize is the most objects per envelope (DefaultEnvelopeSize if 0).
	// Envelopes are also cut so that none exceeds the API root's
	// max_content_length.
	EnvelopeSize int
	// Skip is the number of leading objects of the bundle not to send: pass
	// the sum of earlier calls' results to resume an interrupted push.
	Skip int
	// Total is the bundle's object count if known (CountBundle), else 0; it is
	// only passed on to Progress, as -1 when unknown.
	Total int
	// Progress, if set, is called after each acknowledged envelope with the
	// number of the bundle's objects sent so far (skipped ones included).
	Progress func(sent, total int)
}

// PushBundle streams the STIX bundle read from r into the collection in
// envelopes of envelopeSize objects; see PushBundleWith.
func (c *Client) PushBundle(ctx context.Context, root, coll string, r io.Reader, envelopeSize int, progress func(sent, total int)) (int, error) {
	return c.PushBundleWith(ctx, root, coll, r, PushOptions{EnvelopeSize: envelopeSize, Progress: progress})
}

// PushBundleWith streams a STIX bundle of any size (or a bare JSON array of
// objects) from r into a collection. It holds at most one envelope in memory,
// keeps every envelope within the API root's max_content_length, halves an
// envelope the server still refuses with 413, and waits at the end for any
// status the server left pending.
//
// It returns how many objects this call got acknowledged. After a failure the
// caller resumes by calling again with Skip increased by that count. Errors:
// ErrTooLarge for a single object above max_content_length, ErrRejected
// (after sending everything) when statuses report failures (*RejectedError carries every failure), ErrMalformedBundle
// for input that is not a bundle, and whatever AddObjects returns.
func (c *Client) PushBundleWith(ctx context.Context, root, coll string, r io.Reader, o PushOptions) (int, error) {
	size := o.EnvelopeSize
	if size <= 0 {
		size = DefaultEnvelopeSize
	}
	total := o.Total
	if total <= 0 {
		total = -1
	}
	info, err := c.APIRoot(ctx, root)
	if err != nil {
		return 0, err
	}
	maxLen := info.MaxContentLength

	var (
		batch      []json.RawMessage
		batchBytes = envelopeOverhead
		index      = 0 // position in the bundle of the object being read
		sent       = 0
		pending    []*Status
		failures   []StatusDetails
	)
	record := func(s *Status) {
		if !s.Complete() {
			pending = append(pending, s)
		}
		failures = append(failures, s.Failures...)
	}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := c.postSplitting(ctx, root, coll, batch, record); err != nil {
			return err
		}
		sent += len(batch)
		batch, batchBytes = batch[:0], envelopeOverhead
		if o.Progress != nil {
			o.Progress(o.Skip+sent, total)
		}
		return nil
	}
	each := func(obj json.RawMessage) error {
		index++
		if index <= o.Skip {
			return nil
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, obj); err != nil {
			return fmt.Errorf("%w: object %d: %v", ErrMalformedBundle, index, err)
		}
		obj = buf.Bytes()
		if maxLen > 0 && int64(envelopeOverhead+len(obj)) > maxLen {
			return fmt.Errorf("%w: bundle object %d (%s) is %d bytes, over the API root's max_content_length %d",
				ErrTooLarge, index, objectID(obj), len(obj), maxLen)
		}
		if len(batch) == size || (maxLen > 0 && int64(batchBytes+len(obj)+1) > maxLen) {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, obj)
		batchBytes += len(obj) + 1
		return nil
	}
	if err := decodeBundle(r, each); err != nil {
		return sent, err
	}
	if err := flush(); err != nil {
		return sent, err
	}
	for _, s := range pending {
		done, err := c.WaitStatus(ctx, root, s)
		if err != nil {
			return sent, err
		}
		failures = append(failures, done.Failures...)
	}
	if len(failures) > 0 {
		return sent, &RejectedError{Failures: failures}
	}
	return sent, nil
}

// postSplitting posts batch, halving it while the server answers 413.
func (c *Client) postSplitting(ctx context.Context, root, coll string, batch []json.RawMessage, record func(*Status)) error {
	s, err := c.AddObjects(ctx, root, coll, batch)
	if errors.Is(err, ErrTooLarge) && len(batch) > 1 {
		half := len(batch) / 2
		if err := c.postSplitting(ctx, root, coll, batch[:half], record); err != nil {
			return err
		}
		return c.postSplitting(ctx, root, coll, batch[half:], record)
	}
	if err != nil {
		if len(batch) == 1 {
			return fmt.Errorf("object %s: %w", objectID(batch[0]), err)
		}
		return err
	}
	record(s)
	return nil
}

func objectID(obj json.RawMessage) string {
	var v struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(obj, &v) != nil || v.ID == "" {
		return "without id"
	}
	return v.ID
}

// CountBundle counts the objects of a bundle (or bare array) by streaming it,
// for a progress total before PushBundleWith.
func CountBundle(r io.Reader) (int, error) {
	n := 0
	err := decodeBundle(r, func(json.RawMessage) error { n++; return nil })
	return n, err
}

// decodeBundle streams the objects of a STIX bundle, or of a bare JSON array
// of objects, to each. Other bundle members are skipped unread.
func decodeBundle(r io.Reader, each func(json.RawMessage) error) error {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedBundle, err)
	}
	// Errors from each (network, server) pass through untouched; everything
	// else is a malformed bundle.
	cb := func(o json.RawMessage) error {
		if err := each(o); err != nil {
			return callbackError{err}
		}
		return nil
	}
	wrap := func(err error) error {
		var ce callbackError
		if errors.As(err, &ce) {
			return ce.err
		}
		return fmt.Errorf("%w: %v", ErrMalformedBundle, err)
	}
	switch tok {
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			var obj json.RawMessage
			if err := dec.Decode(&obj); err != nil {
				return wrap(fmt.Errorf("object %d: %w", i, err))
			}
			if obj[0] != '{' {
				return wrap(fmt.Errorf("object %d is not a JSON object", i))
			}
			if err := cb(obj); err != nil {
				return wrap(err)
			}
		}
		if err := expectDelim(dec, ']'); err != nil {
			return wrap(err)
		}
	case json.Delim('{'):
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return wrap(err)
			}
			if k != "objects" {
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return wrap(err)
				}
				continue
			}
			if err := decodeObjects(dec, cb); err != nil {
				return wrap(err)
			}
		}
		if err := expectDelim(dec, '}'); err != nil {
			return wrap(err)
		}
	default:
		return fmt.Errorf("%w: want a JSON object or array, got %v", ErrMalformedBundle, tok)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the bundle", ErrMalformedBundle)
	}
	return nil
}

// callbackError marks an error returned by decodeBundle's callback.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }
