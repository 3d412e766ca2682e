package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	syncatomic "sync/atomic"

	"github.com/parley-cti/parley/internal/store"
)

// Group commit. SQLite has one writer and synchronous=FULL makes every
// commit wait for an fsync, so concurrent writers committing one by one
// queue behind each other's fsyncs. Instead, Updates that arrive while the
// writer is busy wait in a queue; when it is free, the first of them (the
// leader) opens one transaction for everyone queued, lets each run its
// function in turn inside its own SAVEPOINT, and commits once: one fsync
// for the whole group. There is no timer: a lone writer starts at once and
// commits alone, exactly as before.
//
// What each Update keeps:
//   - Acknowledgement: Update returns only after the shared transaction
//     committed (nil) or failed (every member gets the commit's error).
//   - Its own outcome: a member whose function fails is rolled back to its
//     savepoint; the others' work stays. If the transaction itself is lost
//     (SQLite rolls back the whole transaction on an interrupt, a full disk
//     or an I/O error), the member that hit it gets its error and the
//     members that had succeeded before it run again in a new transaction
//     (Store.Update's contract already allows a retry).
//   - Isolation: members run one after another on the one connection, each
//     seeing everything the members before it wrote, as if they had
//     committed just before it. A member's reads and writes are serial
//     with every other write, so the allowance arithmetic and the ledger's
//     append order (LockedSize, then WriteEntries at that size) are what
//     they were with one transaction per Update.
//   - store.TxGuard: each member registers its own goroutine and context,
//     and its function runs on its own goroutine, so a second connection or
//     nested Update inside it is refused as before.
//
// A member's statements run with a context that cannot cancel them (its
// cancellation is checked before each statement): SQLite answers an
// interrupted write by rolling back the whole transaction, which would
// throw away the other members' work.

const (
	// maxGroup bounds how many Updates share one transaction, and so how
	// long the first of them waits for the others' work (a TAXII POST of
	// ten objects is a few milliseconds of it; see docs/BENCHMARKS.md).
	maxGroup = 32
	// maxLosses bounds how often a transaction may be lost during one
	// member's turn before that member fails with ErrUnavailable.
	maxLosses = 3
)

// committer runs Updates on the writer connection, grouping concurrent ones
// into shared transactions.
type committer struct {
	w         *sql.DB
	stmts     *preparedStmts // the writer's prepared statements
	ids       *idFilter      // the stored ids (idfilter.go); nil on a DB a test assembled by hand
	committed func()         // after each commit, if set; must not block

	mu      sync.Mutex
	queue   []*member
	leading bool // a leader is running groups; newcomers wait

	transactions, members, largest syncatomic.Int64
}

// member is one Update waiting for, or inside, a group.
type member struct {
	ctx  context.Context
	fn   func(store.Handle) error
	wake chan signal // from the leader: lead, your turn, or done
	lost int         // transactions lost during its turn
}

type signalKind int

const (
	sigLead signalKind = iota // become the leader of the queue
	sigTurn                   // run fn in tx now, answer on back
	sigDone                   // the outcome: err
)

type signal struct {
	kind      signalKind
	tx        *sql.Tx
	ids       *idTx // the transaction's use of the id filter
	savepoint bool
	back      chan<- turnResult
	err       error
}

// turnResult is what a member's turn left behind.
type turnResult struct {
	err      error // fn's error (final), or the transaction's loss
	kept     bool  // its work is in the transaction
	lost     bool  // the transaction is gone (rolled back by SQLite)
	panicked any   // fn panicked with this value
}

// errPanicked is the outcome of a member whose function panicked; its
// goroutine panics again, so nobody sees it but the leader's bookkeeping.
var errPanicked = errors.New("sqlite: update function panicked")

func (c *committer) stats() store.CommitStats {
	c.mu.Lock()
	waiting := len(c.queue)
	c.mu.Unlock()
	return store.CommitStats{Transactions: c.transactions.Load(), Updates: c.members.Load(), Largest: c.largest.Load(), Waiting: int64(waiting)}
}

