// Package sqlite is parley's embedded storage backend: one SQLite database in
// WAL mode inside the data directory, needing no other service.
//
// All SQL for SQLite lives in this package. Writes go through a single
// connection (SQLite admits one writer at a time; queuing in Go is cheaper
// than SQLITE_BUSY retries), reads through a pool of read-only connections
// that WAL lets run beside the writer. Other processes (the operator CLI) may
// write to the same file while a server runs: transactions begin IMMEDIATE
// and wait on a busy timeout instead of failing.
//
// It must never hold business rules: who may read what is decided in package
// exchange, and this package only stores and fetches.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/store"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

// FileName is the database file inside a data directory.
const FileName = "parley.db"

// DriverName is the database/sql driver this package uses. The choice
// between the pure-Go and the cgo driver was made by measurement; see
// docs/BENCHMARKS.md.
const DriverName = "sqlite"

// Options tunes Open.
type Options struct {
	// Migrate applies pending migrations. Without it Open refuses a
	// database that is behind with store.ErrSchemaOutdated.
	Migrate bool
	// ReadConns is the size of the read pool (default 4).
	ReadConns int
	// IntegrityCheck runs SQLite's quick_check before anything else and
	// refuses a damaged database with store.ErrCorrupt. It reads the whole
	// file (about a second per GB); `parley serve` runs it unless told
	// --skip-integrity-check.
	IntegrityCheck bool
}

// DB is the SQLite store. It implements store.Store.
type DB struct {
	w      *sql.DB // one connection, all writes
	r      *sql.DB // read pool
	path   string
	guard  *store.TxGuard
	commit *committer
	reads  *preparedStmts // the read pool's prepared statements
	// checkpoints copies the log into the database off the writer's
	// path (checkpoint.go); nil on a DB a test assembled by hand.
	checkpoints *checkpointer
	// search fills the search index behind the writer (searchdb.go); nil
	// on a DB a test assembled by hand, which cannot search by words.
	search *searchIndex
	handle
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the database in dir.
func Open(ctx context.Context, dir string, opt Options) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: creating data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	if err := refuseEmpty(path); err != nil {
		return nil, err
	}
	w, err := sql.Open(DriverName, dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, mapErr(err))
	}
	if opt.IntegrityCheck {
		if err := quickCheck(ctx, w, path); err != nil {
			w.Close()
			return nil, err
		}
	}
	if err := migrate(ctx, w, opt.Migrate); err != nil {
		w.Close()
		return nil, err
	}
	// The search index first: the read pool's connections attach it.
	sx, err := openSearchIndex(ctx, path, dsn(path, true), w)
	if err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open(DriverName, dsn(path, true))
	if err != nil {
		sx.close(dsn(path, true))
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := opt.ReadConns
	if n <= 0 {
		n = 4
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	ck, err := startCheckpointer(path)
	if err != nil {
		sx.close(dsn(path, true))
		r.Close()
		w.Close()
		return nil, err
	}
	db := newDB(w, r, path)
	db.checkpoints = ck
	db.search = sx
	db.handle.search = sx
	sx.start(r)
	db.commit.committed = func() {
		ck.committed()
		sx.wake()
	}
	return db, nil
}

// newDB assembles a DB over its writer connection and read pool.
func newDB(w, r *sql.DB, path string) *DB {
	db := &DB{w: w, r: r, path: path, guard: &store.TxGuard{}, commit: &committer{w: w, stmts: newPreparedStmts(w), ids: newIDFilter(r)}, reads: newPreparedStmts(r)}
	db.handle = handle{r: guardedDB{db: r, guard: db.guard, stmts: db.reads}, w: guardedDB{db: w, guard: db.guard, commit: db.commit}}
	return db
}

// refuseEmpty refuses a database file that exists but holds nothing, with
// no write-ahead log beside it that could hold its content (a server killed
// before its first checkpoint leaves exactly that: an empty file and a
// full -wal). Opening it would start a fresh deployment (new ledger key, no
// parties) over what was lost, and every party would find itself unknown.
func refuseEmpty(path string) error {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() > 0 {
		return nil // absent: a new data directory; non-empty: SQLite judges
	}
	if wal, err := os.Stat(path + "-wal"); err == nil && wal.Size() > 0 {
		return nil
	}
	return fmt.Errorf("%w: %s is empty (0 bytes) and has no write-ahead log: it is not a parley database any more. "+
		"Restore it from a backup (docs/operations.md); to start a new, empty deployment instead, remove the file", store.ErrCorrupt, path)
}

// quickCheck runs PRAGMA quick_check and refuses a database it finds
// damaged, naming the first problems.
func quickCheck(ctx context.Context, w *sql.DB, path string) error {
	rows, err := w.QueryContext(ctx, `PRAGMA quick_check(5)`)
	if err != nil {
		return fmt.Errorf("sqlite: integrity check of %s: %w. Restore it from a backup (docs/operations.md)", path, mapErr(err))
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("sqlite: integrity check of %s: %w", path, mapErr(err))
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: integrity check of %s: %w. Restore it from a backup (docs/operations.md)", path, mapErr(err))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s fails SQLite's integrity check (%s). Restore it from a backup (docs/operations.md); "+
			"--skip-integrity-check starts anyway", store.ErrCorrupt, path, strings.Join(problems, "; "))
	}
	return nil
}

