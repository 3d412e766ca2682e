// Package postgres is parley's PostgreSQL storage backend, for deployments
// where several stateless parley instances share one database.
//
// All SQL for PostgreSQL lives in this package; it talks to the server through
// pgx's own pool (pgxpool), never through database/sql.
//
// # Semantics
//
// It keeps the semantics of store/sqlite, so that domain code tested on the
// embedded backend behaves the same here: the same schema shapes, timestamps
// as BIGINT unix microseconds (so `parley copy` is lossless), raw STIX as BYTEA
// (bytes come back exactly as posted, which JSONB would not do).
//
// # Concurrency
//
// SQLite runs one writer at a time, so domain code written against it sees
// serial transactions. To keep that promise across instances, Store.Update
// runs SERIALIZABLE by default and re-runs its function on serialization
// failures (40001) and deadlocks (40P01), a bounded number of times with
// jittered backoff; from the third attempt it first queues on an advisory
// lock shared by all struggling transactions, so that none starves. Methods called outside Update run in their own READ
// COMMITTED transaction when they take more than one statement, and rely on
// row locks instead: Objects.Put and Objects.Delete lock one object_heads row
// per (collection, id), in id order, before reading or writing versions, so
// concurrent writers of one object queue instead of racing and the
// one-first-one-last invariant holds. UpdateRowLocked
// (store.RowLockUpdater) runs a whole Update that way, READ COMMITTED:
// ingest into an operator collection uses it, since its claim, heads and
// ledger row locks are all it decides on, and SERIALIZABLE made concurrent
// ingests fail and re-run on each other's reads (issue 18).
//
// The ledger serializes appenders on its one ledger_size row (SELECT ...
// FOR UPDATE), Agreements.Lock takes an advisory lock on the agreement and
// its row FOR UPDATE (a SERIALIZABLE Update that finds the agreement busy
// is run again after waiting for it before BEGIN, so that its snapshot
// follows the wait instead of failing after it), and
// Events.Append bumps a per-party counter row, so numbering stays gapless
// across instances. Load bulk-loads an empty database for `parley copy`,
// keeping the source's keys.
//
// # Errors
//
// Driver errors become store sentinels in mapErr: 23505 ErrConflict, 23503 and
// "no rows" ErrNotFound, lost or refused connections, class 08, 57P01-57P03,
// 53300 and deadlines ErrUnavailable. The driver error stays in the chain.
//
// # Schema
//
// migrations.go holds an append-only list of migrations recorded in
// schema_migrations; adding a table is one entry there and one file of
// methods here.
//
// It must never hold business rules: who may read what is decided in package
// exchange, and this package only stores and fetches.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	syncatomic "sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parley-cti/parley/internal/store"
)

// Isolation is the isolation level Store.Update runs at.
type Isolation int

const (
	// Serializable (the default) makes concurrent Updates behave as if run
	// one after another, as on SQLite; conflicts are retried.
	Serializable Isolation = iota
	// ReadCommitted trades that guarantee for fewer retries. Only choose it
	// when every Update function takes the locks it needs itself.
	ReadCommitted
)

// Options tunes Open.
type Options struct {
	// Migrate applies pending migrations. Without it Open refuses a
	// database that is behind with store.ErrSchemaOutdated.
	Migrate bool
	// MaxConns caps the connection pool (default: pgxpool's, 4 or the
	// number of CPUs, whichever is larger; or pool_max_conns in the URL).
	MaxConns int32
	// Isolation of Store.Update (default Serializable).
	Isolation Isolation
	// MaxAttempts bounds how often a transaction is tried when it fails
	// with a serialization failure or a deadlock (default 20).
	MaxAttempts int
}

// DB is the PostgreSQL store. It implements store.Store.
type DB struct {
	pool        *pgxpool.Pool
	iso         pgx.TxIsoLevel
	maxAttempts int
	retries     syncatomic.Int64
	guard       store.TxGuard
	handle
}

var (
	_ store.Store          = (*DB)(nil)
	_ store.RowLockUpdater = (*DB)(nil)
)

