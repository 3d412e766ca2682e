package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/postgres"
)

// indicatorRaw is the size and shape of a typical posted indicator.
func indicatorRaw(id string, v time.Time) []byte {
	return fmt.Appendf(nil, `{"type":"indicator","spec_version":"2.1","id":%q,"created":"2026-01-01T00:00:00.000Z","modified":%q,`+
		`"name":"C2 server of a ransomware crew","description":"Observed in the intrusion set's second-stage loader, beaconing every 300 s.",`+
		`"indicator_types":["malicious-activity"],"pattern":"[ipv4-addr:value = '198.51.100.23'] OR [domain-name:value = 'c2.example.net']",`+
		`"pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","labels":["ransomware","c2"],`+
		`"object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}`, id, v.Format(time.RFC3339Nano))
}

// BenchmarkPut1000 stores batches of 1,000 objects and reports objects/s:
// new objects, new versions of stored objects (each batch moves every
// object's last version), and new objects inside a SERIALIZABLE Update.
func BenchmarkPut1000(b *testing.B) {
	const batchN = 1000
	for _, mode := range []string{"new", "versions", "update"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			db := open(b, freshSchema(b), postgres.Options{Migrate: true})
			if err := db.Collections().Create(ctx, store.Collection{ID: "c", APIRoot: "r", Title: "c", CreatedAt: time.UnixMicro(1)}); err != nil {
				b.Fatal(err)
			}
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			batch := make([]store.Object, batchN)
			n := 0
			b.ResetTimer()
			for b.Loop() {
				for i := range batch {
					id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", n*batchN+i)
					v := base
					if mode == "versions" {
						id = fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i)
						v = base.Add(time.Duration(n) * time.Second)
					}
					batch[i] = store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: v,
						DateAdded: time.Now().UTC().Truncate(time.Microsecond), Raw: indicatorRaw(id, v)}
				}
				n++
				var out []store.PutOutcome
				var err error
				if mode == "update" {
					err = db.Update(ctx, func(tx store.Handle) error {
						out, err = tx.Objects().Put(ctx, "c", batch)
						return err
					})
				} else {
					out, err = db.Objects().Put(ctx, "c", batch)
				}
				if err != nil {
					b.Fatal(err)
				}
				if out[batchN-1] != store.Added {
					b.Fatalf("outcome %v, want Added", out[batchN-1])
				}
			}
			b.ReportMetric(float64(n*batchN)/b.Elapsed().Seconds(), "objects/s")
		})
	}
}

// BenchmarkQueryPage reads 100-object pages of the last versions from a
// collection of 10,000 objects, walking the cursor as a TAXII client does.
func BenchmarkQueryPage(b *testing.B) {
	ctx := context.Background()
	db := open(b, freshSchema(b), postgres.Options{Migrate: true})
	if err := db.Collections().Create(ctx, store.Collection{ID: "c", APIRoot: "r", Title: "c", CreatedAt: time.UnixMicro(1)}); err != nil {
		b.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for k := range 10 {
		batch := make([]store.Object, 1000)
		for i := range batch {
			id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", k*1000+i)
			batch[i] = store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: base,
				DateAdded: base.Add(time.Duration(k*1000+i) * time.Millisecond), Raw: indicatorRaw(id, base)}
		}
		if _, err := db.Objects().Put(ctx, "c", batch); err != nil {
			b.Fatal(err)
		}
	}
	var after store.Position
	for b.Loop() {
		p, err := db.Objects().Query(ctx, store.ObjectQuery{Collection: "c", After: after, Limit: 100})
		if err != nil {
			b.Fatal(err)
		}
		if !p.More {
			after = store.Position{}
			continue
		}
		last := p.Objects[len(p.Objects)-1]
		after = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
	}
}

// BenchmarkConcurrentPut has two instances put 100-object batches of new
// versions of the same 200 objects at once, directly (READ COMMITTED with
// head row locks) or inside Update (SERIALIZABLE with retries), and reports
// objects/s and retried transactions per batch.
func BenchmarkConcurrentPut(b *testing.B) {
	const batchN, idsN = 100, 200
	for _, mode := range []string{"direct", "update"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			u := freshSchema(b)
			dbs := []*postgres.DB{open(b, u, postgres.Options{Migrate: true}), open(b, u, postgres.Options{})}
			if err := dbs[0].Collections().Create(ctx, store.Collection{ID: "c", APIRoot: "r", Title: "c", CreatedAt: time.UnixMicro(1)}); err != nil {
				b.Fatal(err)
			}
			base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var next atomic.Int64
			var batches atomic.Int64
			b.SetParallelism(2) // 2×GOMAXPROCS writers, spread over the two instances
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := next.Add(1)
					db := dbs[n%2]
					batch := make([]store.Object, batchN)
					for i := range batch {
						id := fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", (int(n)*37+i)%idsN)
						v := base.Add(time.Duration(n) * time.Millisecond)
						batch[i] = store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: v,
							DateAdded: time.Now().UTC().Truncate(time.Microsecond), Raw: indicatorRaw(id, v)}
					}
					var err error
					if mode == "update" {
						err = db.Update(ctx, func(tx store.Handle) error {
							_, err := tx.Objects().Put(ctx, "c", batch)
							return err
						})
					} else {
						_, err = db.Objects().Put(ctx, "c", batch)
					}
					if err != nil {
						b.Error(err)
						return
					}
					batches.Add(1)
				}
			})
			b.ReportMetric(float64(batches.Load()*batchN)/b.Elapsed().Seconds(), "objects/s")
			b.ReportMetric(float64(dbs[0].Retries()+dbs[1].Retries())/float64(max(batches.Load(), 1)), "retries/batch")
		})
	}
}
