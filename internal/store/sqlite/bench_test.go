package sqlite

// Store-level benchmarks of the object workload the TAXII server puts on
// SQLite: Put of 1,000-object batches, reading a collection page by page,
// and point lookups by id. They take an opener so that driver_test.go can
// run the same workload on another database/sql driver.
//
//	go test ./internal/store/sqlite -run '^$' -bench . -benchtime 200x

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

const (
	benchBatch  = 1000    // objects per Put, as one TAXII envelope
	benchStored = 100_000 // objects the read benchmarks query
	benchPage   = 1000    // Query limit, TAXII's default page
)

// opener opens a fresh, migrated database in dir.
type opener func(tb testing.TB, dir string) *DB

func openDefault(tb testing.TB, dir string) *DB {
	tb.Helper()
	db, err := Open(context.Background(), dir, Options{Migrate: true})
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

// openWith opens a database in dir as Open does, but on the given driver
// and connection strings: a test-only door for comparing drivers and
// pragmas on the same workload without touching Open.
func openWith(tb testing.TB, dir, driver string, dsnOf func(path string, readOnly bool) string) *DB {
	tb.Helper()
	ctx := context.Background()
	path := filepath.Join(dir, FileName)
	w, err := sql.Open(driver, dsnOf(path, false))
	if err != nil {
		tb.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	if err := migrate(ctx, w, true); err != nil {
		w.Close()
		tb.Fatal(err)
	}
	r, err := sql.Open(driver, dsnOf(path, true))
	if err != nil {
		w.Close()
		tb.Fatal(err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	return newDB(w, r, path)
}

// openTempStoreMemory is Open plus temp_store=MEMORY, which keeps the
// statement journal of multi-row INSERTs off the disk.
func openTempStoreMemory(tb testing.TB, dir string) *DB {
	return openWith(tb, dir, DriverName, func(path string, ro bool) string {
		return dsn(path, ro) + "&_pragma=temp_store(MEMORY)"
	})
}

// benchID is a version-4 UUID id whose low 48 bits are i, so ids never
// repeat; the high bits are scattered as real ids are, which is what makes
// the (coll, id, version) index insertions random.
func benchID(i int) string {
	x := uint64(i)*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return fmt.Sprintf("indicator--%08x-%04x-4%03x-8000-%012x", uint32(x>>32), uint16(x>>16), uint16(x)&0xfff, uint64(i)&0xffffffffffff)
}

// benchObjects returns objects first..first+n-1: small indicators, each
// a new id, added at the given time.
func benchObjects(first, n int, added time.Time) []store.Object {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	objs := make([]store.Object, n)
	for k := range objs {
		i := first + k
		id := benchID(i)
		v := base.Add(time.Duration(i) * time.Millisecond)
		ts := v.Format("2006-01-02T15:04:05.000Z")
		raw := `{"type":"indicator","spec_version":"2.1","id":"` + id + `","created":"` + ts + `","modified":"` + ts +
			`","name":"bench indicator ` + strconv.Itoa(i) + `","indicator_types":["malicious-activity"],"pattern":"[ipv4-addr:value = '10.` +
			strconv.Itoa(i>>16&0xff) + "." + strconv.Itoa(i>>8&0xff) + "." + strconv.Itoa(i&0xff) +
			`']","pattern_type":"stix","valid_from":"` + ts + `"}`
		objs[k] = store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: v, DateAdded: added, Raw: []byte(raw)}
	}
	return objs
}

// benchCollection creates the party and collection the benchmarks write to.
func benchCollection(tb testing.TB, db *DB) string {
	tb.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.Parties().Create(ctx, store.Party{ID: "party--bench", Name: "bench", CreatedAt: t0}); err != nil {
		tb.Fatal(err)
	}
	c := store.Collection{ID: "b0a7c1e2-0000-4000-8000-000000000001", APIRoot: "shared", Title: "bench", CreatedAt: t0,
		Readers: []string{"party--bench"}, Writers: []string{"party--bench"}}
	if err := db.Collections().Create(ctx, c); err != nil {
		tb.Fatal(err)
	}
	return c.ID
}

// fill stores n objects from index first in batches, each batch one
// transaction with its own date_added, as successive POSTs would.
func fill(tb testing.TB, db *DB, coll string, first, n int) {
	tb.Helper()
	ctx := context.Background()
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for off := 0; off < n; off += benchBatch {
		objs := benchObjects(first+off, min(benchBatch, n-off), added.Add(time.Duration(first+off)*time.Microsecond))
		if *growthClaim {
			// As a TAXII POST to an operator collection: the owner claim
			// and the Put in one transaction (exchange/ownership.go).
			err := db.Update(ctx, func(tx store.Handle) error {
				ids := make([]string, len(objs))
				for i := range objs {
					ids[i] = objs[i].ID
				}
				if _, err := tx.Objects().Claim(ctx, coll, "party--bench", ids); err != nil {
					return err
				}
				_, err := tx.Objects().Put(ctx, coll, objs)
				return err
			})
			if err != nil {
				tb.Fatal(err)
			}
			continue
		}
		if _, err := db.Objects().Put(ctx, coll, objs); err != nil {
			tb.Fatal(err)
		}
	}
}

// cpuTime is the CPU time (user + system) this process has used. The
// machine is shared, so wall-clock rates vary with other load; CPU per
// object is the steadier figure to compare variants by.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuTimer measures CPU time over a benchmark's timed section.
type cpuTimer struct{ start time.Duration }

func startCPU(b *testing.B) *cpuTimer {
	b.ResetTimer()
	return &cpuTimer{start: cpuTime()}
}

// report adds CPU µs per unit (objects, lookups) to the benchmark's output.
func (c *cpuTimer) report(b *testing.B, units int, name string) {
	b.ReportMetric(float64((cpuTime()-c.start).Microseconds())/float64(units), "cpu-µs/"+name)
}

// benchPut stores b.N batches of new objects; objects/s is the figure.
func benchPut(b *testing.B, open opener) {
	db := open(b, b.TempDir())
	defer db.Close()
	coll := benchCollection(b, db)
	ctx := context.Background()
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	batches := make([][]store.Object, b.N)
	for i := range batches {
		batches[i] = benchObjects(i*benchBatch, benchBatch, added.Add(time.Duration(i)*time.Millisecond))
	}
	cpu := startCPU(b)
	for i := range b.N {
		out, err := db.Objects().Put(ctx, coll, batches[i])
		if err != nil {
			b.Fatal(err)
		}
		if out[0] != store.Added || out[len(out)-1] != store.Added {
			b.Fatalf("batch %d: outcomes %v … %v, want Added", i, out[0], out[len(out)-1])
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "objects/s")
	cpu.report(b, b.N*benchBatch, "object")
}

// storedDB is one database per opener holding benchStored objects, shared
// by the read benchmarks of one test binary run.
type storedDB struct {
	once sync.Once
	db   *DB
	dir  string
	coll string
}

var stored sync.Map // opener name → *storedDB

// TestMain removes the shared read-benchmark databases, which outlive any
// one benchmark and so cannot use b.TempDir.
func TestMain(m *testing.M) {
	code := m.Run()
	stored.Range(func(_, v any) bool {
		s := v.(*storedDB)
		if s.db != nil {
			s.db.Close()
		}
		if s.dir != "" {
			os.RemoveAll(s.dir)
		}
		return true
	})
	os.Exit(code)
}

func storedFor(b *testing.B, name string, open opener) (*DB, string) {
	v, _ := stored.LoadOrStore(name, &storedDB{})
	s := v.(*storedDB)
	s.once.Do(func() {
		// The database outlives this benchmark; TestMain removes it.
		dir, err := os.MkdirTemp("", "parley-store-bench-")
		if err != nil {
			b.Fatal(err)
		}
		s.dir = dir
		s.db = open(b, dir)
		s.coll = benchCollection(b, s.db)
		fill(b, s.db, s.coll, 0, benchStored)
	})
	if s.db == nil {
		b.Fatal("stored database failed to open in an earlier benchmark")
	}
	return s.db, s.coll
}

// benchQueryAll reads the whole stored collection page by page.
func benchQueryAll(b *testing.B, name string, open opener) {
	db, coll := storedFor(b, name, open)
	ctx := context.Background()
	cpu := startCPU(b)
	for range b.N {
		q := store.ObjectQuery{Collection: coll, Limit: benchPage}
		total := 0
		for {
			pg, err := db.Objects().Query(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			total += len(pg.Objects)
			if !pg.More {
				break
			}
			last := pg.Objects[len(pg.Objects)-1]
			q.After = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
		}
		if total != benchStored {
			b.Fatalf("read %d objects, stored %d", total, benchStored)
		}
	}
	b.ReportMetric(float64(b.N*benchStored)/b.Elapsed().Seconds(), "objects/s")
	cpu.report(b, b.N*benchStored, "object")
}

// benchGetByID looks up random stored objects by id, as GET /objects/{id}/.
func benchGetByID(b *testing.B, name string, open opener) {
	db, coll := storedFor(b, name, open)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	cpu := startCPU(b)
	for range b.N {
		id := benchID(r.IntN(benchStored))
		pg, err := db.Objects().Query(ctx, store.ObjectQuery{Collection: coll, IDs: []string{id}, Limit: benchPage})
		if err != nil {
			b.Fatal(err)
		}
		if len(pg.Objects) != 1 || pg.Objects[0].ID != id {
			b.Fatalf("lookup %s: got %d objects", id, len(pg.Objects))
		}
	}
	cpu.report(b, b.N, "lookup")
}

// variants are the configurations every benchmark runs on: the store as
// Open builds it, and with pragmas proposed for sqlite.go.
var variants = []struct {
	name string
	open opener
}{
	{"open", openDefault},
	{"temp_store=memory", openTempStoreMemory},
}

func BenchmarkPut(b *testing.B) {
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) { benchPut(b, v.open) })
	}
}

func BenchmarkQueryAll(b *testing.B) {
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) { benchQueryAll(b, v.name, v.open) })
	}
}

