package e2e

import (
	"net/url"
	"strings"
	"testing"
)

// TestAttackPathTraversal: ids carrying encoded slashes, dot segments,
// backslashes, NULs, double encoding or zero-width characters never reach
// another resource. Each answer is the standard 404 (or 400) of the surface
// — byte-identical to a missing resource of the same kind where the mux
// does not step in — or the mux's redirect to the cleaned path, which
// itself answers 404; never data, never a 500.
func TestAttackPathTraversal(t *testing.T) {
	w := newAttackWorld(t)
	c := w.charlie
	ag, coll, op := w.ag, w.alphaColl, w.opAlpha
	missColl := missingCollection()
	secretID := w.unreleased[1].ID
	cases := []struct {
		name       string
		p          *Party
		path, twin string // twin "" when the mux may redirect
	}{
		{"encoded-slash-in-collection", w.bravo, objectsPath(ag, w.bravoColl+"%2f..%2f"+coll), objectsPath(ag, missColl)},
		{"encoded-slash-to-operator", w.bravo, objectsPath(ag, "..%2f..%2fshared%2fcollections%2f"+op), objectsPath(ag, missColl)},
		{"encoded-slash-in-object", w.bravo, objectPath(ag, coll, "..%2f..%2f"+secretID), objectPath(ag, coll, missingObject())},
		{"encoded-slash-after-object", w.bravo, objectPath(ag, coll, secretID+"%2f..%2f"+w.released[0].ID), objectPath(ag, coll, missingObject())},
		{"encoded-slash-versions", w.bravo, objectPath(ag, coll, w.released[0].ID+"%2f..%2f"+secretID) + "versions/", objectPath(ag, coll, missingObject()) + "versions/"},
		{"outsider-encoded-slash", c, objectPath(ag, coll+"%2f", w.released[0].ID), objectPath(ag, missColl, missingObject())},
		{"double-encoded", w.bravo, objectsPath(ag, "..%252f"+op), objectsPath(ag, missColl)},
		{"backslash", w.bravo, objectsPath("shared", "..%5c"+op), objectsPath("shared", missColl)},
		{"nul", w.bravo, objectPath(ag, coll, secretID+"%00"), objectPath(ag, coll, missingObject())},
		{"zero-width", c, objectsPath(ag, coll+"%E2%80%8B"), objectsPath(ag, missColl)},
		{"root-encoded-slash", c, "/taxii2/" + ag + "%2fcollections%2f" + coll + "/", "/taxii2/" + missingAgreement() + "/"},
		{"root-dotdot-encoded", c, "/taxii2/..%2f" + ag + "/collections/", "/taxii2/" + missingAgreement() + "/collections/"},
		{"long-id", c, objectsPath(ag, strings.Repeat("a", 5000)), objectsPath(ag, missColl)},
		{"status-encoded-slash", w.bravo, "/taxii2/" + ag + "/status/..%2f" + w.alphaStatus + "/", "/taxii2/" + ag + "/status/" + missingStatus() + "/"},
		{"api-agreement-encoded", c, "/api/v1/agreements/..%2f" + ag, "/api/v1/agreements/" + missingAgreement()},
		{"api-agreement-suffix", c, "/api/v1/agreements/" + ag + "%2fbalance", "/api/v1/agreements/" + missingAgreement()},
		{"api-handover-encoded", c, "/api/v1/handovers/..%2fagreements%2f" + ag, "/api/v1/handovers/" + missingStatus()},
		{"ledger-entry-encoded", c, "/ledger/entries/..%2f0", "/ledger/entries/-1"},
		// Plain and percent-encoded dot segments, which the mux cleans.
		{"dot-segments", w.bravo, "/taxii2/" + ag + "/collections/" + w.bravoColl + "/../" + coll + "/../../../shared/collections/" + op + "/objects/", ""},
		{"encoded-dot-segments", w.bravo, "/taxii2/" + ag + "/collections/%2e%2e/%2e%2e/shared/collections/" + op + "/objects/", ""},
		{"dot-segments-object", w.bravo, objectPath(ag, coll, w.released[0].ID) + "../" + secretID + "/", ""},
		{"dot-segments-api", c, "/api/v1/handovers/../agreements/" + ag, ""},
		{"dot-segments-ledger", c, "/ledger/../api/v1/agreements/" + ag, ""},
		{"double-slash", c, "/taxii2//" + ag + "//collections/" + coll + "/objects/", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// An id the attacker typed may come back in a redirect's
			// Location; that tells it nothing.
			var hidden []string
			for _, n := range w.hiddenFromCharlie() {
				if !strings.Contains(tc.path, n) {
					hidden = append(hidden, n)
				}
			}
			r := w.send(t, get(tc.p, tc.path))
			noLeak(t, tc.path, r, hidden)
			if r.Status >= 300 && r.Status < 400 {
				if tc.twin != "" {
					t.Errorf("redirected: %s", r)
				}
				loc, err := url.Parse(r.Header.Get("Location"))
				if err != nil {
					t.Fatalf("redirect to %q: %v", r.Header.Get("Location"), err)
				}
				r = w.send(t, get(tc.p, loc.RequestURI()))
				noLeak(t, "after the redirect", r, hidden)
			}
			if r.Status != 404 && r.Status != 400 {
				t.Errorf("%s: %s", tc.path, r)
			}
			if tc.twin != "" {
				identical(t, tc.name, r, w.send(t, get(tc.p, tc.twin)))
			}
		})
	}
}