// dsn builds the connection string. synchronous=FULL makes every committed
// transaction durable before the commit returns: an acknowledged write
// survives kill -9 and power loss alike.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "journal_mode(WAL)")
	if readOnly {
		// 8 MB of pages per reader: enough for the interior pages of the
		// indexes a GET by id walks, while a full read streams through
		// the OS's file cache. The pure-Go SQLite doubles each cached
		// page's size in its allocator, and with 32 MB per reader 8 full
		// readers of a million objects held 341 MiB (issue 18: 300 MB).
		q.Add("_pragma", "cache_size(-8000)")
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "cache_size(-32000)")
		q.Set("_txlock", "immediate")
		// Multi-row inserts keep their statement journal in memory instead
		// of a temp file, and the WAL is checkpointed less often than
		// SQLite's default: together +17% ingest at a million objects
		// (docs/BENCHMARKS.md).
		q.Add("_pragma", "temp_store(MEMORY)")
		// Checkpoints run on a connection of their own (checkpoint.go);
		// the writer's automatic one is the backstop.
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", writerAutocheckpoint))
		// The log's file is cut back when the log starts over (checkpoint.go).
		q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
	}
	return "file:" + path + "?" + q.Encode()
}

// Path returns the database file.
func (db *DB) Path() string { return db.path }

// Close closes both pools.
func (db *DB) Close() error {
	db.commit.ids.close()
	db.reads.close()
	db.commit.stmts.close()
	var ck error
	if db.checkpoints != nil {
		ck = db.checkpoints.close()
	}
	var sx error
	if db.search != nil {
		sx = db.search.close(dsn(db.path, true))
	}
	return errors.Join(ck, sx, db.r.Close(), db.w.Close())
}

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.guard.Check(ctx); err != nil {
		return err
	}
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	return nil
}

// Update runs fn in an IMMEDIATE transaction on the writer connection,
// which concurrent Updates may share (group commit, groupcommit.go): fn's
// writes are kept or discarded as its own, and Update returns once the
// shared transaction has committed.
func (db *DB) Update(ctx context.Context, fn func(tx store.Handle) error) error {
	return db.commit.update(ctx, db.guard, fn)
}

// CommitStats reports how many transactions the writes since Open took
// and how many Updates ran in them.
func (db *DB) CommitStats() store.CommitStats { return db.commit.stats() }

var _ store.GroupCommitter = (*DB)(nil)

// SchemaVersion reports the schema version of the open database and the
// newest version this binary knows.
func (db *DB) SchemaVersion(ctx context.Context) (have, known int, err error) {
	have, err = currentVersion(ctx, db.r)
	return have, len(migrations), err
}

// atomic runs fn in a transaction: the surrounding one when h is already
// inside Update, else a new one, so multi-statement methods never leave
// half a change behind.
func atomic(ctx context.Context, h handle, fn func(h handle) error) error {
	w, ok := h.w.(guardedDB)
	if !ok {
		return fn(h)
	}
	return w.commit.update(ctx, w.guard, func(tx store.Handle) error { return fn(tx.(handle)) })
}

// guardedDB is a connection pool as the store's own handle uses it: it
// refuses with store.ErrSecondConnection a goroutine that holds a
// transaction of this store (see store.TxGuard).
type guardedDB struct {
	db     *sql.DB
	guard  *store.TxGuard
	commit *committer     // the writer's; nil on the read pool
	stmts  *preparedStmts // the read pool's prepared statements; nil on the writer
}

// ExecContext on the writer runs the statement as an Update of its own,
// so a lone write (a token's last use, a status) joins the group waiting
// for the writer instead of taking the connection between two groups for
// a commit of its own.
func (g guardedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if g.commit != nil {
		var res sql.Result
		err := g.commit.update(ctx, g.guard, func(tx store.Handle) error {
			var err error
			res, err = tx.(handle).w.ExecContext(ctx, query, args...)
			return err
		})
		return res, err
	}
	if err := g.guard.Check(ctx); err != nil {
		return nil, err
	}
	return g.db.ExecContext(ctx, query, args...)
}