// Open connects to the database at url (a postgres:// URL or key=value
// string, as libpq takes), checks that it answers, and checks or brings up
// the schema. An unreachable server yields an error wrapping
// store.ErrUnavailable.
func Open(ctx context.Context, url string, opt Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("postgres: the database URL is not valid")
	}
	if opt.MaxConns > 0 {
		cfg.MaxConns = opt.MaxConns
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", where, mapErr(err))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: cannot use the database at %s: %w", where, mapErr(err))
	}
	db := &DB{pool: pool, iso: pgx.Serializable, maxAttempts: opt.MaxAttempts}
	if opt.Isolation == ReadCommitted {
		db.iso = pgx.ReadCommitted
	}
	if db.maxAttempts <= 0 {
		db.maxAttempts = 20
	}
	db.handle = handle{q: guardedPool{pool, &db.guard}, db: db}
	if err := migrate(ctx, pool, opt.Migrate); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.guard.Check(ctx); err != nil {
		return err
	}
	if err := db.pool.Ping(ctx); err != nil {
		return mapErr(err)
	}
	return nil
}

// Update runs fn in one transaction at the configured isolation level,
// re-running it on serialization failures and deadlocks.
func (db *DB) Update(ctx context.Context, fn func(tx store.Handle) error) error {
	return db.inTx(ctx, db.iso, func(h handle) error { return fn(h) })
}

// UpdateRowLocked runs fn in one READ COMMITTED transaction (see
// store.RowLockUpdater), re-running it on deadlocks.
func (db *DB) UpdateRowLocked(ctx context.Context, fn func(tx store.Handle) error) error {
	return db.inTx(ctx, pgx.ReadCommitted, func(h handle) error { return fn(h) })
}

// SchemaVersion reports the schema version of the open database and the
// newest version this binary knows.
func (db *DB) SchemaVersion(ctx context.Context) (have, known int, err error) {
	have, err = currentVersion(ctx, db.pool)
	return have, len(migrations), err
}

// Retries reports how many transactions failed with a serialization
// failure or a deadlock since Open (and were re-run, unless out of
// attempts): a measure of write contention between instances.
func (db *DB) Retries() int64 { return db.retries.Load() }

// gateAfter is the attempt from which a transaction passes the contention
// gate first.
const gateAfter = 3

// contentionGate is a session advisory lock that transactions which keep
// failing take before they begin, so they queue behind each other instead
// of losing again to the same rivals. Taken before BEGIN, it makes the
// transaction's snapshot start after the wait.
const contentionGate = `SELECT pg_advisory_lock(hashtext('parley.contention_gate'), hashtext(current_schema()))`
const contentionGateRelease = `SELECT pg_advisory_unlock(hashtext('parley.contention_gate'), hashtext(current_schema()))`

// inTx runs fn in a transaction and retries it, with jittered exponential
// backoff, while it fails with an error PostgreSQL says is safe to retry.
func (db *DB) inTx(ctx context.Context, iso pgx.TxIsoLevel, fn func(h handle) error) error {
	// A goroutine inside a transaction that opens another one holds one
	// connection and waits for a second: with every other connection
	// queued on a lock the first holds, nothing moves again.
	end, err := db.guard.Begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	backoff := 2 * time.Millisecond
	// queued is the agreement this Update waits for before it begins,
	// learned from an attempt that found the agreement busy (see
	// agreements.Lock).
	queued := ""
	for attempt := 1; ; {
		err := db.attempt(ctx, iso, attempt >= gateAfter, queued, fn)
		var busy *errAgreementBusy
		if errors.As(err, &busy) && queued == "" {
			// Not a failure: the attempt stopped before it waited, and
			// the next one queues for the agreement first. Once only, so
			// a transaction locking several agreements cannot loop.
			queued = busy.id
			continue
		}
		if err == nil || !retryable(err) {
			return err
		}
		db.retries.Add(1)
		if attempt >= db.maxAttempts {
			return fmt.Errorf("%w: transaction still conflicting after %d attempts: %w", store.ErrUnavailable, attempt, err)
		}
		attempt++
		// Full jitter keeps colliding instances from colliding again.
		wait := time.Duration(rand.Int64N(int64(backoff))) + time.Millisecond
		backoff = min(2*backoff, 100*time.Millisecond)
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres: giving up retrying: %w", errors.Join(ctx.Err(), err))
		case <-time.After(wait):
		}
	}
}

