package mirror

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The wait after n failures doubles from MinBackoff, never passes
// MaxBackoff, and is drawn from the upper half of its step.
func TestBackoffIsBoundedAndJittered(t *testing.T) {
	s := &Service{MinBackoff: time.Second, MaxBackoff: time.Minute}
	for n := 1; n <= 40; n++ {
		step := time.Second << min(n-1, 20)
		step = min(step, time.Minute)
		seen := map[time.Duration]bool{}
		for i := 0; i < 50; i++ {
			d := s.backoff(n)
			if d < step/2 || d > step {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, step/2, step)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Fatalf("backoff(%d) gave one value 50 times: no jitter", n)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 30 ", 30 * time.Second},
		{"-1", 0},
		{"soon", 0},
		{"Thu, 03 Dec 2026 12:01:00 GMT", time.Minute},
		{"Thu, 03 Dec 2026 11:00:00 GMT", 0}, // in the past
	} {
		if got := retryAfter(tc.h, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestCheckSourceURL(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"https://opencti.example/taxii2/root", "https://opencti.example/taxii2/root/"},
		{"http://127.0.0.1:6100/trustgroup1/", "http://127.0.0.1:6100/trustgroup1/"},
	} {
		u, err := CheckSourceURL(tc.in)
		if err != nil || u.String() != tc.want {
			t.Errorf("CheckSourceURL(%q) = %v, %v; want %s", tc.in, u, err, tc.want)
		}
	}
	for _, bad := range []string{"", "ftp://x/", "file:///etc/passwd", "https://user:pw@x/root/", "https:///root/", "https://x/root/?a=1",
		"https://x/root/#f", "javascript:alert(1)", "https://x/" + string(make([]byte, 3000))} {
		if _, err := CheckSourceURL(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckSourceURL(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

// The objects URL keeps the collection id in its own path segment and
// carries the cursor as query parameters.
func TestObjectsURL(t *testing.T) {
	got, err := objectsURL("https://x.example/api1/", "c 1", 50, "2026-01-01T00:00:00.000001Z", "tok&en")
	if err != nil {
		t.Fatal(err)
	}
	want := "https://x.example/api1/collections/c%201/objects/?added_after=2026-01-01T00%3A00%3A00.000001Z&limit=50&next=tok%26en"
	if got != want {
		t.Fatalf("objectsURL = %s\nwant %s", got, want)
	}
}

// A page's X-TAXII-Date-Added-Last becomes the next added_after only when
// it is a timestamp; the envelope's objects, more and next come through.
func TestFetchReadsThePage(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{"2026-02-01T00:00:00.000001Z", "2026-02-01T00:00:00.000001Z"},
		{"yesterday", ""},
		{"", ""},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.header != "" {
				w.Header().Set("X-TAXII-Date-Added-Last", tc.header)
			}
			w.Header().Set("Content-Type", "application/taxii+json;version=2.1")
			w.Write([]byte(`{"more":true,"next":"n2","objects":[{"type":"x"},{"type":"y"}]}`))
		}))
		s := New(nil, nil)
		pg, err := s.fetch(context.Background(), srv.Client(), srv.URL+"/", "", "")
		srv.Close()
		if err != nil || len(pg.Objects) != 2 || !pg.More || pg.Next != "n2" || pg.DateAddedLast != tc.want {
			t.Fatalf("header %q: page %+v, %v; want date added last %q", tc.header, pg, err, tc.want)
		}
	}
}

// What counts as a public address: everything a party could use to reach
// the server's own side of the network is not.
func TestPublic(t *testing.T) {
	for _, tc := range []struct {
		ip     string
		public bool
	}{
		{"192.0.2.10", true}, {"8.8.8.8", true}, {"2001:4860:4860::8888", true},
		{"127.0.0.1", false}, {"::1", false}, {"10.1.2.3", false}, {"172.16.0.1", false}, {"192.168.1.1", false},
		{"169.254.169.254", false}, {"fe80::1", false}, {"fc00::1", false}, {"100.64.0.1", false},
		{"0.0.0.0", false}, {"0.1.2.3", false}, {"::", false}, {"224.0.0.1", false}, {"::ffff:127.0.0.1", false},
	} {
		if got := Public(netip.MustParseAddr(tc.ip)); got != tc.public {
			t.Errorf("Public(%s) = %v, want %v", tc.ip, got, tc.public)
		}
	}
}

// A pull refuses a source on a loopback address unless the operator
// allowed private sources; the refusal says what to do.
func TestPullRefusesPrivateSource(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.Header().Set("Content-Type", "application/taxii+json;version=2.1")
		w.Write([]byte(`{"objects":[{"type":"x"}]}`))
	}))
	defer srv.Close()
	s := New(nil, nil)
	_, err := s.fetch(context.Background(), s.httpClient(), srv.URL+"/", "", "")
	if !errors.Is(err, ErrPrivateSource) || !strings.Contains(err.Error(), "--mirror-allow-private") || hits != 0 {
		t.Fatalf("pull from %s: %v (%d requests reached it); want ErrPrivateSource naming --mirror-allow-private and no request", srv.URL, err, hits)
	}
	s.AllowPrivate = true
	if pg, err := s.fetch(context.Background(), s.httpClient(), srv.URL+"/", "", ""); err != nil || len(pg.Objects) != 1 || hits != 1 {
		t.Fatalf("pull with private sources allowed: %+v, %v", pg, err)
	}
}
