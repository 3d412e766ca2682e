package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/parley-cti/parley/internal/ledger"
)

func TestRequestsByRoutePattern(t *testing.T) {
	m := New(Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("POST /things", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.Handle("GET /metrics", m.Handler())
	srv := httptest.NewServer(m.Wrap(mux))
	defer srv.Close()
	for _, req := range []struct{ method, path string }{
		{"GET", "/things/1"}, {"GET", "/things/2"}, {"GET", "/things/missing"},
		{"POST", "/things"}, {"GET", "/no/such/path/9f3b"}, {"BREW", "/things/1"},
	} {
		r, _ := http.NewRequest(req.method, srv.URL+req.path, nil)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	cases := []struct {
		method, route, code string
		want                float64
	}{
		{"GET", "/things/{id}", "200", 2},
		{"GET", "/things/{id}", "404", 1},
		{"POST", "/things", "201", 1},
		{"GET", "unmatched", "404", 1},
		{"OTHER", "unmatched", "405", 1}, // the mux answers 405 with no pattern
	}
	for _, tc := range cases {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(tc.method, tc.route, tc.code)); got != tc.want {
			t.Errorf("requests{%s %s %s} = %v, want %v", tc.method, tc.route, tc.code, got, tc.want)
		}
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	if strings.Contains(text, "/no/such/path") || strings.Contains(text, "/things/1") {
		t.Fatal("a raw path leaked into a label")
	}
	if !strings.Contains(text, `parley_http_request_duration_seconds_count{method="GET",route="/things/{id}"} 3`) {
		t.Fatalf("no latency histogram for the pattern:\n%s", text)
	}
}

func TestRouteLabel(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "unmatched"}, {"/ui/", "/ui/"}, {"GET /ui/{$}", "/ui/{$}"}, {"POST  /api/v1/keys", "/api/v1/keys"},
		{"GET example.com/x", "example.com/x"},
	} {
		if got := routeLabel(tc.in); got != tc.want {
			t.Errorf("routeLabel(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func appendEntries(t *testing.T, st *ledger.MemStore, es ...ledger.Entry) {
	t.Helper()
	if err := st.Update(context.Background(), func(s ledger.Store) error {
		_, err := ledger.Append(context.Background(), s, es...)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestLedgerMetrics(t *testing.T) {
	ctx := context.Background()
	st := ledger.NewMemStore()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	m := New(Options{Ledger: st, Now: func() time.Time { return now }, MaxEntriesPerScrape: 3})
	ag, a, b := "agreement--1", "party--a", "party--b"
	appendEntries(t, st,
		ledger.Entry{Kind: ledger.KindAgreementProposed, Actor: a, Agreement: ag, Subject: ag, Time: t0, Parties: []string{a, b}},
		ledger.Entry{Kind: ledger.KindFeedBatch, Actor: a, Agreement: ag, Subject: "status--1", Time: t0,
			Attrs: map[string]string{"added": "30", "duplicates": "2", "refused": "1", "credited": "30"}},
		ledger.Entry{Kind: ledger.KindFeedReleased, Agreement: ag, Subject: "release--1", Time: t0,
			Attrs: map[string]string{"recipient": b, "contributor": a, "from": "1", "to": "10"}},
		ledger.Entry{Kind: ledger.KindFeedBatch, Actor: b, Agreement: ag, Subject: "status--2", Time: t0,
			Attrs: map[string]string{"added": "5", "duplicates": "0", "refused": "0", "credited": "5"}},
		ledger.Entry{Kind: ledger.KindFeedReleased, Agreement: ag, Subject: "release--2", Time: t0,
			Attrs: map[string]string{"recipient": b, "contributor": a, "from": "11", "to": "20"}},
		ledger.Entry{Kind: ledger.KindFeedReleased, Agreement: ag, Subject: "release--3", Time: t0,
			Attrs: map[string]string{"recipient": a, "contributor": b, "from": "1", "to": "5"}},
		ledger.Entry{Kind: ledger.KindHandoverProposed, Agreement: ag, Subject: "handover--1", Time: t0},
		ledger.Entry{Kind: ledger.KindHandoverProposed, Agreement: ag, Subject: "handover--2", Time: t0},
		ledger.Entry{Kind: ledger.KindHandoverProposed, Agreement: ag, Subject: "handover--1", Time: t0, Attrs: map[string]string{"step": "accepted"}},
		ledger.Entry{Kind: ledger.KindHandoverDepositCommitted, Agreement: ag, Subject: "handover--1", Time: t0},
		ledger.Entry{Kind: ledger.KindHandoverReleased, Agreement: ag, Subject: "handover--1", Time: t0},
		ledger.Entry{Kind: ledger.KindHandoverProposed, Agreement: ag, Subject: "handover--3", Time: t0},
		ledger.Entry{Kind: ledger.KindHandoverProposed, Agreement: ag, Subject: "handover--3", Time: t0, Attrs: map[string]string{"step": "accepted"}},
		ledger.Entry{Kind: ledger.KindHandoverDepositCommitted, Agreement: ag, Subject: "handover--3", Time: t0},
		ledger.Entry{Kind: ledger.KindHandoverWithdrawn, Agreement: ag, Subject: "handover--3", Time: t0, Attrs: map[string]string{"step": "deposit_withdrawn"}},
		ledger.Entry{Kind: ledger.KindHandoverProposed, Agreement: ag, Subject: "handover--4", Time: t0},
		ledger.Entry{Kind: ledger.KindHandoverWithdrawn, Agreement: ag, Subject: "handover--4", Time: t0, Attrs: map[string]string{"step": "declined"}},
	)
	skey, _, _ := ledger.GenerateSignerKey("parley-test")
	signer, _ := ledger.NewSigner(skey)
	if err := st.Update(ctx, func(s ledger.Store) error { _, _, err := ledger.NewCheckpoint(ctx, s, signer); return err }); err != nil {
		t.Fatal(err)
	}
	appendEntries(t, st, ledger.Entry{Kind: ledger.KindFeedBatch, Actor: a, Agreement: ag, Subject: "status--3", Time: t0.Add(time.Minute),
		Attrs: map[string]string{"added": "1", "credited": "1"}})
	now = t0.Add(3 * time.Minute)

	// Three scrapes of three entries each read the log only partly; the
	// fourth catches up. Counters never fall on the way.
	var last float64
	for range 4 {
		if _, err := testutil.GatherAndCount(m.reg); err != nil {
			t.Fatal(err)
		}
		got, _ := gatherValue(t, m, "parley_objects_ingested_total", "")
		if got < last {
			t.Fatalf("ingested fell from %v to %v", last, got)
		}
		last = got
	}
	cases := []struct {
		name, label string
		want        float64
	}{
		{"parley_objects_ingested_total", "", 36},
		{"parley_objects_duplicate_total", "", 2},
		{"parley_objects_refused_total", "", 1},
		{"parley_objects_released_total", "", 25},
		{"parley_allowance_releases_total", "", 3},
		// A gave 31, B may read 20 of them; B gave 5, A reads all 5.
		{"parley_allowance_withheld_objects", "", 11},
		{"parley_handovers", `state="released"`, 1},
		{"parley_handovers", `state="proposed"`, 1},
		{"parley_handovers", `state="accepted"`, 1}, // a withdrawn deposit leaves the case accepted
		{"parley_handovers", `state="declined"`, 1},
		{"parley_handovers", `state="expired"`, 0},
		{"parley_ledger_entries_total", `kind="feed.batch"`, 3},
		{"parley_ledger_size", "", 18},
		{"parley_ledger_checkpoint_size", "", 17},
		{"parley_ledger_checkpoint_age_seconds", "", 120},
	}
	for _, tc := range cases {
		got, ok := gatherValue(t, m, tc.name, tc.label)
		if !ok || got != tc.want {
			t.Errorf("%s{%s} = %v (found %v), want %v", tc.name, tc.label, got, ok, tc.want)
		}
	}
	// A checkpoint covering everything has age 0.
	if err := st.Update(ctx, func(s ledger.Store) error { _, _, err := ledger.NewCheckpoint(ctx, s, signer); return err }); err != nil {
		t.Fatal(err)
	}
	if got, _ := gatherValue(t, m, "parley_ledger_checkpoint_age_seconds", ""); got != 0 {
		t.Errorf("age with a current checkpoint = %v", got)
	}
}

// gatherValue returns the value of the sample name{label}.
func gatherValue(t *testing.T, m *Metrics, name, label string) (float64, bool) {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			var pairs []string
			for _, l := range s.GetLabel() {
				pairs = append(pairs, l.GetName()+`="`+l.GetValue()+`"`)
			}
			if strings.Join(pairs, ",") != label {
				continue
			}
			switch {
			case s.Counter != nil:
				return s.Counter.GetValue(), true
			case s.Gauge != nil:
				return s.Gauge.GetValue(), true
			}
		}
	}
	return 0, false
}
