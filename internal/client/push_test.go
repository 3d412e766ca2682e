package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parley-cti/parley/internal/client/taxiitest"
)

func bundleOf(objs []json.RawMessage) []byte {
	var b bytes.Buffer
	b.WriteString("{\n  \"type\": \"bundle\",\n  \"id\": \"bundle--00000000-0000-4000-8000-000000000000\",\n  \"objects\": [\n")
	for i, o := range objs {
		if i > 0 {
			b.WriteString(",\n")
		}
		_ = json.Indent(&b, o, "    ", "  ")
	}
	b.WriteString("\n  ]\n}\n")
	return b.Bytes()
}

func TestPushBundle(t *testing.T) {
	objs := indicators(257)
	one := len(objs[0])
	tests := []struct {
		name         string
		cfg          taxiitest.Config
		envelopeSize int
		input        []byte
		minPosts     int
	}{
		{"bundle by count", taxiitest.Config{}, 50, bundleOf(objs), 6},
		{"bare array", taxiitest.Config{}, 100, []byte(`[` + string(bytes.Join(func() [][]byte {
			var bs [][]byte
			for _, o := range objs {
				bs = append(bs, o)
			}
			return bs
		}(), []byte(","))) + `]`), 3},
		// Room for about ten objects per envelope: bytes, not count, cut them.
		{"cut by max_content_length", taxiitest.Config{MaxContentLength: int64(envelopeOverhead + 10*(one+1))}, 1000, bundleOf(objs), 26},
		{"async statuses", taxiitest.Config{Async: true}, 100, bundleOf(objs), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := taxiitest.NewServer(t, tt.cfg)
			c := newClient(t, srv, WithPollInterval(0))
			var calls []int
			before := srv.Requests()
			n, err := c.PushBundle(context.Background(), taxiitest.Root, taxiitest.Collection, bytes.NewReader(tt.input), tt.envelopeSize,
				func(sent, total int) {
					if total != -1 {
						t.Errorf("total = %d, want -1 (unknown)", total)
					}
					calls = append(calls, sent)
				})
			if err != nil {
				t.Fatal(err)
			}
			if n != len(objs) || srv.Count(taxiitest.Collection) != len(objs) {
				t.Fatalf("sent %d, stored %d, want %d", n, srv.Count(taxiitest.Collection), len(objs))
			}
			if len(calls) < tt.minPosts || calls[len(calls)-1] != len(objs) {
				t.Errorf("progress calls = %v", calls)
			}
			for i := 1; i < len(calls); i++ {
				if calls[i] <= calls[i-1] || calls[i]-calls[i-1] > tt.envelopeSize {
					t.Fatalf("progress not increasing within envelope size: %v", calls)
				}
			}
			if srv.Requests()-before < int64(tt.minPosts) {
				t.Errorf("requests = %d", srv.Requests()-before)
			}
		})
	}
}

func TestPushBundleResume(t *testing.T) {
	srv := taxiitest.NewServer(t, taxiitest.Config{})
	c := newClient(t, srv)
	objs := indicators(120)
	b := bundleOf(objs)
	// The first push dies when the reader fails after some envelopes.
	n, err := c.PushBundle(context.Background(), taxiitest.Root, taxiitest.Collection, io.LimitReader(bytes.NewReader(b), int64(len(b)/2)), 10, nil)
	if err == nil || n == 0 || n%10 != 0 {
		t.Fatalf("interrupted push: n=%d err=%v", n, err)
	}
	var last int
	m, err := c.PushBundleWith(context.Background(), taxiitest.Root, taxiitest.Collection, bytes.NewReader(b),
		PushOptions{EnvelopeSize: 10, Skip: n, Total: len(objs), Progress: func(sent, total int) {
			if total != len(objs) {
				t.Errorf("total = %d", total)
			}
			last = sent
		}})
	if err != nil {
		t.Fatal(err)
	}
	if n+m != len(objs) || last != len(objs) || srv.Count(taxiitest.Collection) != len(objs) {
		t.Fatalf("first %d + resumed %d, last progress %d, stored %d; want %d", n, m, last, srv.Count(taxiitest.Collection), len(objs))
	}
}

