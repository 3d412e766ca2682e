package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/parley-cti/parley/internal/store"
	sqlite3 "modernc.org/sqlite"
)

// The search index of the dashboard's intelligence pages (issue 17) lives
// in a file of its own, search.db beside parley.db, and is filled behind
// the writer by an indexer goroutine (issue 18). In parley.db's write
// transactions it had been a fifth to a third of ingest and 35–46 % of the
// 64-client load's write p99 (docs/BENCHMARKS.md): FTS5 tokenizes every
// object and writes a segment at every COMMIT, all under SQLite's one
// write lock. In its own file it has its own lock, and only competes for
// the CPU.
//
// The index is derived data, rebuilt from objects whenever it is missing
// or does not belong to the database beside it. What it keeps:
//   - A search sees every write committed before it: it first waits for
//     the indexer to take in everything up to the newest seq and the newest
//     deletion (catchUp). The indexer, woken by a commit, lets commits
//     gather for searchGather before its pass, unless a search waits: one
//     pass then covers many small POSTs, and a search is not slowed.
//   - Who may see a match is decided by the search query, on the objects
//     row it joins, exactly as before; the index only proposes rows.
//   - Deleted rows leave it: parley.db's trigger notes each deleted seq in
//     search_gone, and the indexer drops their entries before it indexes
//     past them. objects.seq is not AUTOINCREMENT, so the newest seq can
//     come back after a delete; a deletion at or below what the indexer
//     has passed sends it back to index from there, replacing entries.
//   - The indexer's position (search_state) commits with the entries it
//     covers, so a crash leaves the two consistent (synchronous=NORMAL:
//     after a power loss the index may be behind, never ahead of itself).

// SearchFileName is the search index's file inside a data directory.
const SearchFileName = "search.db"

// errSearchInTx refuses a search by words or facets inside a write
// transaction: the index is filled from what has committed.
var errSearchInTx = errors.New("sqlite: a search by words or facets cannot run inside a write transaction")

// errSearchClosed reports a search after the database was closed.
var errSearchClosed = errors.New("sqlite: the search index is closed")

const (
	// searchPassObjects is how many objects one pass of the indexer reads
	// and indexes in one transaction of search.db.
	searchPassObjects = 2000
	// searchPassGone is how many deletions one pass takes in.
	searchPassGone = 5000
	// searchInsertRows is the rows of one multi-row INSERT.
	searchInsertRows = 500
)

// searchGather is how long the indexer lets commits gather after the first
// wakes it, unless a search is waiting. A pass costs a transaction of
// search.db and a new FTS5 segment (merged later) whatever its size: under
// a stream of small POSTs, a pass after every commit spent more on that
// than on the entries (docs/BENCHMARKS.md). A variable for tests.
var searchGather = 100 * time.Millisecond

// searchMark is how far the index has taken parley.db in: every object up
// to seq, every deletion up to gone (search_gone.n).
type searchMark struct{ seq, gone int64 }

// searchIndex is the indexer of one database.
type searchIndex struct {
	path string  // search.db
	w    *sql.DB // search.db: the indexer's one connection
	r    *sql.DB // parley.db's read pool, search.db attached

	gather time.Duration // searchGather when it was opened

	kick  chan struct{} // commits to take in
	hurry chan struct{} // a search waits: no gathering
	stop  chan struct{}
	done  chan struct{}

	closeOnce sync.Once
	closeErr  error

	mu     sync.Mutex
	at     searchMark
	high   int64         // the highest seq ever indexed: at or below it, entries are replaced
	passed chan struct{} // closed at the end of each pass, then replaced
	err    error         // the last pass's failure; nil after a good one
}

// searchAttach maps a read pool's DSN to the search.db its connections
// attach (attachSearch, a connection hook of the driver), counting the
// open DBs that use it (a data directory may be open twice in a process).
var searchAttach = struct {
	sync.Mutex
	m map[string]*attachment
}{m: map[string]*attachment{}}

type attachment struct {
	path string
	refs int
}

func init() {
	sqlite3.RegisterConnectionHook(attachSearch)
}