func BenchmarkGetByID(b *testing.B) {
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) { benchGetByID(b, v.name, v.open) })
	}
}

// TestPutMatchesModel checks the batched Put against a plain model on
// random batches that repeat ids and versions, within a batch and across
// batches, and bring versions older and newer than those stored: the cases
// where per-batch first/last flagging could go wrong. It lives here, beside
// the benchmarks, because it guards the optimisation they measure.
func TestPutMatchesModel(t *testing.T) { testPutMatchesModel(t, openDefault) }

func testPutMatchesModel(t *testing.T, open opener) {
	db := open(t, t.TempDir())
	defer db.Close()
	coll := benchCollection(t, db)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 8))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	model := map[string]map[int64]bool{} // id → stored versions (µs)
	added := base
	for batch := range 40 {
		n := 1 + r.IntN(3*putChunk/2) // crosses the chunk size now and then
		objs := make([]store.Object, n)
		want := make([]store.PutOutcome, n)
		for i := range objs {
			id := benchID(r.IntN(30))
			v := base.Add(time.Duration(r.IntN(12)) * time.Second)
			objs[i] = store.Object{ID: id, Type: "indicator", SpecVersion: "2.1", Version: v, DateAdded: added,
				Raw: []byte(`{"id":"` + id + `","batch":` + strconv.Itoa(batch) + `}`)}
			if model[id] == nil {
				model[id] = map[int64]bool{}
			}
			if model[id][v.UnixMicro()] {
				want[i] = store.Duplicate
			} else {
				want[i] = store.Added
				model[id][v.UnixMicro()] = true
			}
		}
		added = added.Add(time.Millisecond)
		got, err := db.Objects().Put(ctx, coll, objs)
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("batch %d object %d (%s %v): outcome %v, want %v", batch, i, objs[i].ID, objs[i].Version, got[i], want[i])
			}
			if want[i] == store.Added && objs[i].Seq == 0 {
				t.Fatalf("batch %d object %d: added without a seq", batch, i)
			}
		}
	}
	for _, tc := range []struct {
		name string
		vf   store.VersionFilter
		pick func(vs map[int64]bool) []int64
	}{
		{"all", store.VersionFilter{All: true}, func(vs map[int64]bool) []int64 {
			var out []int64
			for v := range vs {
				out = append(out, v)
			}
			return out
		}},
		{"first", store.VersionFilter{First: true}, func(vs map[int64]bool) []int64 {
			m := int64(math.MaxInt64)
			for v := range vs {
				m = min(m, v)
			}
			return []int64{m}
		}},
		{"last", store.VersionFilter{}, func(vs map[int64]bool) []int64 {
			m := int64(math.MinInt64)
			for v := range vs {
				m = max(m, v)
			}
			return []int64{m}
		}},
	} {
		for id, vs := range model {
			pg, err := db.Objects().Query(ctx, store.ObjectQuery{Collection: coll, IDs: []string{id}, Versions: tc.vf, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, o := range pg.Objects {
				got = append(got, o.Version.UnixMicro())
			}
			want := tc.pick(vs)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s versions of %s: got %v, want %v", tc.name, id, got, want)
			}
		}
	}
}