// update runs fn in a write transaction, possibly shared with concurrent
// Updates, and returns once that transaction has committed or failed.
func (c *committer) update(ctx context.Context, guard *store.TxGuard, fn func(store.Handle) error) error {
	// The writer is one connection: a goroutine already holding it in a
	// transaction would wait for itself.
	end, err := guard.Begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	if err := ctx.Err(); err != nil {
		return err
	}
	m := &member{ctx: ctx, fn: fn, wake: make(chan signal, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, m)
	lead := !c.leading
	c.leading = true
	c.mu.Unlock()
	if lead {
		return c.lead(m)
	}
	for s := range m.wake {
		switch s.kind {
		case sigLead:
			return c.lead(m)
		case sigTurn:
			r := m.turn(s.tx, c.stmts, s.ids, s.savepoint)
			s.back <- r
			if r.panicked != nil {
				panic(r.panicked)
			}
		case sigDone:
			return s.err
		}
	}
	panic("unreachable")
}

// lead takes the queue (self first), runs it as one group and hands the
// lead to whoever queued meanwhile. It returns self's outcome; if self's
// function panicked, it panics after handing the lead on.
func (c *committer) lead(self *member) error {
	c.mu.Lock()
	n := min(len(c.queue), maxGroup)
	group := append([]*member(nil), c.queue[:n]...)
	c.queue = append(c.queue[:0:0], c.queue[n:]...)
	c.mu.Unlock()

	outcome, panicked := c.runGroup(self, group)

	c.mu.Lock()
	if len(c.queue) > 0 {
		next := c.queue[0]
		c.mu.Unlock()
		next.wake <- signal{kind: sigLead}
	} else {
		c.leading = false
		c.mu.Unlock()
	}
	if panicked != nil {
		panic(panicked)
	}
	return outcome
}

// runGroup runs group's members in as few transactions as it can and tells
// each its outcome; self's is returned instead of sent.
func (c *committer) runGroup(self *member, group []*member) (selfErr error, selfPanic any) {
	finish := func(m *member, err error) {
		if m == self {
			selfErr = err
			return
		}
		m.wake <- signal{kind: sigDone, err: err}
	}
	back := make(chan turnResult, 1)
	pending := group
	for len(pending) > 0 {
		// The transaction runs on its own context: it outlives any one
		// member's request.
		bg := context.Background()
		tx, err := c.w.BeginTx(bg, nil) // BEGIN IMMEDIATE (dsn)
		if err != nil {
			for _, m := range pending {
				finish(m, mapErr(err))
			}
			return selfErr, selfPanic
		}
		c.transactions.Add(1)
		savepoints := len(pending) > 1
		// The writer's own statements run through its prepared ones
		// (prepared.go), as the members' do.
		own := memberQuerier{tx: tx, stmts: c.stmts, ctx: bg}
		ids := c.ids.begin(bg, own)
		var kept, rerun []*member
		var lost bool
		for i, m := range pending {
			c.members.Add(1)
			var r turnResult
			if m == self {
				r = m.turn(tx, c.stmts, ids, savepoints)
			} else {
				m.wake <- signal{kind: sigTurn, tx: tx, ids: ids, savepoint: savepoints, back: back}
				r = <-back
			}
			if r.panicked != nil && m == self {
				selfPanic = r.panicked
			}
			switch {
			case r.kept:
				kept = append(kept, m)
			case r.lost && r.err == nil:
				// The transaction was lost during m's turn though m
				// reported no error: m runs again, a few times at most.
				if m.lost++; m.lost > maxLosses {
					finish(m, fmt.Errorf("%w: the write transaction was lost %d times", store.ErrUnavailable, m.lost))
				} else {
					kept = append(kept, m)
				}
			default:
				finish(m, r.err)
			}
			if r.lost {
				// Everything kept so far is gone with the transaction:
				// it runs again, before the members not yet run, in a
				// new one. Only the member during whose turn it was
				// lost is charged for it.
				rerun = append(kept, pending[i+1:]...)
				kept, lost = nil, true
				break
			}
		}
		c.largest.Store(max(c.largest.Load(), int64(len(kept))))
		var commitErr error
		if len(kept) > 0 && !lost {
			ids.beforeCommit(bg, own)
			if err := tx.Commit(); err != nil {
				commitErr = mapErr(fmt.Errorf("sqlite: commit: %w", err))
				// A failed COMMIT may leave SQLite's transaction open (a
				// deferred constraint) on the connection database/sql has
				// taken back; nothing of it may stay.
				c.w.ExecContext(bg, `ROLLBACK`)
			}
		} else {
			tx.Rollback()
		}
		if len(kept) > 0 && !lost && commitErr == nil {
			ids.committed()
			if c.committed != nil {
				c.committed()
			}
		} else {
			ids.abandoned()
		}
		for _, m := range kept {
			finish(m, commitErr)
		}
		// The connection is free: prepare what ran unprepared.
		c.stmts.prepareNoted(bg)
		pending = rerun
	}
	return selfErr, selfPanic
}

// turn runs m's function in the shared transaction tx, inside a savepoint
// when others share it.
func (m *member) turn(tx *sql.Tx, stmts *preparedStmts, ids *idTx, savepoint bool) (r turnResult) {
	bg := context.Background()
	if err := m.ctx.Err(); err != nil {
		return turnResult{err: err}
	}
	if savepoint {
		if _, err := tx.ExecContext(bg, `SAVEPOINT member`); err != nil {
			return turnResult{lost: true} // run again in a new transaction
		}
	}
	// undo discards what fn wrote and reports whether the transaction
	// survived.
	undo := func() (lost bool) {
		if !savepoint {
			return false // the leader rolls the whole transaction back
		}
		ids.undo() // its keys may be given to other ids
		if _, err := tx.ExecContext(bg, `ROLLBACK TO member`); err != nil {
			return true
		}
		_, err := tx.ExecContext(bg, `RELEASE member`)
		return err != nil
	}
	defer func() {
		if v := recover(); v != nil {
			r = turnResult{err: errPanicked, lost: undo(), panicked: v}
		}
	}()
	q := memberQuerier{tx: tx, stmts: stmts, ctx: m.ctx, memo: newKeyMemo(), ids: ids}
	if err := m.fn(handle{r: q, w: q}); err != nil {
		return turnResult{err: err, lost: undo()}
	}
	if savepoint {
		if _, err := tx.ExecContext(bg, `RELEASE member`); err != nil {
			return turnResult{lost: true}
		}
	}
	// Alone in its transaction, a member whose work was lost learns it
	// from the COMMIT that fails.
	return turnResult{kept: true}
}

// memberQuerier is the shared transaction as one member sees it: its
// statements check the member's context first and then run on a context
// that cannot interrupt them, prepared once when the writer's cache has
// them.
type memberQuerier struct {
	tx    *sql.Tx
	stmts *preparedStmts
	ctx   context.Context
	memo  *keyMemo // this turn's, discarded with it
	ids   *idTx    // the transaction's use of the id filter
}

func (q memberQuerier) detach(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := q.ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

// stmt returns the cached statement for query bound to the transaction,
// or nil (and notes query for preparing after the transaction).
func (q memberQuerier) stmt(ctx context.Context, query string, args []any) *sql.Stmt {
	if len(args) > maxPreparedTxnArgs {
		return nil
	}
	return q.kept(ctx, query)
}

// kept is stmt whatever the number of placeholders.
func (q memberQuerier) kept(ctx context.Context, query string) *sql.Stmt {
	if q.stmts == nil {
		return nil
	}
	if s := q.stmts.lookup(query); s != nil {
		return q.tx.StmtContext(ctx, s)
	}
	q.stmts.note(query)
	return nil
}

func (q memberQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, err := q.detach(ctx)
	if err != nil {
		return nil, err
	}
	if s := q.stmt(ctx, query, args); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return q.tx.ExecContext(ctx, query, args...)
}

func (q memberQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx, err := q.detach(ctx)
	if err != nil {
		return nil, err
	}
	if s := q.stmt(ctx, query, args); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return q.tx.QueryContext(ctx, query, args...)
}

// queryKept and execKept are QueryContext and ExecContext for the
// statement of a full chunk (chunked): kept prepared on the writer across
// transactions whatever its number of placeholders, since there are a
// fixed few such texts and parsing one again in every transaction cost
// several per cent of ingest (issue 18).
func (q memberQuerier) queryKept(ctx context.Context, query string, args []any) (*sql.Rows, error) {
	ctx, err := q.detach(ctx)
	if err != nil {
		return nil, err
	}
	if s := q.kept(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return q.tx.QueryContext(ctx, query, args...)
}

func (q memberQuerier) execKept(ctx context.Context, query string, args []any) error {
	ctx, err := q.detach(ctx)
	if err != nil {
		return err
	}
	if s := q.kept(ctx, query); s != nil {
		_, err = s.ExecContext(ctx, args...)
	} else {
		_, err = q.tx.ExecContext(ctx, query, args...)
	}
	return err
}

func (q memberQuerier) QueryRowContext(ctx context.Context, query string, args ...any) row {
	ctx, err := q.detach(ctx)
	if err != nil {
		return errRow{err}
	}
	if s := q.stmt(ctx, query, args); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return q.tx.QueryRowContext(ctx, query, args...)
}

// PrepareContext returns the writer's prepared statement for query, bound
// to the transaction, when it has one: closing it leaves the statement
// prepared on the connection (database/sql keeps a statement made by
// Tx.StmtContext from a prepared one in its parent).
func (q memberQuerier) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	ctx, err := q.detach(ctx)
	if err != nil {
		return nil, err
	}
	if s := q.kept(ctx, query); s != nil {
		return s, nil
	}
	return q.tx.PrepareContext(ctx, query)
}
