package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// MaxAnswer bounds a node-to-node answer body read by Client.
const MaxAnswer = 4 << 20

// ErrRefused: the peer answered with a refusal. The error also wraps the
// sentinel the peer's code stands for (ErrUnknownKey, ErrReplayed…) when
// it names one.
var ErrRefused = errors.New("node: the peer refused the request")

// ErrAnswerTooLarge: the peer's answer is larger than MaxAnswer.
var ErrAnswerTooLarge = errors.New("node: the peer's answer is too large")

// Client calls one pinned peer as this node. It signs every request with
// Self's key, never sends an Authorization header, and accepts an answer
// only if the peer's pinned key signed it for that very request.
type Client struct {
	Self *Identity
	Peer store.Peer
	// HTTP is the client to send with (a zero http.Client when nil);
	// redirects are never followed.
	HTTP *http.Client
	// Now is the clock signatures are dated and checked by (time.Now
	// when nil).
	Now func() time.Time
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Do sends a signed request with body to path on the peer and returns the
// verified answer's status and body. A refusal (any status but 2xx)
// returns an error wrapping ErrRefused; an answer not signed by the
// peer's pinned key for this request returns one wrapping
// ErrUnauthenticated.
func (c *Client) Do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	key, err := ParseKey(c.Peer.Key)
	if err != nil {
		return 0, nil, fmt.Errorf("pinned key of peer %q: %w", c.Peer.Name, err)
	}
	if !strings.HasPrefix(path, "/") {
		return 0, nil, fmt.Errorf("%w: path %q must start with /", ErrInvalid, path)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Peer.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := c.Self.SignRequest(req, body, c.now()); err != nil {
		return 0, nil, err
	}
	hc := http.Client{}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	// A redirect would carry the signed request elsewhere; the peer's
	// pinned URL is the only one it is sent to.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("peer %q at %s: %w", c.Peer.Name, c.Peer.URL, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil {
		return 0, nil, fmt.Errorf("peer %q: reading the answer: %w", c.Peer.Name, err)
	}
	if len(out) > MaxAnswer {
		return 0, nil, fmt.Errorf("peer %q: %w (over %d bytes)", c.Peer.Name, ErrAnswerTooLarge, MaxAnswer)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, out, c.refused(resp, out, req.Header, key)
	}
	if err := verifyResponse(resp.StatusCode, resp.Header, out, req.Header, key, c.now()); err != nil {
		return 0, nil, fmt.Errorf("peer %q's answer is not signed by its pinned key for this request: %w", c.Peer.Name, err)
	}
	return resp.StatusCode, out, nil
}

// RefusedError is a peer's refusal: its status, its code and fixed text
// (see docs/api.md), and whether the pinned key signed it. It is an
// ErrRefused and, when the code names one, the matching sentinel
// (ErrUnknownKey, ErrReplayed…).
type RefusedError struct {
	Peer    string
	Status  int
	Signed  bool
	Code    string
	Message string
}

func (e *RefusedError) Error() string {
	signed := "unsigned answer"
	if e.Signed {
		signed = "answer signed by the peer"
	}
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("peer %q refused the request (%d, %s): %s", e.Peer, e.Status, signed, msg)
}

func (e *RefusedError) Unwrap() []error {
	if s := refusalFor(e.Code); s != nil {
		return []error{ErrRefused, s}
	}
	return []error{ErrRefused}
}

// refused turns a non-2xx answer into a RefusedError.
func (c *Client) refused(resp *http.Response, body []byte, reqHeader http.Header, key PublicKey) error {
	e := &RefusedError{Peer: c.Peer.Name, Status: resp.StatusCode,
		Signed: verifyResponse(resp.StatusCode, resp.Header, body, reqHeader, key, c.now()) == nil}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		e.Code, e.Message = eb.Error, eb.Message
	}
	return e
}

// Hello calls POST /node/v1/hello, telling the peer selfURL, and returns
// its verified answer.
func (c *Client) Hello(ctx context.Context, selfURL string) (HelloAnswer, error) {
	body, err := json.Marshal(HelloRequest{URL: selfURL})
	if err != nil {
		return HelloAnswer{}, err
	}
	_, out, err := c.Do(ctx, http.MethodPost, "/node/v1/hello", body)
	if err != nil {
		return HelloAnswer{}, err
	}
	var a HelloAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		return HelloAnswer{}, fmt.Errorf("peer %q: the hello answer is not JSON: %w", c.Peer.Name, err)
	}
	if a.Key != c.Peer.Key {
		return HelloAnswer{}, fmt.Errorf("peer %q says its key is %s, but %s is pinned: %w", c.Peer.Name, a.Key, c.Peer.Key, ErrUnknownKey)
	}
	return a, nil
}
