package node

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestRFC9421ExampleB26 signs RFC 9421's example B.2.6 (a request signed
// with ed25519, test-key-ed25519 of appendix B.1.4) and must produce the
// RFC's Signature-Input and Signature byte for byte: Ed25519 is
// deterministic, so any difference in the signature base shows.
func TestRFC9421ExampleB26(t *testing.T) {
	seed, err := base64.RawURLEncoding.DecodeString("n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU")
	if err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	h := http.Header{}
	h.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", "18")
	m := &message{method: "POST", targetURI: "https://example.com/foo?param=Value&Pet=dog", header: h}
	l := sfInnerList{
		Items:  []sfItem{str("date"), str("@method"), str("@path"), str("@authority"), str("content-type"), str("content-length")},
		Params: sfParams{{"created", int64(1618884473)}, {"keyid", "test-key-ed25519"}},
	}
	base, err := signatureBase(m, l)
	if err != nil {
		t.Fatal(err)
	}
	wantBase := `"date": Tue, 20 Apr 2021 02:07:55 GMT
"@method": POST
"@path": /foo
"@authority": example.com
"content-type": application/json
"content-length": 18
"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`
	if string(base) != wantBase {
		t.Fatalf("signature base:\n%s\nwant:\n%s", base, wantBase)
	}
	input := serializeDict(sfDict{{Key: "sig-b26", List: &l}})
	if want := `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`; input != want {
		t.Errorf("Signature-Input = %s\nwant %s", input, want)
	}
	sig := serializeDict(sfDict{{Key: "sig-b26", Item: &sfItem{Value: ed25519.Sign(priv, base)}}})
	if want := "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:"; sig != want {
		t.Errorf("Signature = %s\nwant %s", sig, want)
	}
}