var (
	growth       = flag.Bool("growth", false, "run TestPutGrowth: Put throughput per window while filling to -growth-objects, for each configuration in -growth-variants")
	growthObjs   = flag.Int("growth-objects", 500_000, "objects TestPutGrowth stores per configuration")
	growthFilter = flag.String("growth-variants", "", "comma-separated configuration names for TestPutGrowth; empty means all")
	growthClaim  = flag.Bool("growth-claim", false, "TestPutGrowth claims each batch's ids for the writer before the Put, in one transaction, as a TAXII POST to an operator collection does")
)

// growthVariants are the configurations TestPutGrowth compares: Open's, and
// pragmas proposed for dsn in sqlite.go. before goes ahead of dsn's own
// pragmas (page_size must precede journal_mode=WAL on a new database);
// after is appended.
var growthVariants = []struct {
	name, before, after string
}{
	{"open", "", ""},
	{"temp_store=memory", "", "&_pragma=temp_store(MEMORY)"},
	{"cache=128MB", "", "&_pragma=cache_size(-131072)"},
	{"autocheckpoint=10000", "", "&_pragma=wal_autocheckpoint(10000)"},
	{"temp_store+cache+autocheckpoint", "", "&_pragma=temp_store(MEMORY)&_pragma=cache_size(-131072)&_pragma=wal_autocheckpoint(10000)"},
	{"page=1024", "_pragma=page_size(1024)&", ""},
	{"page=1024+temp_store+autocheckpoint", "_pragma=page_size(1024)&", "&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint(10000)"},
	// Not durable against power loss (kill -9 is still safe in WAL mode);
	// measured to show what the fsync per commit costs, not proposed.
	{"synchronous=NORMAL+temp_store", "", "&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)"},
}

