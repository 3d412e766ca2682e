package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parley-cti/parley/internal/fault"
)

// This file implements the profile of HTTP Message Signatures (RFC 9421)
// and Content-Digest (RFC 9530) that nodes speak; nothing in it was copied
// from elsewhere.
//
// A request carries
//
//	Content-Digest: sha-256=:<base64>:
//	Signature-Input: parley=("@method" "@target-uri" "content-digest");created=<unix>;expires=<unix>;nonce="<random>";keyid="<KeyID>";alg="ed25519";tag="parley-node"
//	Signature: parley=:<base64 Ed25519 signature over the signature base>:
//
// and its response
//
//	Content-Digest: sha-256=:<base64>:
//	Signature-Input: parley=("@status" "content-digest" "signature";req;key="parley");created=<unix>;expires=<unix>;keyid="<KeyID>";alg="ed25519";tag="parley-node-response"
//	Signature: parley=:<base64>:
//
// The signature base is RFC 9421's: one line per covered component, then
// the "@signature-params" line. Verifiers find the signature by its tag
// (never by its label) and require the components above; a signer may
// cover more (this one adds content-type when the request has one).

// Sentinel errors for a refused node message. Each wraps
// ErrUnauthenticated, which the HTTP edge maps to 401.
var (
	ErrUnauthenticated = fault.Generic(fault.Unauthenticated, "node: message not authenticated")
	// ErrUnsigned: no signature with parley's tag.
	ErrUnsigned = fmt.Errorf("%w: not signed", ErrUnauthenticated)
	// ErrMalformedSignature: signature fields that do not parse, miss a
	// required component or parameter, or use another algorithm.
	ErrMalformedSignature = fmt.Errorf("%w: malformed signature", ErrUnauthenticated)
	// ErrUnknownKey: the key is not pinned (or, for a response, is not
	// the key pinned for the peer asked).
	ErrUnknownKey = fmt.Errorf("%w: key not pinned", ErrUnauthenticated)
	// ErrBadSignature: the signature does not verify.
	ErrBadSignature = fmt.Errorf("%w: signature does not verify", ErrUnauthenticated)
	// ErrExpired: the signature has expired, was made too long ago, or
	// claims a time in the future.
	ErrExpired = fmt.Errorf("%w: signature expired or not yet valid", ErrUnauthenticated)
	// ErrReplayed: the key's nonce was seen already.
	ErrReplayed = fmt.Errorf("%w: nonce already used", ErrUnauthenticated)
	// ErrDigest: no usable Content-Digest, or one the body does not match.
	ErrDigest = fmt.Errorf("%w: content digest missing or not matching the body", ErrUnauthenticated)
	// ErrPartyToken: the request carries an Authorization header; party
	// tokens never travel between nodes.
	ErrPartyToken = fmt.Errorf("%w: party credentials are not accepted between nodes", ErrUnauthenticated)
	// ErrBusy: the replay cache of the key is full of live nonces; retry
	// once some expire. The HTTP edge maps it to 503.
	ErrBusy = fault.Generic(fault.Unavailable, "node: too many signed requests from this peer in the validity window")
)

const (
	// MaxValidity bounds a signature's life (expires - created) and how
	// long ago it may have been created; nonces are remembered that long.
	MaxValidity = 5 * time.Minute
	// ClockSkew is the tolerated difference between two nodes' clocks.
	ClockSkew = 30 * time.Second
	// Validity is the life this package gives its own signatures.
	Validity = time.Minute

	sigLabel    = "parley"
	requestTag  = "parley-node"
	responseTag = "parley-node-response"
	algEd25519  = "ed25519"
)

// contentDigest returns the Content-Digest field value of body.
func contentDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return serializeDict(sfDict{{Key: "sha-256", Item: &sfItem{Value: sum[:]}}})
}

