package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// preparedStmts keeps prepared statements of one pool by their SQL text, so a
// statement on a hot path is parsed and planned once per connection
// instead of on every call: under 64 TAXII clients, SQLite's parser was a
// fifth of the server's CPU and a quarter of the writer's time inside its
// transactions (docs/BENCHMARKS.md, group commit).
//
// On the read pool a statement is prepared when first asked for. The
// writer's single connection is held by the transaction that asks, so a
// statement first seen there is only noted; the committer prepares the
// noted ones once the transaction is over, and later transactions run
// them through Tx.StmtContext, which reuses what is prepared on the
// connection.
type preparedStmts struct {
	db *sql.DB

	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
	noted  map[string]bool
	closed bool
}

// The cache is bounded: queries built with a variable number of
// placeholders have many texts, and a statement of thousands of them
// (a long multi-row INSERT) is a large program. Past the bounds,
// statements are prepared per call as before.
const (
	maxPrepared        = 256
	maxPreparedArgs    = 16  // on the read pool
	maxPreparedTxnArgs = 256 // on the writer (a multi-row INSERT of a small envelope)
)

func newPreparedStmts(db *sql.DB) *preparedStmts {
	return &preparedStmts{db: db, stmts: map[string]*sql.Stmt{}, noted: map[string]bool{}}
}

// lookup returns the cached statement for query, or nil.
func (c *preparedStmts) lookup(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts[query]
}

// get returns a statement for query, preparing and caching it if there is
// room; nil if it cannot (then the caller runs the query unprepared, which
// reports any error in the SQL).
func (c *preparedStmts) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.Lock()
	s, full := c.stmts[query], len(c.stmts) >= maxPrepared || c.closed
	c.mu.Unlock()
	if s != nil || full {
		return s
	}
	s, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	return c.keep(query, s)
}

func (c *preparedStmts) keep(query string, s *sql.Stmt) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.stmts[query]; old != nil || c.closed || len(c.stmts) >= maxPrepared {
		s.Close()
		return old
	}
	c.stmts[query] = s
	return s
}

// note records that query ran unprepared inside a transaction.
func (c *preparedStmts) note(query string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.stmts)+len(c.noted) < maxPrepared {
		c.noted[query] = true
	}
}

// prepareNoted prepares the noted queries; call it while no transaction
// holds the pool's connections.
func (c *preparedStmts) prepareNoted(ctx context.Context) {
	c.mu.Lock()
	noted := c.noted
	if len(noted) == 0 {
		c.mu.Unlock()
		return
	}
	c.noted = map[string]bool{}
	c.mu.Unlock()
	for q := range noted {
		if s, err := c.db.PrepareContext(ctx, q); err == nil {
			c.keep(q, s)
		}
	}
}

// close releases every cached statement.
func (c *preparedStmts) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.stmts {
		s.Close()
	}
	c.stmts, c.closed = map[string]*sql.Stmt{}, true
}