// TestPutGrowth shows whether Put slows down as the collection grows. It
// reports, never asserts, timings; its only checks are that every Put
// succeeds.
func TestPutGrowth(t *testing.T) {
	if !*growth {
		t.Skip("long measurement: enable with -growth")
	}
	want := map[string]bool{}
	for v := range strings.SplitSeq(*growthFilter, ",") {
		if v != "" {
			want[v] = true
		}
	}
	window := max(*growthObjs/5, benchBatch)
	for _, v := range growthVariants {
		if len(want) > 0 && !want[v.name] {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			db := openWith(t, t.TempDir(), DriverName, func(path string, ro bool) string {
				if ro {
					return dsn(path, ro)
				}
				d, ok := strings.CutPrefix(dsn(path, ro), "file:"+path+"?")
				if !ok {
					t.Fatalf("dsn %q does not start with file:PATH?", d)
				}
				return "file:" + path + "?" + v.before + d + v.after
			})
			defer db.Close()
			coll := benchCollection(t, db)
			var page, autock, tempStore int
			var sync string
			for q, dst := range map[string]any{`PRAGMA page_size`: &page, `PRAGMA wal_autocheckpoint`: &autock,
				`PRAGMA temp_store`: &tempStore, `PRAGMA synchronous`: &sync} {
				if err := db.w.QueryRowContext(context.Background(), q).Scan(dst); err != nil {
					t.Fatal(err)
				}
			}
			line := fmt.Sprintf("%s (page_size=%d wal_autocheckpoint=%d temp_store=%d synchronous=%s):", v.name, page, autock, tempStore, sync)
			for off := 0; off < *growthObjs; off += window {
				start, cpu0 := time.Now(), cpuTime()
				fill(t, db, coll, off, window)
				line += fmt.Sprintf(" [%dk–%dk] %.0f/s %.1fµs-cpu", off/1000, (off+window)/1000,
					float64(window)/time.Since(start).Seconds(), float64((cpuTime()-cpu0).Microseconds())/float64(window))
			}
			fmt.Println(line)
		})
	}
}