// checkDigest checks body against the Content-Digest fields h holds: at
// least one of sha-256 and sha-512 must be present, and every one present
// must match (other algorithms are ignored, as RFC 9530 allows).
func checkDigest(h http.Header, body []byte) error {
	vals := h.Values("Content-Digest")
	if len(vals) == 0 {
		return fmt.Errorf("%w: no Content-Digest", ErrDigest)
	}
	d, err := parseDict(strings.Join(vals, ", "))
	if err != nil {
		return fmt.Errorf("%w: Content-Digest: %v", ErrDigest, err)
	}
	known := 0
	for _, m := range d {
		var want []byte
		switch m.Key {
		case "sha-256":
			s := sha256.Sum256(body)
			want = s[:]
		case "sha-512":
			s := sha512.Sum512(body)
			want = s[:]
		default:
			continue
		}
		if m.Item == nil {
			return fmt.Errorf("%w: %s is not a byte sequence", ErrDigest, m.Key)
		}
		got, ok := m.Item.Value.([]byte)
		if !ok {
			return fmt.Errorf("%w: %s is not a byte sequence", ErrDigest, m.Key)
		}
		if subtle.ConstantTimeCompare(got, want) != 1 {
			return fmt.Errorf("%w: the body does not match its %s digest", ErrDigest, m.Key)
		}
		known++
	}
	if known == 0 {
		return fmt.Errorf("%w: no sha-256 or sha-512 digest", ErrDigest)
	}
	return nil
}

// message is what a signature's components are read from.
type message struct {
	method    string // requests
	targetURI string // requests: absolute
	status    int    // responses
	header    http.Header
	req       *message // a response's request, for ;req components
}

// componentValue returns the value of one covered component of m.
func componentValue(m *message, c sfItem) (string, error) {
	name, ok := c.Value.(string)
	if !ok || name == "" || strings.ToLower(name) != name {
		return "", fmt.Errorf("%w: a component identifier is a lowercase string", ErrMalformedSignature)
	}
	var key string
	for _, p := range c.Params {
		switch p.Key {
		case "req":
			if p.Value != true {
				return "", fmt.Errorf("%w: req is a flag", ErrMalformedSignature)
			}
			if m.req == nil {
				return "", fmt.Errorf("%w: %q;req outside a response", ErrMalformedSignature, name)
			}
		case "key":
			s, ok := p.Value.(string)
			if !ok {
				return "", fmt.Errorf("%w: key names a dictionary member with a string", ErrMalformedSignature)
			}
			key = s
		default:
			return "", fmt.Errorf("%w: component parameter %q is not supported", ErrMalformedSignature, p.Key)
		}
	}
	if _, ok := c.Params.get("req"); ok {
		m = m.req
	}
	if strings.HasPrefix(name, "@") {
		if key != "" {
			return "", fmt.Errorf("%w: %s takes no key", ErrMalformedSignature, name)
		}
		return derivedValue(m, name)
	}
	vals := m.header.Values(name)
	if len(vals) == 0 {
		return "", fmt.Errorf("%w: covered field %q is absent", ErrMalformedSignature, name)
	}
	for i := range vals {
		vals[i] = strings.TrimSpace(vals[i])
	}
	v := strings.Join(vals, ", ")
	if key != "" {
		d, err := parseDict(v)
		if err != nil {
			return "", fmt.Errorf("%w: field %q: %v", ErrMalformedSignature, name, err)
		}
		mem, ok := d.get(key)
		if !ok {
			return "", fmt.Errorf("%w: field %q has no member %q", ErrMalformedSignature, name, key)
		}
		v = serializeMemberValue(mem)
	}
	if strings.ContainsAny(v, "\r\n") {
		return "", fmt.Errorf("%w: field %q holds a line break", ErrMalformedSignature, name)
	}
	return v, nil
}

func derivedValue(m *message, name string) (string, error) {
	if name == "@status" {
		if m.status == 0 {
			return "", fmt.Errorf("%w: @status of a request", ErrMalformedSignature)
		}
		return strconv.Itoa(m.status), nil
	}
	if m.targetURI == "" {
		return "", fmt.Errorf("%w: %s of a response", ErrMalformedSignature, name)
	}
	u, err := url.Parse(m.targetURI)
	if err != nil {
		return "", fmt.Errorf("%w: target URI: %v", ErrMalformedSignature, err)
	}
	switch name {
	case "@method":
		return m.method, nil
	case "@target-uri":
		return m.targetURI, nil
	case "@authority":
		return strings.ToLower(u.Host), nil
	case "@scheme":
		return strings.ToLower(u.Scheme), nil
	case "@path":
		if u.EscapedPath() == "" {
			return "/", nil
		}
		return u.EscapedPath(), nil
	case "@query":
		return "?" + u.RawQuery, nil
	}
	return "", fmt.Errorf("%w: derived component %s is not supported", ErrMalformedSignature, name)
}

