package agreement

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAllowance(t *testing.T) {
	cases := []struct {
		name    string
		terms   Terms
		credits float64
		want    int64
	}{
		{"grace only", Terms{Give: 1, Get: 1, Grace: 10}, 0, 10},
		{"one for one", Terms{Give: 1, Get: 1, Grace: 10}, 5, 15},
		{"two per credit", Terms{Give: 1, Get: 2}, 7, 14},
		{"one per three credits", Terms{Give: 3, Get: 1}, 8, 2},
		{"exact at multiple of give", Terms{Give: 3, Get: 1}, 9, 3},
		{"fractional credits floor", Terms{Give: 1, Get: 1}, 2.999, 2},
		{"tenth ratio stays exact", Terms{Give: 10, Get: 1}, 30, 3},
		{"negative credits count as none", Terms{Give: 1, Get: 1, Grace: 4}, -7, 4},
		{"NaN credits count as none", Terms{Give: 1, Get: 1, Grace: 4}, math.NaN(), 4},
		{"saturates", Terms{Give: 1, Get: 1e300}, 1e300, math.MaxInt64},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Allowance(tc.terms, tc.credits); got != tc.want {
				t.Errorf("Allowance = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestUnlocksAndCreditsFor(t *testing.T) {
	terms := Terms{Give: 3, Get: 1, Grace: 2}
	// With 1 credit per 3 objects, only every third credit unlocks one.
	var unlocked []int64
	for c := range 6 {
		unlocked = append(unlocked, Unlocks(terms, float64(c)))
	}
	want := []int64{0, 0, 1, 0, 0, 1}
	for i := range want {
		if unlocked[i] != want[i] {
			t.Fatalf("Unlocks over credits 0..5 = %v, want %v", unlocked, want)
		}
	}
	if got := Unlocks(Terms{Give: 1, Get: 2}, 4); got != 2 {
		t.Errorf("Unlocks at ratio 1:2 = %d, want 2", got)
	}
	for objects := int64(0); objects < 20; objects++ {
		c := CreditsFor(terms, objects)
		if Allowance(terms, c) < objects {
			t.Errorf("CreditsFor(%d) = %v is not enough", objects, c)
		}
		// Allowance's own rounding may forgive one ulp, so test minimality
		// a little below c.
		if c > 0 && Allowance(terms, c*(1-1e-9)) >= objects {
			t.Errorf("CreditsFor(%d) = %v is more than needed", objects, c)
		}
	}
}

func TestWeight(t *testing.T) {
	terms := Terms{Give: 1, Get: 1, Weights: map[string]float64{"malware": 5}}
	if w := Weight(terms, "malware"); w != 5 {
		t.Errorf("Weight(malware) = %v", w)
	}
	if w := Weight(terms, "indicator"); w != 1 {
		t.Errorf("Weight(indicator) = %v, want the default 1", w)
	}
}

func TestCheckScope(t *testing.T) {
	scope := Scope{Types: []string{"indicator", "malware"}, MaxTLP: TLPAmber}
	open := scope
	open.AllowUnmarked = true
	const (
		statement = "marking-definition--62fd3f9b-15f3-4ebc-802c-91fce9536bcf"
	)
	cases := []struct {
		name     string
		scope    Scope
		typ      string
		markings []string
		want     string // "" = in scope
	}{
		{"green indicator", scope, "indicator", []string{MarkingID(TLPGreen)}, ""},
		{"amber at the limit", scope, "malware", []string{MarkingID(TLPAmber)}, ""},
		{"TLP 1.0 white", scope, "malware", []string{"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"}, ""},
		{"type outside scope", scope, "malware-analysis", []string{MarkingID(TLPGreen)}, `type "malware-analysis" is outside the agreement's scope`},
		{"red", scope, "malware", []string{MarkingID(TLPRed)}, "marked TLP:RED, above the agreement's highest TLP:AMBER"},
		{"TLP 1.0 red", scope, "malware", []string{"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"}, "marked TLP:RED"},
		{"amber+strict", scope, "indicator", []string{MarkingID(TLPAmberStrict)}, "marked TLP:AMBER+STRICT, above"},
		{"several markings take the highest", scope, "indicator", []string{MarkingID(TLPClear), MarkingID(TLPRed), MarkingID(TLPGreen)}, "marked TLP:RED"},
		{"unmarked refused", scope, "indicator", nil, "unmarked objects are refused by this agreement"},
		{"only a statement marking counts as unmarked", scope, "indicator", []string{statement}, "unmarked objects are refused"},
		{"unmarked allowed", open, "indicator", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckScope(tc.scope, tc.typ, tc.markings)
			if tc.want == "" {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrOutOfScope) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckScope = %v, want ErrOutOfScope naming %q", err, tc.want)
			}
		})
	}
}

func TestTLPNames(t *testing.T) {
	for lvl := TLPClear; lvl <= TLPRed; lvl++ {
		back, err := ParseTLP(lvl.String())
		if err != nil || back != lvl {
			t.Errorf("ParseTLP(%q) = %v, %v", lvl.String(), back, err)
		}
		if got, ok := TLPOfMarking(MarkingID(lvl)); !ok || got != lvl {
			t.Errorf("TLPOfMarking(MarkingID(%v)) = %v", lvl, got)
		}
	}
	if _, err := ParseTLP("white"); err == nil {
		t.Error("documents use clear, not white")
	}
}

// The TLP 2.0 marking definitions published by OASIS must carry the ids and
// names this package assumes.
func TestTLPMarkingsMatchOASIS(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "..", "shared", "testdata", "stix", "valid", "oasis-tlp2-markings")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		t.Skip("shared TLP 2.0 marking definitions not present at " + dir)
	}
	found := 0
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct {
			Objects []struct {
				ID, Name, Type string
			}
		}
		if err := json.Unmarshal(raw, &bundle); err != nil {
			continue // one OASIS file is deliberately broken
		}
		for _, o := range bundle.Objects {
			name, ok := strings.CutPrefix(o.Name, "TLP:")
			if o.Type != "marking-definition" || !ok {
				continue
			}
			lvl, err := ParseTLP(strings.ToLower(name))
			if err != nil {
				t.Errorf("%s: %v", path, err)
				continue
			}
			if MarkingID(lvl) != o.ID {
				t.Errorf("%s is %s in OASIS, %s here", o.Name, o.ID, MarkingID(lvl))
			}
			found++
		}
	}
	if found < 4 {
		t.Errorf("only %d TLP marking definitions found in %s", found, dir)
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("repository root not found")
		}
		dir = parent
	}
}
