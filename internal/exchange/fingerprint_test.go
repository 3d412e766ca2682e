package exchange

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/stix"
)

// TestParseAllFingerprintsOnlyWhenAsked: objects parsed for an agreement
// carry their content fingerprint and those for a plain collection do not,
// with the same ids and the same refusals either way, on the serial path
// (fewer than 64 objects) and the parallel one.
func TestParseAllFingerprintsOnlyWhenAsked(t *testing.T) {
	for _, n := range []int{5, 200} {
		raws := make([]json.RawMessage, n)
		for i := range raws {
			raws[i] = json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":"indicator--%08d-0000-4000-8000-000000000000",
				"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.%d']",
				"pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`, i, i%256))
		}
		raws[3] = json.RawMessage(`{"type":"indicator","spec_version":"2.1"}`) // refused either way
		with, without := parseAll(raws, true), parseAll(raws, false)
		valid := 0
		for i := range raws {
			a, b := with[i], without[i]
			if (a.err == nil) != (b.err == nil) || (a.err != nil && a.err.Error() != b.err.Error()) {
				t.Fatalf("n=%d object %d: errors %v and %v", n, i, a.err, b.err)
			}
			if a.err != nil {
				continue
			}
			valid++
			if a.obj.ID != b.obj.ID || a.obj.Fingerprint == (stix.Fingerprint{}) || b.obj.Fingerprint != (stix.Fingerprint{}) {
				t.Fatalf("n=%d object %d: ids %s, %s; fingerprints %x (want one), %x (want none)", n, i, a.obj.ID, b.obj.ID, a.obj.Fingerprint[:4], b.obj.Fingerprint[:4])
			}
		}
		if with[3].err == nil || valid != n-1 {
			t.Fatalf("n=%d: %d valid, the one without id refused: %v; want %d and a refusal", n, valid, with[3].err, n-1)
		}
	}
}

// TestContributeRefusesUnfingerprinted: an object parsed without its
// fingerprint never reaches an agreement's credits, where it would look
// like every other such object; nothing is read or written first.
func TestContributeRefusesUnfingerprinted(t *testing.T) {
	raw := []byte(`{"type":"malware","spec_version":"2.1","id":"malware--31b940d4-6f7f-459a-80ea-9c1f17b58abc",
		"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"DarkSide","is_family":true}`)
	o, err := stix.ValidateObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	_, err = contribute(context.Background(), nil, Agreement{}, "party--alpha", []*stix.Object{o}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "without its content fingerprint") {
		t.Fatalf("contribute = %v; want a refusal naming the missing fingerprint", err)
	}
}