// signatureBase builds RFC 9421's signature base for the components and
// parameters in params.
func signatureBase(m *message, params sfInnerList) ([]byte, error) {
	var b strings.Builder
	seen := map[string]bool{}
	for _, c := range params.Items {
		id := serializeItem(c)
		if seen[id] {
			return nil, fmt.Errorf("%w: component %s covered twice", ErrMalformedSignature, id)
		}
		seen[id] = true
		v, err := componentValue(m, c)
		if err != nil {
			return nil, err
		}
		b.WriteString(id)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteByte('\n')
	}
	b.WriteString(`"@signature-params": `)
	b.WriteString(serializeInnerList(params))
	return []byte(b.String()), nil
}

// sign adds Signature-Input and Signature (label sigLabel) to h for m.
func (id *Identity) sign(m *message, components []sfItem, params sfParams) error {
	l := sfInnerList{Items: components, Params: params}
	base, err := signatureBase(m, l)
	if err != nil {
		return err
	}
	sig := ed25519.Sign(id.priv, base)
	m.header.Set("Signature-Input", serializeDict(sfDict{{Key: sigLabel, List: &l}}))
	m.header.Set("Signature", serializeDict(sfDict{{Key: sigLabel, Item: &sfItem{Value: sig}}}))
	return nil
}

func str(s string) sfItem { return sfItem{Value: s} }

// SignRequest signs r, whose body is body, as this node at now: it sets
// Content-Digest, Signature-Input and Signature. r.URL must be absolute
// (the peer's URL and the path), since the target URI is signed.
func (id *Identity) SignRequest(r *http.Request, body []byte, now time.Time) error {
	if r.Header.Get("Authorization") != "" {
		return fmt.Errorf("%w: refusing to sign a request that carries one", ErrPartyToken)
	}
	nonce := make([]byte, 18)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	r.Header.Set("Content-Digest", contentDigest(body))
	comps := []sfItem{str("@method"), str("@target-uri"), str("content-digest")}
	if r.Header.Get("Content-Type") != "" {
		comps = append(comps, str("content-type"))
	}
	params := sfParams{
		{"created", now.Unix()}, {"expires", now.Add(Validity).Unix()},
		{"nonce", base64.RawURLEncoding.EncodeToString(nonce)}, {"keyid", id.Public.ID},
		{"alg", algEd25519}, {"tag", requestTag},
	}
	m := &message{method: r.Method, targetURI: requestTarget(r.URL), header: r.Header}
	return id.sign(m, comps, params)
}

// requestTarget is the absolute target URI of an outgoing request, as its
// receiver will rebuild it from its public URL and the request line.
func requestTarget(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + u.RequestURI()
}

// signedRequest is a request signature that verified.
type signedRequest struct {
	keyID   string
	label   string
	created time.Time
	nonce   string
	expires time.Time
}

// found is the parley signature of a message, parsed.
type found struct {
	label  string
	params sfInnerList
	sig    []byte
	keyID  string
	nonce  string
	create time.Time
	expire time.Time
}

