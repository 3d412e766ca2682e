package crash

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/parley-cti/parley/internal/ledger"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// parleyBinary builds cmd/parley once for this package's tests.
func parleyBinary(t *testing.T) string {
	t.Helper()
	if *binary != "" {
		return *binary
	}
	buildOnce.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			buildErr = err
			return
		}
		root, err := RepoRoot(wd)
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "parley-crash-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin, buildErr = Build(context.Background(), root, dir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// TestChecksCatchTampering proves the checks are not vacuous: each case
// makes the harness believe something the server never did and expects
// the check after the next restart to report it.
func TestChecksCatchTampering(t *testing.T) {
	bin := parleyBinary(t)
	cases := []struct {
		name, want string
		tamper     func(h *harness)
	}{
		{"lost version", "is lost", func(h *harness) {
			k := objKey{h.opColl, "indicator--" + uuid(999_999_999_999), version(3)}
			h.m.acked[k] = indicator(999_999_999_999, 3, "").raw
			h.m.order = append(h.m.order, k)
		}},
		{"changed version", "changed", func(h *harness) {
			k := h.m.order[len(h.m.order)-1]
			h.m.acked[k] = []byte(`{"id":"` + k.id + `","modified":"` + k.version + `","name":"edited"}`)
		}},
		{"phantom object", "never sent as a valid object", func(h *harness) {
			k := h.m.order[0]
			delete(h.m.acked, k)
			h.m.order = h.m.order[1:]
			h.versionsChecked = max(0, h.versionsChecked-1)
		}},
		{"wrong receipt", "names entry", func(h *harness) {
			h.m.receipts = append(h.m.receipts, receipt{index: 0, kind: ledger.KindFeedBatch, subject: "status--nonexistent"})
		}},
		{"rollback", "rollback", func(h *harness) {
			c := h.led.handed[len(h.led.handed)-1]
			c.Size += 1000
			h.led.handed = append(h.led.handed, c)
		}},
		{"lost status", "acknowledged status", func(h *harness) {
			st := h.m.statuses[len(h.m.statuses)-1]
			st.id = "00000000-0000-4000-8000-000000000000"
			h.m.statuses = append(h.m.statuses, st)
		}},
		{"lost deposit", "deposit of", func(h *harness) {
			h.handovers[0].ackedDeposit["party--nobody"] = true
		}},
		{"lost signature", "signature", func(h *harness) {
			s := h.m.sigs[0]
			s.signedAt = s.signedAt.Add(-1)
			h.m.sigs = append(h.m.sigs, s)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			once := false
			cfg := Config{Binary: bin, Dir: t.TempDir(), Kills: 2, Seed: 1, StartupKillRate: -1,
				MinDelay: 200e6, MaxDelay: 300e6,
				tamper: func(h *harness) {
					if once {
						return
					}
					once = true
					h.m.mu.Lock()
					defer h.m.mu.Unlock()
					tc.tamper(h)
				}}
			_, err := Run(context.Background(), cfg)
			if !errors.Is(err, ErrInvariant) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v; want an ErrInvariant saying %q", err, tc.want)
			}
		})
	}
}
