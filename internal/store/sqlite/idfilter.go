package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	syncatomic "sync/atomic"
)

// The writer's filter of stored ids (issue 18, item 2).
//
// Before giving an id its key the writer looks it up (stixids.go), two
// b-tree seeks into the hash tables an id, 7-9 % of the server's CPU while
// ingesting near a million (docs/BENCHMARKS.md), and nearly every id of an
// ingest is new. The writer keeps a Bloom filter of the hashes of the ids
// stix_ids holds: an id the filter does not hold has no key and is given
// one without a lookup; an id it may hold is looked up as before. A false
// "may hold" costs a lookup; a false "does not hold" would give an id a
// second key, so the filter must hold every stored id:
//
//   - It is built off the writer's path, from one read snapshot of the hash
//     tables, together with that snapshot's largest key (known).
//   - Every transaction of the writer first reads the largest key. SQLite's
//     write lock is taken at BEGIN (IMMEDIATE), so nothing else writes until
//     the commit; rows with a key above known were written by someone else
//     (another process, or a statement that is not createKeys) and are read
//     and entered before anything in the transaction asks.
//   - createKeys enters each id it gives a key to, in that transaction, so a
//     later member of the same transaction that names it looks it up.
//   - Just before COMMIT the writer reads the largest key again: if every
//     key above known was given by createKeys in this transaction, and no
//     member's turn was undone (an undone turn frees its keys for others),
//     every row up to it is in the filter and known moves there, once the
//     commit succeeds. Otherwise known stays and the next transaction reads
//     the rows above it.
//
// Ids whose key was undone stay in the filter: they cost a lookup each.
// Until the filter is built (and on a store where building it failed) every
// id is looked up, as before.

// idFilterFirst is the fewest ids the filter's first part holds; each
// part after it holds twice the one before. A variable for tests.
var idFilterFirst = 1 << 16

// idFilterSync makes the first use build the filter before it returns
// instead of in the background, for tests.
var idFilterSync = false

// lookupsForTest counts the ids lookupKeys asked SQLite for.
var lookupsForTest syncatomic.Int64

// bloom is a split-block Bloom filter: a hash sets one bit in each of the
// eight 32-bit words of one 256-bit block, 16 bits an id (about 0.1 %
// false "may hold" when full).
type bloom struct {
	blocks   [][8]uint32
	n, holds int
}

// The odd multipliers that pick a hash's bit in each word (those of
// Apache Parquet's split-block Bloom filter).
var bloomSalts = [8]uint32{0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31}

func newBloom(holds int) *bloom {
	return &bloom{blocks: make([][8]uint32, max(1, holds*16/256)), holds: holds}
}

func (b *bloom) block(h uint64) *[8]uint32 {
	return &b.blocks[(h>>32)*uint64(len(b.blocks))>>32]
}

func (b *bloom) add(h uint64) {
	blk, x := b.block(h), uint32(h)
	for i, s := range bloomSalts {
		blk[i] |= 1 << ((x * s) >> 27)
	}
	b.n++
}

func (b *bloom) has(h uint64) bool {
	blk, x := b.block(h), uint32(h)
	for i, s := range bloomSalts {
		if blk[i]&(1<<((x*s)>>27)) == 0 {
			return false
		}
	}
	return true
}

// idSet is a Bloom filter that grows: ids go into its last part, and a
// full part is followed by one twice its size.
type idSet struct{ parts []*bloom }

func newIDSet(holds int) *idSet {
	return &idSet{parts: []*bloom{newBloom(max(idFilterFirst, holds))}}
}

func (s *idSet) add(h uint64) {
	last := s.parts[len(s.parts)-1]
	if last.n >= last.holds {
		last = newBloom(2 * last.holds)
		s.parts = append(s.parts, last)
	}
	last.add(h)
}

func (s *idSet) has(h uint64) bool {
	for _, p := range s.parts {
		if p.has(h) {
			return true
		}
	}
	return false
}

// idFilter is the writer's filter and what it knows: ids with a key up to
// known are in set. set and known are the writer's (its leader and the
// members whose turn it is, one at a time); the build hands its result
// over under mu.
type idFilter struct {
	r *sql.DB // the read pool, which the build reads

	mu       sync.Mutex
	building bool // a build was started (it is not started again)
	built    *idSet
	builtMax int64
	cancel   context.CancelFunc
	done     chan struct{}

	set   *idSet
	known int64
	fps   map[fpKey]*fpFilter // by agreement and party, fpfilter.go
}

func newIDFilter(r *sql.DB) *idFilter { return &idFilter{r: r} }

// want starts building the filter if nobody has.
func (f *idFilter) want() {
	if f == nil {
		return
	}
	f.mu.Lock()
	if f.building {
		f.mu.Unlock()
		return
	}
	f.building = true
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	f.mu.Unlock()
	if idFilterSync {
		f.build(ctx)
		return
	}
	go f.build(ctx)
}