func (g guardedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := g.guard.Check(ctx); err != nil {
		return nil, err
	}
	if s := g.prepared(ctx, query, args); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return g.db.QueryContext(ctx, query, args...)
}

func (g guardedDB) QueryRowContext(ctx context.Context, query string, args ...any) row {
	if err := g.guard.Check(ctx); err != nil {
		return errRow{err}
	}
	if s := g.prepared(ctx, query, args); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return g.db.QueryRowContext(ctx, query, args...)
}

// prepared returns the read pool's cached statement for query, or nil.
func (g guardedDB) prepared(ctx context.Context, query string, args []any) *sql.Stmt {
	if g.stmts == nil || len(args) > maxPreparedArgs {
		return nil
	}
	return g.stmts.get(ctx, query)
}

func (g guardedDB) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	if err := g.guard.Check(ctx); err != nil {
		return nil, err
	}
	return g.db.PrepareContext(ctx, query)
}

// querier is what the guarded pools and a transaction have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// row is a single-row result (*sql.Row, or a refusal).
type row interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// txQuerier is a transaction as a querier.
type txQuerier struct{ *sql.Tx }

func (t txQuerier) QueryRowContext(ctx context.Context, query string, args ...any) row {
	return t.Tx.QueryRowContext(ctx, query, args...)
}

// handle implements store.Handle over a reader and a writer querier; inside a
// transaction both are the transaction, so reads see its own writes.
type handle struct {
	r querier
	w querier
	// search is the search index's indexer, which searches wait for;
	// nil inside a write transaction, where searching by words is refused.
	search *searchIndex
}

func (h handle) Parties() store.Parties         { return parties(h) }
func (h handle) Tokens() store.Tokens           { return tokens(h) }
func (h handle) Collections() store.Collections { return collections(h) }
func (h handle) Objects() store.Objects         { return objects(h) }
func (h handle) Statuses() store.Statuses       { return statuses(h) }
func (h handle) Settings() store.Settings       { return settings(h) }

func currentVersion(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&n)
	if err != nil {
		return 0, mapErr(err)
	}
	return n, nil
}

// migrate brings the schema to the newest version this binary knows, one
// migration per transaction. SQLite's user_version holds the version.
func migrate(ctx context.Context, w *sql.DB, apply bool) error {
	return migrateTo(ctx, w, apply, len(migrations))
}

// migrateTo is migrate stopping at version target (tests build databases
// at older versions with it).
func migrateTo(ctx context.Context, w *sql.DB, apply bool, target int) error {
	have, err := currentVersion(ctx, w)
	if err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("%w (database at version %d, this binary knows %d)", store.ErrSchemaTooNew, have, len(migrations))
	}
	if have < len(migrations) && !apply {
		return fmt.Errorf("%w (database at version %d, this binary knows %d)", store.ErrSchemaOutdated, have, len(migrations))
	}
	for v := have; v < target; v++ {
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			return mapErr(err)
		}
		// Re-read inside the write lock: another process may have migrated.
		cur, err := currentVersion(ctx, tx)
		if err != nil {
			tx.Rollback()
			return err
		}
		if cur > v {
			tx.Rollback()
			continue
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: migration %d: %w", v+1, err)
		}
		if step := migrationSteps[v+1]; step != nil {
			if err := step(ctx, tx); err != nil {
				tx.Rollback()
				return fmt.Errorf("sqlite: migration %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: migration %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlite: migration %d: %w", v+1, err)
		}
	}
	return nil
}

// mapErr turns driver errors into store sentinels.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	var se *sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3lib.SQLITE_CONSTRAINT_UNIQUE, sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %v", store.ErrConflict, err)
		case sqlite3lib.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: a referenced record does not exist", store.ErrNotFound)
		}
		// The low byte is the primary result code.
		switch se.Code() & 0xff {
		case sqlite3lib.SQLITE_FULL:
			return fmt.Errorf("%w: %v", store.ErrDiskFull, err)
		case sqlite3lib.SQLITE_CORRUPT, sqlite3lib.SQLITE_NOTADB:
			return fmt.Errorf("%w: %v", store.ErrCorrupt, err)
		case sqlite3lib.SQLITE_BUSY, sqlite3lib.SQLITE_LOCKED, sqlite3lib.SQLITE_CANTOPEN, sqlite3lib.SQLITE_IOERR:
			return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
		}
	}
	return err
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}