func attachSearch(conn sqlite3.ExecQuerierContext, dsn string) error {
	searchAttach.Lock()
	a := searchAttach.m[dsn]
	searchAttach.Unlock()
	if a == nil {
		return nil
	}
	_, err := conn.ExecContext(context.Background(), `ATTACH DATABASE ? AS search`, []driver.NamedValue{{Ordinal: 1, Value: a.path}})
	return err
}

func registerSearch(dsn, path string) {
	searchAttach.Lock()
	defer searchAttach.Unlock()
	if a := searchAttach.m[dsn]; a != nil {
		a.refs++
		return
	}
	searchAttach.m[dsn] = &attachment{path: path, refs: 1}
}

func unregisterSearch(dsn string) {
	searchAttach.Lock()
	defer searchAttach.Unlock()
	if a := searchAttach.m[dsn]; a != nil {
		if a.refs--; a.refs == 0 {
			delete(searchAttach.m, dsn)
		}
	}
}

// openSearchIndex opens (creating or rebuilding if needed) the search index
// of the database at mainPath, whose writer w is migrated and not yet in
// use, and registers it for the read pool opened with readDSN, which must
// not have opened a connection yet.
func openSearchIndex(ctx context.Context, mainPath, readDSN string, w *sql.DB) (*searchIndex, error) {
	path := filepath.Join(filepath.Dir(mainPath), SearchFileName)
	var origin []byte
	if err := w.QueryRowContext(ctx, `SELECT id FROM search_origin`).Scan(&origin); err != nil {
		return nil, fmt.Errorf("sqlite: search index: %w", mapErr(err))
	}
	// The newest seq and deletion are read after the index's state: a
	// server with this data directory open may index what commits in
	// between, and read the other way round that would look like an
	// index ahead of its database.
	newest := func() (m searchMark, err error) {
		err = w.QueryRowContext(ctx, `SELECT max((SELECT coalesce(max(seq), 0) FROM objects), (SELECT coalesce(max(seq), 0) FROM search_gone)),
			(SELECT coalesce(max(n), 0) FROM search_gone)`).Scan(&m.seq, &m.gone)
		return m, mapErr(err)
	}
	x := &searchIndex{path: path, gather: searchGather, kick: make(chan struct{}, 1), hurry: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), passed: make(chan struct{})}
	ok, err := x.open(ctx, origin, newest)
	if (err == nil && !ok) || errors.Is(err, store.ErrCorrupt) {
		// Another database's index, one ahead of this database (a
		// restored backup) or a damaged file: start again from nothing.
		// (Any other error, a busy file say, fails Open: the file may be
		// in use by another process with this data directory open.)
		if x.w != nil {
			x.w.Close()
			x.w = nil
		}
		err = removeSearchFiles(path)
		if err == nil {
			ok, err = x.open(ctx, origin, newest)
		}
		if err == nil && !ok {
			err = errors.New("a new index does not match its database")
		}
	}
	if err != nil {
		if x.w != nil {
			x.w.Close()
		}
		return nil, fmt.Errorf("sqlite: search index %s: %w", path, err)
	}
	registerSearch(readDSN, path)
	return x, nil
}

// open opens search.db, creating its tables, and reports whether its state
// can belong to the database whose origin is given and whose newest seq and
// deletion newest reads.
func (x *searchIndex) open(ctx context.Context, origin []byte, newest func() (searchMark, error)) (bool, error) {
	w, err := sql.Open(DriverName, searchDSN(x.path))
	if err != nil {
		return false, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	x.w = w
	if _, err := w.ExecContext(ctx, `
CREATE VIRTUAL TABLE IF NOT EXISTS object_search USING fts5(body, facets, content='', contentless_delete=1,
	tokenize='unicode61 remove_diacritics 0');
CREATE TABLE IF NOT EXISTS search_state (
	origin BLOB NOT NULL,
	seq    INTEGER NOT NULL,
	gone   INTEGER NOT NULL,
	high   INTEGER NOT NULL
);`); err != nil {
		return false, mapErr(err)
	}
	var got []byte
	err = w.QueryRowContext(ctx, `SELECT origin, seq, gone, high FROM search_state`).Scan(&got, &x.at.seq, &x.at.gone, &x.high)
	if errors.Is(err, sql.ErrNoRows) {
		// A new index. FTS5 merges its segments eight at a time, not four:
		// half the merge work per level (docs/BENCHMARKS.md, migration 35
		// of parley.db when the index lived there).
		if _, err := w.ExecContext(ctx, `INSERT INTO object_search(object_search, rank) VALUES ('automerge', 8)`); err != nil {
			return false, mapErr(err)
		}
		if _, err := w.ExecContext(ctx, `INSERT INTO search_state(origin, seq, gone, high) VALUES (?, 0, 0, 0)`, origin); err != nil {
			return false, mapErr(err)
		}
		x.at, x.high = searchMark{}, 0
		return true, nil
	}
	if err != nil {
		return false, mapErr(err)
	}
	n, err := newest()
	if err != nil {
		return false, err
	}
	return string(got) == string(origin) && x.high <= n.seq && x.at.gone <= n.gone, nil
}

// searchDSN is search.db's connection string: derived data, so a commit
// need not wait for an fsync (WAL stays consistent after a crash).
func searchDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_pragma=journal_mode(WAL)&_pragma=temp_store(MEMORY)&_txlock=immediate"
}

