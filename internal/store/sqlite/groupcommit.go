package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	syncatomic "sync/atomic"
	"time"

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
	// maxGroup bounds how many Updates share one transaction.
	maxGroup = 64
	// maxGroupWork bounds how long one transaction runs members before it
	// commits and leaves the rest of its group to the next: the first
	// member's answer waits for every later member's work.
	maxGroupWork = 100 * time.Millisecond
	// maxLosses bounds how often a transaction may be lost during one
	// member's turn before that member fails with ErrUnavailable.
	maxLosses = 3
)

// committer runs Updates on the writer connection, grouping concurrent ones
// into shared transactions.
type committer struct {
	w *sql.DB

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
	sigTurn                   // run fn in conn now, answer on back
	sigDone                   // the outcome: err
)

type signal struct {
	kind      signalKind
	conn      *sql.Conn
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
			r := m.turn(s.conn, s.savepoint)
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
		conn, err := c.w.Conn(bg)
		if err == nil {
			if _, err = conn.ExecContext(bg, `BEGIN IMMEDIATE`); err != nil {
				conn.Close()
			}
		}
		if err != nil {
			for _, m := range pending {
				finish(m, mapErr(err))
			}
			return selfErr, selfPanic
		}
		c.transactions.Add(1)
		savepoints := len(pending) > 1
		start := time.Now()
		var kept, rerun []*member
		var lost bool
		for i, m := range pending {
			if i > 0 && time.Since(start) > maxGroupWork {
				rerun = append(rerun, pending[i:]...)
				break
			}
			c.members.Add(1)
			var r turnResult
			if m == self {
				r = m.turn(conn, savepoints)
			} else {
				m.wake <- signal{kind: sigTurn, conn: conn, savepoint: savepoints, back: back}
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
			if _, err := conn.ExecContext(bg, `COMMIT`); err != nil {
				commitErr = mapErr(fmt.Errorf("sqlite: commit: %w", err))
			}
		}
		if len(kept) == 0 || lost || commitErr != nil {
			// A failed COMMIT may leave the transaction open (a
			// deferred constraint); nothing of it may stay.
			conn.ExecContext(bg, `ROLLBACK`)
		}
		conn.Close()
		for _, m := range kept {
			finish(m, commitErr)
		}
		pending = rerun
	}
	return selfErr, selfPanic
}

// turn runs m's function in the shared transaction on conn, inside a
// savepoint when others share it.
func (m *member) turn(conn *sql.Conn, savepoint bool) (r turnResult) {
	bg := context.Background()
	if err := m.ctx.Err(); err != nil {
		return turnResult{err: err}
	}
	if savepoint {
		if _, err := conn.ExecContext(bg, `SAVEPOINT member`); err != nil {
			return turnResult{lost: true} // run again in a new transaction
		}
	}
	// undo discards what fn wrote and reports whether the transaction
	// survived.
	undo := func() (lost bool) {
		if !savepoint {
			return false // the leader rolls the whole transaction back
		}
		if _, err := conn.ExecContext(bg, `ROLLBACK TO member`); err != nil {
			return true
		}
		_, err := conn.ExecContext(bg, `RELEASE member`)
		return err != nil
	}
	defer func() {
		if v := recover(); v != nil {
			r = turnResult{err: errPanicked, lost: undo(), panicked: v}
		}
	}()
	q := memberQuerier{conn: conn, ctx: m.ctx}
	if err := m.fn(handle{r: q, w: q}); err != nil {
		return turnResult{err: err, lost: undo()}
	}
	if savepoint {
		if _, err := conn.ExecContext(bg, `RELEASE member`); err != nil {
			return turnResult{lost: true}
		}
	}
	// Alone in its transaction, a member whose work was lost learns it
	// from the COMMIT that fails.
	return turnResult{kept: true}
}

// memberQuerier is the shared transaction as one member sees it: its
// statements check the member's context first and then run on a context
// that cannot interrupt them.
type memberQuerier struct {
	conn *sql.Conn
	ctx  context.Context
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

func (q memberQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, err := q.detach(ctx)
	if err != nil {
		return nil, err
	}
	return q.conn.ExecContext(ctx, query, args...)
}

func (q memberQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx, err := q.detach(ctx)
	if err != nil {
		return nil, err
	}
	return q.conn.QueryContext(ctx, query, args...)
}

func (q memberQuerier) QueryRowContext(ctx context.Context, query string, args ...any) row {
	ctx, err := q.detach(ctx)
	if err != nil {
		return errRow{err}
	}
	return q.conn.QueryRowContext(ctx, query, args...)
}

func (q memberQuerier) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	ctx, err := q.detach(ctx)
	if err != nil {
		return nil, err
	}
	return q.conn.PrepareContext(ctx, query)
}
