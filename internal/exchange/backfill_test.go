package exchange_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
)

// TestBackfill: objects stored without ledger entries (as before the
// ledger existed) get one genesis entry per non-empty collection whose
// count and digest match the stored versions; a second run adds nothing.
func TestBackfill(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := exchange.New(st).Backfill(ctx, t0); err != nil || n != 0 {
		t.Fatalf("backfill of an empty store = %d, %v", n, err)
	}
	p, _, err := party.New(st).Create(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	want := map[string][2]string{} // collection → count, digest
	for ci, n := range []int{4, 0, 2} {
		c, err := exchange.New(st).CreateCollection(ctx, fmt.Sprint("c", ci), "", []string{p.ID}, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := sha256.New()
		var objs []store.Object
		for k := range n {
			id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", k)
			v := base.Add(time.Duration(k) * time.Millisecond)
			objs = append(objs, store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: v, DateAdded: base.Add(time.Duration(k) * time.Second),
				Raw: []byte(fmt.Sprintf(`{"type":"indicator","id":%q}`, id))})
			d.Write([]byte(id + " " + stix.FormatTime(v) + "\n"))
		}
		if n > 0 {
			if _, err := st.Objects().Put(ctx, c.ID, objs); err != nil {
				t.Fatal(err)
			}
			want[c.ID] = [2]string{fmt.Sprint(n), "sha256:" + hex.EncodeToString(d.Sum(nil))}
		}
	}
	n, err := exchange.New(st).Backfill(ctx, t0)
	if err != nil || n != 2 {
		t.Fatalf("backfill = %d, %v; want 2 entries", n, err)
	}
	l := st.Ledger()
	raws, err := l.ReadEntries(ctx, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	key, err := l.CommitmentKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range raws {
		e, err := ledger.DecodeEntry(raw)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := want[e.Attrs["collection"]]
		if !ok || e.Kind != ledger.KindFeedBatch || e.Subject != exchange.GenesisSubjectPrefix+e.Attrs["collection"] ||
			e.Attrs["added"] != w[0] || e.Open(ledger.EntryKey(key, e.Nonce), map[string]string{"objects": w[1]}) != nil || e.Attrs["genesis"] != "true" {
			t.Fatalf("genesis entry %s; want count %s digest %s", raw, w[0], w[1])
		}
	}
	if n, err := exchange.New(st).Backfill(ctx, t0.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("second backfill = %d, %v; want nothing", n, err)
	}
	if size, _ := l.Size(ctx); size != 2 {
		t.Fatalf("ledger size %d after the second backfill", size)
	}
}