// findSignature returns the one signature in h whose tag is tag.
func findSignature(h http.Header, tag string) (found, error) {
	in, sigs := h.Values("Signature-Input"), h.Values("Signature")
	if len(in) == 0 || len(sigs) == 0 {
		return found{}, fmt.Errorf("%w: no Signature-Input and Signature fields", ErrUnsigned)
	}
	inputs, err := parseDict(strings.Join(in, ", "))
	if err != nil {
		return found{}, fmt.Errorf("%w: Signature-Input: %v", ErrMalformedSignature, err)
	}
	values, err := parseDict(strings.Join(sigs, ", "))
	if err != nil {
		return found{}, fmt.Errorf("%w: Signature: %v", ErrMalformedSignature, err)
	}
	var f found
	n := 0
	for _, m := range inputs {
		if m.List == nil {
			continue
		}
		if t, _ := m.List.Params.get("tag"); t != tag {
			continue
		}
		n++
		f.label, f.params = m.Key, *m.List
	}
	switch {
	case n == 0:
		return found{}, fmt.Errorf("%w: no signature tagged %q", ErrUnsigned, tag)
	case n > 1:
		return found{}, fmt.Errorf("%w: more than one signature tagged %q", ErrMalformedSignature, tag)
	}
	sv, ok := values.get(f.label)
	if !ok || sv.Item == nil {
		return found{}, fmt.Errorf("%w: no Signature member %q", ErrMalformedSignature, f.label)
	}
	if f.sig, ok = sv.Item.Value.([]byte); !ok || len(f.sig) != ed25519.SignatureSize {
		return found{}, fmt.Errorf("%w: Signature %q is not a 64-byte sequence", ErrMalformedSignature, f.label)
	}
	ps := f.params.Params
	if alg, ok := ps.get("alg"); ok && alg != algEd25519 {
		return found{}, fmt.Errorf("%w: alg %v; nodes sign with ed25519", ErrMalformedSignature, alg)
	}
	kid, _ := ps.get("keyid")
	if f.keyID, ok = kid.(string); !ok || f.keyID == "" {
		return found{}, fmt.Errorf("%w: no keyid", ErrMalformedSignature)
	}
	created, _ := ps.get("created")
	expires, _ := ps.get("expires")
	c, okc := created.(int64)
	e, oke := expires.(int64)
	if !okc || !oke {
		return found{}, fmt.Errorf("%w: created and expires are required integers", ErrMalformedSignature)
	}
	f.create, f.expire = time.Unix(c, 0), time.Unix(e, 0)
	if nv, ok := ps.get("nonce"); ok {
		if f.nonce, ok = nv.(string); !ok {
			return found{}, fmt.Errorf("%w: nonce is a string", ErrMalformedSignature)
		}
	}
	return f, nil
}

// covers reports whether f's components include each of want (serialized
// component identifiers).
func (f found) covers(want ...string) error {
	have := map[string]bool{}
	for _, c := range f.params.Items {
		have[serializeItem(c)] = true
	}
	for _, w := range want {
		if !have[w] {
			return fmt.Errorf("%w: the signature does not cover %s", ErrMalformedSignature, w)
		}
	}
	return nil
}

// fresh checks f's times at now.
func (f found) fresh(now time.Time) error {
	switch {
	case !f.expire.After(f.create):
		return fmt.Errorf("%w: expires (%d) is not after created (%d)", ErrExpired, f.expire.Unix(), f.create.Unix())
	case f.expire.Sub(f.create) > MaxValidity:
		return fmt.Errorf("%w: valid for %s, more than %s", ErrExpired, f.expire.Sub(f.create), MaxValidity)
	case f.create.After(now.Add(ClockSkew)):
		return fmt.Errorf("%w: created %s in the future", ErrExpired, f.create.Sub(now).Round(time.Second))
	case !now.Before(f.expire.Add(ClockSkew)):
		return fmt.Errorf("%w: expired %s ago", ErrExpired, now.Sub(f.expire).Round(time.Second))
	}
	return nil
}