func removeSearchFiles(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// start runs the indexer on r, parley.db's read pool, and has it take in
// what is already there.
func (x *searchIndex) start(r *sql.DB) {
	x.r = r
	go x.run()
	x.wake()
}

// wake asks the indexer for a pass; it never blocks (the writer calls it
// after each commit).
func (x *searchIndex) wake() {
	select {
	case x.kick <- struct{}{}:
	default:
	}
}

// close stops the indexer after its current pass and closes search.db;
// it may be called again.
func (x *searchIndex) close(readDSN string) error {
	x.closeOnce.Do(func() {
		if x.r != nil {
			close(x.stop)
			<-x.done
		}
		unregisterSearch(readDSN)
		x.closeErr = x.w.Close()
	})
	return x.closeErr
}

func (x *searchIndex) run() {
	defer close(x.done)
	ctx := context.Background()
	for {
		select {
		case <-x.stop:
			return
		case <-x.kick:
		}
		gather := time.NewTimer(x.gather)
		select {
		case <-gather.C:
		case <-x.hurry:
		case <-x.stop:
			gather.Stop()
			return
		}
		gather.Stop()
		for {
			more, err := x.pass(ctx)
			x.mu.Lock()
			x.err = err
			close(x.passed)
			x.passed = make(chan struct{})
			x.mu.Unlock()
			if err != nil || !more {
				break
			}
			select {
			case <-x.stop:
				return
			default:
			}
		}
	}
}

// catchUp returns once the index holds everything committed to parley.db
// before it was called, or with the indexer's error.
func (x *searchIndex) catchUp(ctx context.Context) error {
	var want searchMark
	if err := x.r.QueryRowContext(ctx, `SELECT (SELECT coalesce(max(seq), 0) FROM objects), (SELECT coalesce(max(n), 0) FROM search_gone)`).Scan(&want.seq, &want.gone); err != nil {
		return mapErr(err)
	}
	for waited := false; ; waited = true {
		x.mu.Lock()
		at, passed, err := x.at, x.passed, x.err
		x.mu.Unlock()
		if at.seq >= want.seq && at.gone >= want.gone {
			return nil
		}
		if waited && err != nil {
			return fmt.Errorf("sqlite: search index: %w", err)
		}
		x.wake()
		select {
		case x.hurry <- struct{}{}:
		default:
		}
		select {
		case <-passed:
		case <-x.done:
			return errSearchClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// searchEntry is one object's row of object_search.
type searchEntry struct {
	seq          int64
	body, facets string
}

// pass takes in, from one snapshot of parley.db, up to searchPassGone
// deletions and then up to searchPassObjects objects past the mark, in one
// transaction of search.db; it reports whether there may be more.
func (x *searchIndex) pass(ctx context.Context) (more bool, err error) {
	x.mu.Lock()
	at, high := x.at, x.high
	x.mu.Unlock()

	rtx, err := x.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return false, mapErr(err)
	}
	defer rtx.Rollback()
	next := at
	var drop []int64
	rows, err := rtx.QueryContext(ctx, `SELECT n, seq FROM search_gone WHERE n > ? ORDER BY n LIMIT ?`, at.gone, searchPassGone)
	if err != nil {
		return false, mapErr(err)
	}
	for rows.Next() {
		var n, seq int64
		if err := rows.Scan(&n, &seq); err != nil {
			rows.Close()
			return false, mapErr(err)
		}
		drop = append(drop, seq)
		next.gone = n
		// An entry at or below the mark may be replaced by a new row
		// with the same seq: index again from there.
		next.seq = min(next.seq, seq-1)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, mapErr(err)
	}
	more = len(drop) == searchPassGone

	var entries []searchEntry
	var other []int64 // objects whose columns SQL computes
	rows, err = rtx.QueryContext(ctx, `SELECT seq, coll, type, raw FROM objects WHERE seq > ? ORDER BY seq LIMIT ?`, next.seq, searchPassObjects)
	if err != nil {
		return false, mapErr(err)
	}
	n := 0
	for rows.Next() {
		var e searchEntry
		var coll int64
		var typ string
		var raw []byte
		if err := rows.Scan(&e.seq, &coll, &typ, &raw); err != nil {
			rows.Close()
			return false, mapErr(err)
		}
		n++
		next.seq = e.seq
		var ok bool
		if e.body, e.facets, ok = searchColumnsGo(coll, typ, raw); ok {
			entries = append(entries, e)
		} else {
			other = append(other, e.seq)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, mapErr(err)
	}
	more = more || n == searchPassObjects
	for _, seq := range other {
		e := searchEntry{seq: seq}
		if err := rtx.QueryRowContext(ctx, `SELECT `+searchColumnsJSONB+` FROM (SELECT seq AS s, coll AS k, type AS ty,
			CASE WHEN json_valid(CAST(raw AS TEXT)) THEN jsonb(CAST(raw AS TEXT)) END AS j FROM objects WHERE seq = ?)`, seq).Scan(&e.body, &e.facets); err != nil {
			return false, mapErr(err)
		}
		entries = append(entries, e)
	}
	rtx.Rollback()
	if next == at {
		return more, nil
	}

	wtx, err := x.w.BeginTx(ctx, nil)
	if err != nil {
		return false, mapErr(err)
	}
	defer wtx.Rollback()
	// Another process with the same data directory open may have moved
	// the index on: take its state and start the pass again.
	var now searchMark
	var nowHigh int64
	if err := wtx.QueryRowContext(ctx, `SELECT seq, gone, high FROM search_state`).Scan(&now.seq, &now.gone, &nowHigh); err != nil {
		return false, mapErr(err)
	}
	if now != at || nowHigh != high {
		x.mu.Lock()
		x.at, x.high = now, nowHigh
		x.mu.Unlock()
		return true, nil
	}
	for _, seq := range drop {
		if _, err := wtx.ExecContext(ctx, `DELETE FROM object_search WHERE rowid = ?`, seq); err != nil {
			return false, mapErr(err)
		}
	}
	// At or below high an entry may be there already (indexed before a
	// deletion sent the mark back): replaced, never doubled. Above it,
	// plain inserts, many to a statement.
	var fresh []searchEntry
	for _, e := range entries {
		if e.seq > high {
			fresh = append(fresh, e)
			continue
		}
		if _, err := wtx.ExecContext(ctx, `INSERT OR REPLACE INTO object_search(rowid, body, facets) VALUES (?, ?, ?)`, e.seq, e.body, e.facets); err != nil {
			return false, mapErr(err)
		}
	}
	for len(fresh) > 0 {
		c := fresh[:min(len(fresh), searchInsertRows)]
		fresh = fresh[len(c):]
		args := make([]any, 0, 3*len(c))
		for _, e := range c {
			args = append(args, e.seq, e.body, e.facets)
		}
		if _, err := wtx.ExecContext(ctx, `INSERT INTO object_search(rowid, body, facets) VALUES (?, ?, ?)`+strings.Repeat(`, (?, ?, ?)`, len(c)-1), args...); err != nil {
			return false, mapErr(err)
		}
	}
	high = max(high, next.seq)
	if _, err := wtx.ExecContext(ctx, `UPDATE search_state SET seq = ?, gone = ?, high = ?`, next.seq, next.gone, high); err != nil {
		return false, mapErr(err)
	}
	if err := wtx.Commit(); err != nil {
		return false, mapErr(err)
	}
	x.mu.Lock()
	x.at, x.high = next, high
	x.mu.Unlock()
	return more, nil
}
