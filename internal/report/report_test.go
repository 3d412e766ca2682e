package report

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/stix"
)

func TestParsePeriod(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"2026-11-01", "2026-12-01", true},
		{"2026-11-01T00:00:00Z", "2026-11-01T00:00:00.001Z", true},
		{"2026-11-01T02:00:00+02:00", "2026-11-01T01:00:00Z", true},
		{"2026-12-01", "2026-11-01", false},
		{"2026-11-01", "2026-11-01", false},
		{"", "2026-11-01", false},
		{"yesterday", "2026-11-01", false},
		{"2000-01-01", "2026-01-01", false}, // longer than ten years
	} {
		f, to, err := ParsePeriod(tc.from, tc.to)
		if tc.ok != (err == nil) {
			t.Errorf("ParsePeriod(%q, %q) = %v, want ok=%v", tc.from, tc.to, err, tc.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePeriod(%q, %q): %v does not wrap ErrInvalid", tc.from, tc.to, err)
		}
		if err == nil && (f.Location() != time.UTC || to.Location() != time.UTC || !f.Before(to)) {
			t.Errorf("ParsePeriod(%q, %q) = %v, %v", tc.from, tc.to, f, to)
		}
	}
}

func TestTLPOf(t *testing.T) {
	for raw, want := range map[string]string{
		`{"type":"indicator"}`:                                                                 Unmarked,
		`{"object_marking_refs":["` + stix.TLP2Green + `"]}`:                                   "TLP:GREEN",
		`{"object_marking_refs":["` + stix.TLPWhite + `","` + stix.TLP2AmberStrict + `"]}`:     "TLP:AMBER+STRICT",
		`{"object_marking_refs":["marking-definition--00000000-0000-4000-8000-000000000001"]}`: Unmarked,
		`not json`: Unmarked,
	} {
		if got := tlpOf([]byte(raw)); got != want {
			t.Errorf("tlpOf(%s) = %s, want %s", raw, got, want)
		}
	}
}

// TestHashIgnoresMapOrderAndSeesEveryFigure: the hash is of canonical
// JSON, so it does not depend on how maps were filled, and any figure
// changed changes it.
func TestHashIgnoresMapOrderAndSeesEveryFigure(t *testing.T) {
	mk := func(order []string) *Facts {
		f := &Facts{Format: Format, Agreement: "agreement--x", Parties: []string{"party--a", "party--b"},
			Sides: []Side{{Party: "party--a", ByType: map[string]int64{}, ByTLP: map[string]int64{}}}}
		for _, k := range order {
			f.Sides[0].ByType[k] = int64(len(k))
			f.Sides[0].ByTLP[k] = 1
		}
		return f
	}
	h1, _ := mk([]string{"indicator", "malware", "ipv4-addr"}).Hash()
	h2, _ := mk([]string{"ipv4-addr", "indicator", "malware"}).Hash()
	if h1 != h2 || !strings.HasPrefix(h1, "sha256:") || len(h1) != 71 {
		t.Fatalf("hashes %s and %s", h1, h2)
	}
	f := mk([]string{"indicator"})
	before, _ := f.Hash()
	f.Sides[0].ByType["indicator"]++
	if after, _ := f.Hash(); after == before {
		t.Fatal("a changed count left the hash unchanged")
	}
}

func TestStandaloneHTML(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(30 * 24 * time.Hour)
	r := &Report{Hash: "sha256:" + strings.Repeat("a", 64), Names: map[string]string{"party--a": "Alpha <CERT>", "party--b": "Bravo"},
		Signatures: []exchange.ReportSignature{{Party: "party--a", KeyID: "0123456789abcdef", Matches: true, LedgerIndex: 9}},
		Facts: Facts{Format: Format, Agreement: "agreement--x", Parties: []string{"party--a", "party--b"},
			From: from.Format(time.RFC3339Nano), To: to.Format(time.RFC3339Nano),
			Sides: []Side{
				{Party: "party--a", Released: 12, ByType: map[string]int64{"indicator": 10, "malware": 2}, ByTLP: map[string]int64{"TLP:GREEN": 12}},
				{Party: "party--b", Released: 3, ByType: map[string]int64{"indicator": 3}, ByTLP: map[string]int64{Unmarked: 3}},
			},
			Series: []Point{{Time: from.Add(15 * 24 * time.Hour).Format(time.RFC3339Nano), Contributed: []int64{5, 1}, Released: []int64{1, 4}},
				{Time: to.Format(time.RFC3339Nano), Contributed: []int64{12, 3}, Released: []int64{3, 12}}},
			Agreed:   []Finding{{Kind: "released", Text: "party--a gave", Entries: []int64{4, 5}, EntriesTotal: 2}},
			Concerns: []Finding{{Kind: "one_sided", Text: "one-sided flow: party--a gave 12 object(s), party--b gave 3", Entries: []int64{7}, EntriesTotal: 1}},
			Matching: Matching{Elements: []int64{0, 0}}}}
	var b bytes.Buffer
	if err := Standalone(&b, NewView(r, to)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"Where the parties agree", "Areas of concern", "Alpha &lt;CERT&gt; gave", "one-sided flow: Alpha &lt;CERT&gt; gave 12",
		"<polyline", "<rect", "indicator (13)", "TLP:GREEN (12)", "2026-11-01", "ledger #4, #5", "signed this report"} {
		if !strings.Contains(out, want) {
			t.Errorf("the HTML lacks %q", want)
		}
	}
	if strings.Contains(out, "<script") || strings.Contains(out, "Alpha <CERT>") || strings.Contains(out, "style=") {
		t.Error("the HTML has a script, an unescaped name or an inline style attribute")
	}
}

// FuzzParsePeriod: whatever ParsePeriod accepts is a non-empty UTC period
// of at most MaxPeriod that reads back the same from its RFC 3339 form.
func FuzzParsePeriod(f *testing.F) {
	f.Add("2026-11-01", "2026-12-01")
	f.Add("2026-11-01T00:00:00Z", "2026-11-01T00:00:00.000000001Z")
	f.Add("2026-11-01T02:00:00+02:00", "2026-13-01")
	f.Fuzz(func(t *testing.T, a, b string) {
		from, to, err := ParsePeriod(a, b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if !from.Before(to) || to.Sub(from) > MaxPeriod || from.Location() != time.UTC || to.Location() != time.UTC {
			t.Fatalf("ParsePeriod(%q, %q) = %v, %v", a, b, from, to)
		}
		f2, t2, err := ParsePeriod(from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
		if err != nil || !f2.Equal(from) || !t2.Equal(to) {
			t.Fatalf("round trip of %v, %v: %v, %v, %v", from, to, f2, t2, err)
		}
	})
}