// verifyRequest checks a request's node signature: structure, times, key
// (looked up with lookup, which fails with ErrUnknownKey), signature,
// body digest and, last, its nonce against replays. target is the request's
// absolute target URI as this node sees it.
func verifyRequest(r *http.Request, target string, body []byte, now time.Time, lookup func(keyID string) (PublicKey, error), replays *replayCache) (signedRequest, error) {
	if r.Header.Get("Authorization") != "" {
		return signedRequest{}, ErrPartyToken
	}
	f, err := findSignature(r.Header, requestTag)
	if err != nil {
		return signedRequest{}, err
	}
	if err := f.covers(`"@method"`, `"@target-uri"`, `"content-digest"`); err != nil {
		return signedRequest{}, err
	}
	if len(f.nonce) < 16 || len(f.nonce) > 128 {
		return signedRequest{}, fmt.Errorf("%w: a nonce of 16 to 128 characters is required", ErrMalformedSignature)
	}
	if err := f.fresh(now); err != nil {
		return signedRequest{}, err
	}
	key, err := lookup(f.keyID)
	if err != nil {
		return signedRequest{}, err
	}
	base, err := signatureBase(&message{method: r.Method, targetURI: target, header: r.Header}, f.params)
	if err != nil {
		return signedRequest{}, err
	}
	if !ed25519.Verify(key.pub, base, f.sig) {
		return signedRequest{}, ErrBadSignature
	}
	if err := checkDigest(r.Header, body); err != nil {
		return signedRequest{}, err
	}
	if err := replays.use(f.keyID, f.nonce, f.expire.Add(ClockSkew), now); err != nil {
		return signedRequest{}, err
	}
	return signedRequest{keyID: f.keyID, label: f.label, created: f.create, nonce: f.nonce, expires: f.expire}, nil
}

// SignResponse signs a response to a verified request: h receives
// Content-Digest, Signature-Input and Signature, covering status, body and
// the request's signature (reqHeader's Signature member label).
func (id *Identity) signResponse(h http.Header, status int, body []byte, reqHeader http.Header, label string, now time.Time) error {
	h.Set("Content-Digest", contentDigest(body))
	comps := []sfItem{str("@status"), str("content-digest"),
		{Value: "signature", Params: sfParams{{"req", true}, {"key", label}}}}
	params := sfParams{
		{"created", now.Unix()}, {"expires", now.Add(Validity).Unix()},
		{"keyid", id.Public.ID}, {"alg", algEd25519}, {"tag", responseTag},
	}
	return id.sign(&message{status: status, header: h, req: &message{header: reqHeader}}, comps, params)
}

// verifyResponse checks that a response was signed by key, over its
// status and body, in answer to the request whose headers are reqHeader.
func verifyResponse(status int, h http.Header, body []byte, reqHeader http.Header, key PublicKey, now time.Time) error {
	f, err := findSignature(h, responseTag)
	if err != nil {
		return err
	}
	reqSig, err := findSignature(reqHeader, requestTag)
	if err != nil {
		return err
	}
	bind := serializeItem(sfItem{Value: "signature", Params: sfParams{{"req", true}, {"key", reqSig.label}}})
	if err := f.covers(`"@status"`, `"content-digest"`, bind); err != nil {
		return err
	}
	if err := f.fresh(now); err != nil {
		return err
	}
	if f.keyID != key.ID {
		return fmt.Errorf("%w: the answer is signed by key id %q, not by the key pinned for this peer", ErrUnknownKey, f.keyID)
	}
	base, err := signatureBase(&message{status: status, header: h, req: &message{header: reqHeader}}, f.params)
	if err != nil {
		return err
	}
	if !ed25519.Verify(key.pub, base, f.sig) {
		return ErrBadSignature
	}
	return checkDigest(h, body)
}

// replayCache remembers, per key id, the nonces of requests still within
// their validity, so that each is accepted once. Each key has room for
// replayMax live nonces: a pinned peer that signs faster than that in one
// validity window is told to slow down (ErrBusy) instead of growing the
// cache without bound, and cannot crowd out another peer's nonces.
type replayCache struct {
	mu   sync.Mutex
	max  int
	keys map[string]map[string]time.Time // key id → nonce → forget after
}

const replayMax = 1 << 16

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, keys: map[string]map[string]time.Time{}}
}

// use records nonce for keyID until until, or fails with ErrReplayed if it
// is recorded already, or ErrBusy if the key's room is full of live
// nonces.
func (c *replayCache) use(keyID, nonce string, until, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ns := c.keys[keyID]
	if ns == nil {
		ns = map[string]time.Time{}
		c.keys[keyID] = ns
	}
	if t, ok := ns[nonce]; ok && now.Before(t) {
		return ErrReplayed
	}
	if len(ns) >= c.max {
		for n, t := range ns {
			if !now.Before(t) {
				delete(ns, n)
			}
		}
		if len(ns) >= c.max {
			return ErrBusy
		}
	}
	ns[nonce] = until
	return nil
}