// attempt runs fn once in a transaction. With gate it first passes the
// contention gate; with queued set it first waits for that agreement's
// lock. Both are session locks taken before BEGIN, so the transaction's
// snapshot is taken after the wait and sees everything the previous
// holder committed: a SERIALIZABLE transaction that waited for a lock
// inside itself would read from before the wait and fail.
//
// The COMMIT and the unlocks go in one round trip: PostgreSQL gives the
// locks back as soon as the commit is durable, instead of when this
// goroutine next gets a CPU to send the unlock. Every writer of a busy
// agreement queues behind that moment, so on a loaded machine the wait
// for a CPU between COMMIT and unlock stalled all of them (issue 15).
func (db *DB) attempt(ctx context.Context, iso pgx.TxIsoLevel, gate bool, queued string, fn func(h handle) error) error {
	serial := iso != pgx.ReadCommitted
	if !gate && queued == "" {
		return tryTx(ctx, db.pool, iso, &txState{serial: serial}, fn)
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return mapErr(err)
	}
	defer conn.Release()
	// held: the session locks taken, in the order they are given back.
	var held []unlock
	defer func() { releaseSession(ctx, conn, held) }()
	if gate {
		if _, err := conn.Exec(ctx, contentionGate); err != nil {
			return mapErr(err)
		}
		held = append(held, unlock{sql: contentionGateRelease})
	}
	if queued != "" {
		if _, err := conn.Exec(ctx, agreementQueue, queued); err != nil {
			return mapErr(err)
		}
		held = append([]unlock{{sql: agreementQueueRelease, args: []any{queued}}}, held...)
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: iso})
	if err != nil {
		return mapErr(err)
	}
	if err := fn(handle{q: tx, tx: &txState{serial: serial, queued: queued}}); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	b := &pgx.Batch{}
	b.Queue("COMMIT")
	for _, u := range held {
		b.Queue(u.sql, u.args...)
	}
	br := tx.SendBatch(ctx, b)
	tag, err := br.Exec()
	if err != nil {
		// A COMMIT that fails skips the rest of the batch: the deferred
		// release sends the unlocks (or closes the connection).
		br.Close()
		return mapErr(err)
	}
	// The unlocks ran after the COMMIT, whatever it did.
	var uerr error
	for range held {
		if _, e := br.Exec(); e != nil && uerr == nil {
			uerr = e
		}
	}
	if e := br.Close(); uerr == nil {
		uerr = e
	}
	if uerr != nil {
		// The locks may still be held: a connection holding them must not
		// go back to the pool.
		conn.Conn().Close(context.WithoutCancel(ctx))
	}
	held = nil
	if tag.String() == "ROLLBACK" {
		// A statement failed and fn went on: the server rolled back.
		return mapErr(pgx.ErrTxCommitRollback)
	}
	return nil
}

// unlock is a statement giving back a session lock.
type unlock struct {
	sql  string
	args []any
}

// releaseSession gives back the session locks held on conn. A connection
// that cannot unlock must not go back to the pool holding a lock: it is
// closed, which releases them all.
func releaseSession(ctx context.Context, conn *pgxpool.Conn, held []unlock) {
	for _, u := range held {
		if _, err := conn.Exec(context.WithoutCancel(ctx), u.sql, u.args...); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
			return
		}
	}
}

// beginner is what *pgxpool.Pool and *pgxpool.Conn have in common.
type beginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

func tryTx(ctx context.Context, b beginner, iso pgx.TxIsoLevel, st *txState, fn func(h handle) error) error {
	tx, err := b.BeginTx(ctx, pgx.TxOptions{IsoLevel: iso})
	if err != nil {
		return mapErr(err)
	}
	if err := fn(handle{q: tx, tx: st}); err != nil {
		// Rollback fails only when the connection is gone, and then the
		// server has rolled back already.
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return mapErr(err)
	}
	return nil
}

// txState is what the methods of a transaction's handle know about it.
type txState struct {
	// serial: the transaction runs at REPEATABLE READ or SERIALIZABLE, so
	// its snapshot is fixed by its first statement.
	serial bool
	// queued: the agreement whose lock was taken before BEGIN.
	queued string
}