// TestContentDigestExample checks RFC 9530's example: the sha-256 digest
// of {"hello": "world"}, and that any other body fails it.
func TestContentDigestExample(t *testing.T) {
	body := []byte(`{"hello": "world"}`)
	if got, want := contentDigest(body), "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"; got != want {
		t.Fatalf("Content-Digest = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		name   string
		fields []string
		body   string
		ok     bool
	}{
		{"match", []string{contentDigest(body)}, string(body), true},
		{"other body", []string{contentDigest(body)}, `{"hello": "there"}`, false},
		{"no field", nil, string(body), false},
		{"unknown algorithm only", []string{"md5=:AAAA:"}, string(body), false},
		{"unknown algorithm beside sha-256", []string{"md5=:AAAA:, " + contentDigest(body)}, string(body), true},
		{"split over two fields", []string{"md5=:AAAA:", contentDigest(body)}, string(body), true},
		{"one wrong of two", []string{contentDigest(body) + ", sha-512=:" + base64.StdEncoding.EncodeToString(make([]byte, 64)) + ":"}, string(body), false},
		{"not a byte sequence", []string{`sha-256="X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="`}, string(body), false},
		{"inner list", []string{`sha-256=(1 2)`}, string(body), false},
		{"garbage", []string{"sha-256=:%%%:"}, string(body), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, f := range tc.fields {
				h.Add("Content-Digest", f)
			}
			err := checkDigest(h, []byte(tc.body))
			if tc.ok != (err == nil) {
				t.Fatalf("checkDigest = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrDigest) {
				t.Fatalf("checkDigest = %v, want ErrDigest", err)
			}
		})
	}
}

func TestReplayCacheBoundedPerKey(t *testing.T) {
	c := newReplayCache(2)
	now := time.Unix(1000, 0)
	until := now.Add(time.Minute)
	for _, n := range []string{"n1", "n2"} {
		if err := c.use("k", n, until, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.use("k", "n1", until, now); !errors.Is(err, ErrReplayed) {
		t.Fatalf("a used nonce: %v, want ErrReplayed", err)
	}
	if err := c.use("k", "n3", until, now); !errors.Is(err, ErrBusy) {
		t.Fatalf("a third live nonce with room for two: %v, want ErrBusy", err)
	}
	if err := c.use("other", "n3", until, now); err != nil {
		t.Fatalf("another key's room is its own: %v", err)
	}
	later := until
	if err := c.use("k", "n3", later.Add(time.Minute), later); err != nil {
		t.Fatalf("once the first nonces expired there is room: %v", err)
	}
}

func TestSignatureTimes(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name             string
		created, expires time.Duration // from now
		ok               bool
	}{
		{"fresh", 0, time.Minute, true},
		{"slightly in the future, within skew", 20 * time.Second, time.Minute, true},
		{"too far in the future", 2 * ClockSkew, 3 * time.Minute, false},
		{"expired", -2 * time.Minute, -time.Minute, false},
		{"expired within skew", -time.Minute, -10 * time.Second, true},
		{"valid too long", -time.Minute, MaxValidity, false},
		{"expires before created", 0, -time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := found{create: now.Add(tc.created), expire: now.Add(tc.expires)}
			err := f.fresh(now)
			if tc.ok != (err == nil) {
				t.Fatalf("fresh = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrExpired) {
				t.Fatalf("fresh = %v, want ErrExpired", err)
			}
		})
	}
}

// FuzzVerifyRequest: whatever signature fields and body arrive, a request
// the pinned key did not sign is never accepted, and nothing panics.
func FuzzVerifyRequest(f *testing.F) {
	skey, err := GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	id, err := NewIdentity(skey)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/node/v1/hello", nil)
	if err := id.SignRequest(r, []byte(`{}`), now); err != nil {
		f.Fatal(err)
	}
	f.Add(r.Header.Get("Signature-Input"), r.Header.Get("Signature"), r.Header.Get("Content-Digest"), "{}", "POST")
	f.Fuzz(func(t *testing.T, input, sig, digest, body, method string) {
		req, err := http.NewRequest(method, "http://127.0.0.1:1/node/v1/hello", nil)
		if err != nil {
			return
		}
		req.Header.Set("Signature-Input", input)
		req.Header.Set("Signature", sig)
		req.Header.Set("Content-Digest", digest)
		lookup := func(keyID string) (PublicKey, error) {
			if keyID != id.Public.ID {
				return PublicKey{}, ErrUnknownKey
			}
			return id.Public, nil
		}
		_, err = verifyRequest(req, "http://127.0.0.1:1/node/v1/hello", []byte(body), now, lookup, newReplayCache(4))
		if err == nil && !(input == r.Header.Get("Signature-Input") && sig == r.Header.Get("Signature") && method == "POST" && body == "{}") {
			// Only the seed itself (or an equivalent spelling of its
			// fields) may verify; check the signature really is ours.
			f, ferr := findSignature(req.Header, requestTag)
			if ferr != nil {
				t.Fatalf("accepted a request whose signature does not parse: %v", ferr)
			}
			base, _ := signatureBase(&message{method: method, targetURI: "http://127.0.0.1:1/node/v1/hello", header: req.Header}, f.params)
			if !ed25519.Verify(id.Public.pub, base, f.sig) || checkDigest(req.Header, []byte(body)) != nil {
				t.Fatalf("accepted a forged request: %q %q %q %q", input, sig, digest, body)
			}
		}
	})
}

// BenchmarkSignVerifyRequest measures one node-to-node request's signing
// and verification (digest, signature base, Ed25519 both ways, replay
// cache) over a 64 KiB body, the cost each replicated page will pay.
func BenchmarkSignVerifyRequest(b *testing.B) {
	skey, _ := GenerateKey()
	id, _ := NewIdentity(skey)
	body := bytes.Repeat([]byte("x"), 64<<10)
	replays := newReplayCache(replayMax)
	lookup := func(string) (PublicKey, error) { return id.Public, nil }
	b.SetBytes(int64(len(body)))
	for i := 0; i < b.N; i++ {
		now := time.Unix(1_700_000_000+int64(i/100), 0) // nonces expire as the bench runs
		r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/node/v1/hello", nil)
		r.Header.Set("Content-Type", "application/json")
		if err := id.SignRequest(r, body, now); err != nil {
			b.Fatal(err)
		}
		if _, err := verifyRequest(r, "http://127.0.0.1:1/node/v1/hello", body, now, lookup, replays); err != nil {
			b.Fatal(err)
		}
	}
}