func TestPushBundleErrors(t *testing.T) {
	objs := indicators(3)
	big := json.RawMessage(`{"type":"indicator","id":"indicator--00000000-0000-4000-8000-999999999999","description":"` + strings.Repeat("x", 2000) + `"}`)
	tests := []struct {
		name    string
		cfg     taxiitest.Config
		input   []byte
		wantErr error
		wantN   int
	}{
		{"object above max_content_length", taxiitest.Config{MaxContentLength: 1000}, bundleOf(append(objs, big)), ErrTooLarge, 2},
		{"rejected objects", taxiitest.Config{}, bundleOf(append(objs, json.RawMessage(`{"id":"x"}`))), ErrRejected, 4},
		{"not json", taxiitest.Config{}, []byte(`nope`), ErrMalformedBundle, 0},
		{"scalar", taxiitest.Config{}, []byte(`42`), ErrMalformedBundle, 0},
		{"non-object in objects", taxiitest.Config{}, []byte(`{"objects":[1]}`), ErrMalformedBundle, 0},
		{"trailing data", taxiitest.Config{}, append(bundleOf(objs), []byte(`{}`)...), ErrMalformedBundle, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := taxiitest.NewServer(t, tt.cfg)
			c := newClient(t, srv)
			n, err := c.PushBundle(context.Background(), taxiitest.Root, taxiitest.Collection, bytes.NewReader(tt.input), 2, nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			// A bad local bundle is not the server's fault.
			if tt.wantErr == ErrMalformedBundle && errors.Is(err, ErrProtocol) {
				t.Fatalf("err = %v blames the server (ErrProtocol) for a local bundle", err)
			}
			var re *RejectedError
			if tt.wantErr == ErrRejected && (!errors.As(err, &re) || len(re.Failures) != 1) {
				t.Fatalf("err = %v, want a *RejectedError listing the 1 failure", err)
			}
			if n != tt.wantN {
				t.Errorf("sent = %d, want %d", n, tt.wantN)
			}
		})
	}
	t.Run("read-only collection", func(t *testing.T) {
		srv := taxiitest.NewServer(t, taxiitest.Config{})
		c := newClient(t, srv)
		_, err := c.PushBundle(context.Background(), taxiitest.Root, taxiitest.ReadOnlyCollection, bytes.NewReader(bundleOf(objs)), 2, nil)
		var te *Error
		if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &te) || te.StatusCode != 403 {
			t.Fatalf("err = %v, want *Error 403", err)
		}
	})
}

// A server that advertises no limit but refuses envelopes of more than 4
// objects with 413 makes PushBundle halve until they fit.
func TestPushBundleSplitsOn413(t *testing.T) {
	var posts, stored atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", MediaTypeTAXII)
		if r.Method == http.MethodGet {
			fmt.Fprint(w, `{"title":"r","versions":["application/taxii+json;version=2.1"],"max_content_length":0}`)
			return
		}
		posts.Add(1)
		var env struct{ Objects []json.RawMessage }
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			w.WriteHeader(400)
			return
		}
		if len(env.Objects) > 4 {
			w.WriteHeader(413)
			fmt.Fprint(w, `{"title":"too large"}`)
			return
		}
		stored.Add(int64(len(env.Objects)))
		w.WriteHeader(202)
		fmt.Fprintf(w, `{"id":"s","status":"complete","total_count":%d,"success_count":%[1]d}`, len(env.Objects))
	}))
	defer srv.Close()
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.PushBundle(context.Background(), "r", "c", bytes.NewReader(bundleOf(indicators(40))), 20, nil)
	if err != nil || n != 40 || stored.Load() != 40 {
		t.Fatalf("n=%d stored=%d err=%v", n, stored.Load(), err)
	}
	// Each envelope of 20: 1 refused, 2 of 10 refused, 4 of 5 refused, 8 of 2 or 3 accepted.
	if posts.Load() != 2*(1+2+4+8) {
		t.Errorf("posts = %d", posts.Load())
	}
}

func TestPushTestdataBundles(t *testing.T) {
	td := testdataDir(t)
	for _, rel := range []string{
		"stix/valid/mitre-ics-attack/ics-attack-18.1.json",
		"stix/valid/ransomware-kb",
		"stix/valid/oasis-python-stix2-sco/sco-examples-bundle.json",
	} {
		path := filepath.Join(td, rel)
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			matches, _ := filepath.Glob(filepath.Join(path, "*.json"))
			if len(matches) == 0 {
				t.Fatalf("no bundle in %s", path)
			}
			path = matches[0]
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Skip(err)
			}
			defer f.Close()
			want, err := CountBundle(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			srv := taxiitest.NewServer(t, taxiitest.Config{MaxContentLength: 256 << 10})
			c := newClient(t, srv)
			n, err := c.PushBundleWith(context.Background(), taxiitest.Root, taxiitest.Collection, f, PushOptions{EnvelopeSize: 500, Total: want})
			if err != nil {
				t.Fatal(err)
			}
			if n != want || srv.Count(taxiitest.Collection) != want || want == 0 {
				t.Fatalf("sent %d, stored %d, counted %d", n, srv.Count(taxiitest.Collection), want)
			}
		})
	}
}
