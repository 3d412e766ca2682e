package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// mediaTypeTAXII is what the mirror asks for and accepts.
const mediaTypeTAXII = "application/taxii+json;version=2.1"

// page is one envelope of objects from a source.
type page struct {
	Objects []json.RawMessage
	More    bool
	Next    string
	// DateAddedLast is the source's X-TAXII-Date-Added-Last header, as
	// written ("" when it sent none).
	DateAddedLast string
}

// sourceError is a failed fetch: what to tell the party, and how long the
// source asked the mirror to wait (0: it did not say).
type sourceError struct {
	msg        string
	status     int // HTTP status; 0 when no response came
	retryAfter time.Duration
	cause      error // a sentinel of ours behind it, if any (ErrPrivateSource)
}

func (e *sourceError) Error() string { return e.msg }
func (e *sourceError) Unwrap() error { return e.cause }

// privateAddress is checkAddress's refusal: ip is not public.
type privateAddress struct{ ip netip.Addr }

func (e *privateAddress) Error() string {
	return "the source resolves to " + e.ip.String() + ", which is not a public address; the operator may allow such sources with parley serve --mirror-allow-private"
}
func (e *privateAddress) Unwrap() error { return ErrPrivateSource }

// errPaging marks a source that rejected a stored paging token; the pull
// starts the session again from added_after.
var errPaging = errors.New("mirror: the source refused the paging token")

// objectsURL is the source collection's objects endpoint with the cursor's
// query parameters.
func objectsURL(apiRoot, collection string, limit int, addedAfter, next string) (string, error) {
	u, err := url.Parse(apiRoot)
	if err != nil {
		return "", err
	}
	u = u.JoinPath("collections", collection, "objects")
	u.Path += "/"
	if u.RawPath != "" {
		u.RawPath += "/"
	}
	q := url.Values{}
	q.Set("limit", strconv.Itoa(limit))
	if addedAfter != "" {
		q.Set("added_after", addedAfter)
	}
	if next != "" {
		q.Set("next", next)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// fetch GETs one page. The request carries the source credential; the
// error never does.
func (s *Service) fetch(ctx context.Context, hc *http.Client, rawURL, user, token string) (page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return page{}, &sourceError{msg: "the source URL is not usable"}
	}
	req.Header.Set("Accept", mediaTypeTAXII)
	req.Header.Set("User-Agent", "parley-mirror/1")
	switch {
	case user != "":
		req.SetBasicAuth(user, token)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return page{}, ctx.Err()
		}
		if pa := (*privateAddress)(nil); errors.As(err, &pa) {
			return page{}, &sourceError{msg: "refused: " + pa.Error(), cause: ErrPrivateSource}
		}
		return page{}, &sourceError{msg: "the source did not answer: " + transportReason(err)}
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &sourceError{status: resp.StatusCode, msg: fmt.Sprintf("the source answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			e.retryAfter = retryAfter(resp.Header.Get("Retry-After"), s.now())
		}
		if title := errorTitle(resp.Body); title != "" {
			e.msg += ": " + title
		}
		return page{}, e
	}
	if err := checkMediaType(resp.Header.Get("Content-Type")); err != nil {
		return page{}, &sourceError{status: resp.StatusCode, msg: "the source's answer is not TAXII 2.1: " + err.Error()}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.MaxPageBytes+1))
	if err != nil {
		return page{}, &sourceError{status: resp.StatusCode, msg: "reading the source's page failed: " + transportReason(err)}
	}
	if int64(len(body)) > s.MaxPageBytes {
		return page{}, &sourceError{status: resp.StatusCode, msg: fmt.Sprintf("the source's page is larger than %d bytes; lower the mirror's page limit", s.MaxPageBytes)}
	}
	var env struct {
		More    bool              `json:"more"`
		Next    string            `json:"next"`
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return page{}, &sourceError{status: resp.StatusCode, msg: "the source's page is not a TAXII envelope"}
	}
	// The header becomes the next session's added_after: one that is not a
	// timestamp would have the source refuse every later request, so it
	// counts as absent.
	last := resp.Header.Get("X-TAXII-Date-Added-Last")
	if _, err := time.Parse(time.RFC3339Nano, last); err != nil {
		last = ""
	}
	return page{Objects: env.Objects, More: env.More, Next: env.Next, DateAddedLast: last}, nil
}

// transportReason says why a connection failed without the URL, which
// the error text of net/http repeats.
func transportReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout") {
		return "timed out"
	}
	return err.Error()
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && n >= 0 {
		// Past a day the wait is capped anyway (MaxBackoff); the bound
		// also keeps the multiplication from overflowing.
		return time.Duration(min(n, 86400)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// errorTitle reads the title of a TAXII error resource, at most 200
// characters of it; "" when the body is none.
func errorTitle(r io.Reader) string {
	var e struct {
		Title string `json:"title"`
	}
	b, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	if json.Unmarshal(b, &e) != nil {
		return ""
	}
	t := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, e.Title)
	if len(t) > 200 {
		t = t[:200]
	}
	return t
}

// checkMediaType accepts application/taxii+json with version 2.1 or none.
func checkMediaType(ct string) error {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("Content-Type %q", ct)
	}
	if mt != "application/taxii+json" {
		return fmt.Errorf("Content-Type %q is not application/taxii+json", mt)
	}
	if v, ok := params["version"]; ok && v != "2.1" {
		return fmt.Errorf("version %q is not 2.1", v)
	}
	return nil
}

// httpClient is the client pulls use: a page must arrive within the
// timeout, a redirect may not take the credential to another host, no
// proxy from the environment is used, and every connection's address must
// be public unless AllowPrivate.
func (s *Service) httpClient() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	d := &net.Dialer{Timeout: 30 * time.Second, Control: s.checkAddress}
	return &http.Client{
		Timeout:   2 * time.Minute,
		Transport: &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: 30 * time.Second, IdleConnTimeout: 90 * time.Second, MaxIdleConnsPerHost: 2},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != via[0].URL.Scheme || req.URL.Host != via[0].URL.Host {
				return errors.New("a redirect to another host or scheme")
			}
			return nil
		},
	}
}

// checkAddress refuses, unless AllowPrivate, a connection to an address
// that is not public. It runs after resolution, on the address dialled.
func (s *Service) checkAddress(network, address string, _ syscall.RawConn) error {
	if s.AllowPrivate {
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return err
	}
	if !Public(ip) {
		return &privateAddress{ip}
	}
	return nil
}

// sharedSpace is RFC 6598's carrier-grade NAT range, private in practice
// though netip does not say so.
var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")

// Public reports whether ip is an address on the public internet: not
// loopback, private (RFC 1918, RFC 4193), link-local, shared (RFC 6598),
// unspecified, multicast or in 0.0.0.0/8.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid(), ip.IsLoopback(), ip.IsPrivate(), ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(),
		ip.IsInterfaceLocalMulticast(), ip.IsMulticast(), ip.IsUnspecified():
		return false
	case ip.Is4() && (ip.As4()[0] == 0 || sharedSpace.Contains(ip)):
		return false
	}
	return true
}
