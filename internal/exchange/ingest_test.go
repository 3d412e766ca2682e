package exchange_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/store"
)

// A cyber-observable without created or modified has one version: posting
// it again must not add one.
func TestTimelessObjectRepostAddsNoVersion(t *testing.T) {
	f := newFixture(t)
	c, err := f.ex.CreateCollection(ctx, "feed", "", []string{f.a.p.PartyID}, []string{f.a.p.PartyID})
	if err != nil {
		t.Fatal(err)
	}
	sco := json.RawMessage(`{"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd","value":"198.51.100.3"}`)
	for i := 0; i < 2; i++ {
		f.now = f.now.Add(time.Second)
		res, err := f.ex.Ingest(ctx, f.a.p, exchange.OperatorRoot, c.ID, []json.RawMessage{sco})
		if err != nil || len(res.Status.Successes) != 1 {
			t.Fatalf("post %d: %+v, %v", i, res.Status, err)
		}
		if i == 1 && res.Status.Successes[0].Message == "" {
			t.Fatalf("the re-post was not reported as already stored: %+v", res.Status.Successes[0])
		}
	}
	pg, err := f.ex.Query(ctx, f.a.p, exchange.OperatorRoot, store.ObjectQuery{Collection: c.ID, Versions: store.VersionFilter{All: true}, Limit: 10})
	if err != nil || len(pg.Objects) != 1 {
		t.Fatalf("versions after two posts: %d, %v", len(pg.Objects), err)
	}
}

// Objects of one batch get strictly increasing date_added values, so a
// client resuming with added_after never skips part of a batch.
func TestBatchDateAddedIncreases(t *testing.T) {
	f := newFixture(t)
	c, err := f.ex.CreateCollection(ctx, "feed", "", []string{f.a.p.PartyID}, []string{f.a.p.PartyID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ex.Ingest(ctx, f.a.p, exchange.OperatorRoot, c.ID, batch(0, 50)); err != nil {
		t.Fatal(err)
	}
	pg, err := f.ex.Query(ctx, f.a.p, exchange.OperatorRoot, store.ObjectQuery{Collection: c.ID, Limit: 100})
	if err != nil || len(pg.Objects) != 50 {
		t.Fatalf("%d objects, %v", len(pg.Objects), err)
	}
	for i := 1; i < len(pg.Objects); i++ {
		if !pg.Objects[i].DateAdded.After(pg.Objects[i-1].DateAdded) {
			t.Fatalf("object %d added at %v, not after %v", i, pg.Objects[i].DateAdded, pg.Objects[i-1].DateAdded)
		}
	}
}

// IngestResult.IDs holds each object's id as parsed, "" where it did not
// parse (feeds across nodes count a page's distinct contributions by it).
func TestIngestResultIDs(t *testing.T) {
	f := newFixture(t)
	c, err := f.ex.CreateCollection(ctx, "feed", "", []string{f.a.p.PartyID}, []string{f.a.p.PartyID})
	if err != nil {
		t.Fatal(err)
	}
	sco := json.RawMessage(`{"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd","value":"198.51.100.3"}`)
	bad := json.RawMessage(`{"type":"ipv4-addr","spec_version":"2.1","id":"ipv4-addr--0c0b8ecd-6fb1-5bf4-a1d4-3c7e8f4a5f11"}`) // no value
	res, err := f.ex.Ingest(ctx, f.a.p, exchange.OperatorRoot, c.ID, []json.RawMessage{bad, sco, sco})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"", "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"}
	if len(res.IDs) != len(want) || res.IDs[0] != want[0] || res.IDs[1] != want[1] || res.IDs[2] != want[2] || len(res.Status.Failures) != 1 {
		t.Fatalf("IDs = %q, failures %+v; want %q and one failure", res.IDs, res.Status.Failures, want)
	}
}
