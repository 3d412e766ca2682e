package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	syncatomic "sync/atomic"
	"time"
)

// Checkpoints off the writer's path. SQLite's automatic checkpoint runs on
// the connection that committed, inside its COMMIT: the writer copied the
// write-ahead log's pages into the database file and fsynced it while the
// next write waited for the connection — 4 % of the server's CPU at the
// start of an ingest and 9 % at a million objects, as each commit dirties
// more pages of the random id index (issue 18). A goroutine with a
// connection of its own now runs PASSIVE checkpoints, which neither wait
// for nor block the writer and the readers, at most every checkpointEvery
// while writes come in; it repeats them while the writer appends, so that
// the log is usually all copied when the next transaction begins and
// SQLite starts the log over. The writer's own automatic checkpoint stays,
// at writerAutocheckpoint pages, for when this one falls behind.
//
// Acknowledgement is unchanged: a commit is durable once its frames are in
// the log and fsynced (synchronous=FULL); who copies them later does not
// matter, and the checkpoint connection also runs with synchronous=FULL,
// so the database file is fsynced before SQLite may reuse the log.

const (
	// checkpointEvery spaces the background checkpoints while writes
	// continue: about as many pages per checkpoint as the writer's
	// automatic checkpoint used to copy under ingest (10,000), so pages
	// written by several commits are still copied once.
	checkpointEvery = 500 * time.Millisecond
	// checkpointPasses bounds the passes of one round while the writer
	// keeps appending.
	checkpointPasses = 8
	// writerAutocheckpoint is the writer's own automatic checkpoint, in
	// pages of log: the backstop (80 MB).
	writerAutocheckpoint = 20000
)

// walSizeLimit is the size SQLite cuts the log's file back to whenever it
// starts the log over (PRAGMA journal_size_limit on the writer). SQLite
// starts over, writing from the file's beginning again, once everything
// in it is copied and no reader needs it, but never shrinks the file by
// itself: a log that grew while a long read kept it from starting over
// kept its size. Under a steady ingest the log grows to the writer's
// backstop (writerAutocheckpoint pages, about 82 MB with the frames'
// headers) before it starts over, so the limit lies above that and the
// file is not cut and grown again at every turn; cutting it to nothing
// is left to the server's housekeeping, between bursts of writes
// (internal/server/storage.go). A variable so that tests can make it small.
var walSizeLimit int64 = 128 << 20

// checkpointer runs background checkpoints of one database.
type checkpointer struct {
	db   *sql.DB
	kick chan struct{} // a commit happened
	stop chan struct{}
	done chan struct{}

	rounds, copied syncatomic.Int64 // rounds run, frames they copied
	closing        sync.Once
	closeErr       error
}

// checkpointDSN is the checkpoint connection's: it writes the database
// file, so it is not query_only, and it fsyncs what it copies.
func checkpointDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "cache_size(-2000)")
	return "file:" + path + "?" + q.Encode()
}

func startCheckpointer(path string) (*checkpointer, error) {
	db, err := sql.Open(DriverName, checkpointDSN(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s for checkpoints: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c, nil
}

// committed tells the checkpointer a write transaction committed. It
// never blocks.
func (c *checkpointer) committed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) loop() {
	defer close(c.done)
	ctx := context.Background()
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		c.round(ctx)
		select {
		case <-c.stop:
			return
		case <-time.After(checkpointEvery):
		}
	}
}

// round copies the log into the database, again while the writer appends
// to it, a few passes at most.
func (c *checkpointer) round(ctx context.Context) {
	c.rounds.Add(1)
	for range checkpointPasses {
		var busy, logFrames, done int
		if err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &done); err != nil {
			slog.WarnContext(ctx, "sqlite: background checkpoint", slog.Any("error", err))
			return
		}
		c.copied.Add(int64(max(done, 0)))
		if busy != 0 || done >= logFrames {
			return
		}
	}
}

// close stops the checkpoints; closing again returns the first close's
// error.
func (c *checkpointer) close() error {
	c.closing.Do(func() {
		close(c.stop)
		<-c.done
		c.closeErr = c.db.Close()
	})
	return c.closeErr
}