// retryable reports a serialization failure or a deadlock anywhere in the
// chain: the transaction was rolled back and running it again may succeed.
func retryable(err error) bool {
	if errors.Is(err, errStaleSnapshot) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// errStaleSnapshot marks a write that collided with a transaction which
// committed while this one waited for a row lock: under SERIALIZABLE the
// snapshot predates the wait, so a value derived from it (the next credit
// ordinal) can collide with a unique index instead of failing with 40001.
// Update retries it like a serialization failure.
var errStaleSnapshot = errors.New("postgres: write based on a snapshot older than a lock wait")

// atomic runs fn in a transaction: the surrounding one when h is already
// inside Update, else a new READ COMMITTED one (with retries), so
// multi-statement methods never leave half a change behind.
func atomic(ctx context.Context, h handle, fn func(h handle) error) error {
	if h.db == nil {
		return fn(h)
	}
	return h.db.inTx(ctx, pgx.ReadCommitted, fn)
}

// querier is what *pgxpool.Pool and pgx.Tx have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
}

// guardedPool is the pool as the store's own handle uses it: it refuses
// with store.ErrSecondConnection a goroutine that holds a transaction of
// this store (see store.TxGuard), instead of waiting for a connection that
// may never come.
type guardedPool struct {
	pool  *pgxpool.Pool
	guard *store.TxGuard
}

func (p guardedPool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := p.guard.Check(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return p.pool.Exec(ctx, sql, args...)
}

func (p guardedPool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := p.guard.Check(ctx); err != nil {
		return nil, err
	}
	return p.pool.Query(ctx, sql, args...)
}

func (p guardedPool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := p.guard.Check(ctx); err != nil {
		return errRow{err}
	}
	return p.pool.QueryRow(ctx, sql, args...)
}

func (p guardedPool) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := p.guard.Check(ctx); err != nil {
		return errBatch{err}
	}
	return p.pool.SendBatch(ctx, b)
}

func (p guardedPool) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if err := p.guard.Check(ctx); err != nil {
		return 0, err
	}
	return p.pool.CopyFrom(ctx, table, columns, src)
}

// errRow and errBatch carry a refusal through pgx's result types.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type errBatch struct{ err error }

func (b errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.err }
func (b errBatch) Query() (pgx.Rows, error)         { return nil, b.err }
func (b errBatch) QueryRow() pgx.Row                { return errRow{b.err} }
func (b errBatch) Close() error                     { return b.err }
func (b errBatch) Tx() pgx.Tx                       { return nil }

// handle implements store.Handle over the pool or a transaction. db is set
// only on the pool's handle: atomic uses it to open a transaction.
type handle struct {
	q  querier
	db *DB
	tx *txState // nil outside a transaction
}

func (h handle) Parties() store.Parties         { return parties(h) }
func (h handle) Tokens() store.Tokens           { return tokens(h) }
func (h handle) Collections() store.Collections { return collections(h) }
func (h handle) Objects() store.Objects         { return objects(h) }
func (h handle) Statuses() store.Statuses       { return statuses(h) }
func (h handle) Settings() store.Settings       { return settings(h) }

// mapErr turns driver errors into store sentinels, keeping the driver error
// in the chain (retryable looks for it there).
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505":
			return fmt.Errorf("%w: %w", store.ErrConflict, err)
		case pe.Code == "23503":
			return fmt.Errorf("%w: a referenced record does not exist: %w", store.ErrNotFound, err)
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // shutdown, crash, starting up
			pe.Code == "53300",                     // too many connections
			pe.Code == "53000", pe.Code == "53200": // insufficient resources, out of (shared) memory: transient, retry
			return unavailable(err)
		case pe.Code == "53100": // disk full
			return fmt.Errorf("%w: %w", store.ErrDiskFull, err)
		case pe.Code == "XX001", pe.Code == "XX002": // data or index corrupted
			return fmt.Errorf("%w: %w", store.ErrCorrupt, err)
		}
		return fmt.Errorf("postgres: %w", err)
	}
	if errors.Is(err, context.Canceled) {
		// The caller went away; nothing is wrong with the database.
		return fmt.Errorf("postgres: %w", err)
	}
	if lostConnection(err) {
		return unavailable(err)
	}
	return fmt.Errorf("postgres: %w", err)
}

// lostConnection reports errors that mean the server could not be reached
// or the connection broke, rather than a statement failing.
func lostConnection(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		// A pooled connection the server dropped (kill -9, restart) is
		// closed by pgx on first use and says only "conn closed".
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func unavailable(err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
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