// build reads every stored id's hash, and the largest key, from one
// snapshot.
func (f *idFilter) build(ctx context.Context) {
	defer close(f.done)
	set, top, err := readIDSet(ctx, f.r)
	if err != nil {
		if ctx.Err() == nil {
			slog.Warn("sqlite: building the filter of stored ids failed; every new id is looked up", "err", err)
		}
		return
	}
	f.mu.Lock()
	f.built, f.builtMax = set, top
	f.mu.Unlock()
}

func readIDSet(ctx context.Context, r *sql.DB) (*idSet, int64, error) {
	tx, err := r.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	var top, n int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(key), 0), count(*) FROM stix_ids`).Scan(&top, &n); err != nil {
		return nil, 0, fmt.Errorf("counting ids: %w", err)
	}
	set := newIDSet(int(2 * n))
	for _, table := range []string{`stix_id_hashes`, `stix_id_hashes_new`} {
		rows, err := tx.QueryContext(ctx, `SELECT h FROM `+table)
		if err != nil {
			return nil, 0, err
		}
		for rows.Next() {
			var h int64
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return nil, 0, err
			}
			set.add(uint64(h))
		}
		if err := rows.Close(); err != nil {
			return nil, 0, err
		}
		if err := rows.Err(); err != nil {
			return nil, 0, err
		}
	}
	return set, top, nil
}

// close stops a build in progress and waits for it.
func (f *idFilter) close() {
	if f == nil {
		return
	}
	f.mu.Lock()
	cancel, done := f.cancel, f.done
	f.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// idTx is the filter as one write transaction uses it.
type idTx struct {
	f       *idFilter
	active  bool           // the filter holds every id stored before the transaction
	given   int64          // keys createKeys gave in the transaction
	undone  bool           // a member's turn was undone
	top     int64          // the largest key just before COMMIT
	moves   []fpMove       // the fingerprint sets' bounds moved (fpfilter.go)
	entries []fpEntry      // fingerprints entered in them, since wrote
	wrote   map[int64]bool // agreements the transaction wrote credits or a release under (fpfilter.go)
}

// begin is the start of the writer's transaction, which tx runs in: it
// takes over a finished build and enters the rows written since known.
func (f *idFilter) begin(ctx context.Context, tx querier) *idTx {
	t := &idTx{f: f}
	if f == nil {
		return t
	}
	if f.set == nil {
		f.mu.Lock()
		f.set, f.known = f.built, f.builtMax
		f.built = nil
		f.mu.Unlock()
		if f.set == nil {
			return t
		}
	}
	var top int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(key), 0) FROM stix_ids`).Scan(&top); err != nil {
		return t // not used in this transaction; its statements report the fault
	}
	if top > f.known {
		if err := f.enter(ctx, tx, f.known, top); err != nil {
			return t
		}
		f.known = top
	}
	t.active = true
	return t
}

// enter puts into the filter the ids with a key in (lo, hi].
func (f *idFilter) enter(ctx context.Context, tx querier, lo, hi int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM stix_ids WHERE key > ? AND key <= ?`, lo, hi)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		f.set.add(uint64(idHash(id)))
	}
	if err := rows.Close(); err != nil {
		return err
	}
	return rows.Err()
}

// mayHave reports whether the id whose hash is h may have a key; it is
// true whenever the filter is not in use.
func (t *idTx) mayHave(h int64) bool {
	return t == nil || !t.active || t.f.set.has(uint64(h))
}

// usable reports whether the filter answers in this transaction.
func (t *idTx) usable() bool { return t != nil && t.active }

// gave records that createKeys gave the id whose hash is h a key.
func (t *idTx) gave(h int64) {
	if t == nil || !t.active {
		return
	}
	t.f.set.add(uint64(h))
	t.given++
}

// undo records that a member's turn was undone.
func (t *idTx) undo() {
	if t != nil {
		t.undone = true
		t.unmove()
	}
}

// beforeCommit reads the largest key, the last statement before COMMIT.
func (t *idTx) beforeCommit(ctx context.Context, tx querier) {
	if t == nil || !t.active || t.undone || t.given == 0 {
		t.forget()
		return
	}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(key), 0) FROM stix_ids`).Scan(&t.top); err != nil {
		t.forget()
	}
}

func (t *idTx) forget() {
	if t != nil {
		t.top = 0
	}
}

// abandoned is the end of a transaction that did not commit.
func (t *idTx) abandoned() { t.unmove() }

// committed moves known once the transaction committed, if every key
// above it was given by createKeys (keys are given one after another and,
// with no turn undone, never twice).
func (t *idTx) committed() {
	if t == nil {
		return
	}
	t.moves, t.entries = nil, nil
	if !t.active || t.top == 0 {
		return
	}
	if t.top-t.f.known == t.given {
		t.f.known = t.top
	}
}
