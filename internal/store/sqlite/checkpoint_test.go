package sqlite

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// TestCheckpointsOffTheWriter: the writer's automatic checkpoint is only
// the backstop; the log its commits write is copied into the database by
// the background checkpointer, on its own connection.
func TestCheckpointsOffTheWriter(t *testing.T) {
	db := openGroupTest(t)
	ctx := context.Background()
	var auto int
	if err := db.w.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != writerAutocheckpoint {
		t.Errorf("the writer checkpoints automatically at %d pages, want the backstop %d", auto, writerAutocheckpoint)
	}
	coll := benchCollection(t, db)
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		if _, err := db.Objects().Put(ctx, coll, benchObjects(1000*i, 1000, added)); err != nil {
			t.Fatal(err)
		}
	}
	// The rounds run within checkpointEvery of a commit; the bound here
	// only keeps a broken checkpointer from hanging the test.
	deadline := time.Now().Add(time.Minute)
	for db.checkpoints.copied.Load() < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("after 3 commits of 1,000 objects the checkpointer copied %d frames in %d rounds, want them all",
				db.checkpoints.copied.Load(), db.checkpoints.rounds.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Everything committed is readable through a new connection, and the
	// database file holds it once the log is gone.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, db.path[:len(db.path)-len(FileName)-1], Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if n, err := again.Objects().Count(ctx, coll); err != nil || n != 3000 {
		t.Errorf("reopened: %d objects, %v; want 3000", n, err)
	}
}

// TestWALFileCutBackWhenTheLogStartsOver: a log that grew while a read kept
// SQLite from starting it over is cut back to walSizeLimit once it starts
// over, by SQLite at the next commit, without a TRUNCATE checkpoint that
// would hold the writer (the server's housekeeping did that every 30 s,
// stalling writes for 0.1–2.8 s under load).
func TestWALFileCutBackWhenTheLogStartsOver(t *testing.T) {
	defer func(v int64) { walSizeLimit = v }(walSizeLimit)
	walSizeLimit = 256 << 10
	db := openGroupTest(t)
	ctx := context.Background()
	var limit int64
	if err := db.w.QueryRowContext(ctx, `PRAGMA journal_size_limit`).Scan(&limit); err != nil {
		t.Fatal(err)
	}
	if limit != walSizeLimit {
		t.Fatalf("the writer's journal_size_limit is %d, want %d", limit, walSizeLimit)
	}
	coll := benchCollection(t, db)
	added := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	// A read transaction that has read the database keeps the log from
	// starting over while it lasts.
	rtx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rtx.QueryRowContext(ctx, `SELECT count(*) FROM objects`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := db.Objects().Put(ctx, coll, benchObjects(1000*i, 1000, added)); err != nil {
			t.Fatal(err)
		}
	}
	grown, err := db.Space(ctx)
	if err != nil || grown.WALBytes < 4*walSizeLimit {
		t.Fatalf("log after 4,000 objects with a read open: %+v, %v; want more than %d bytes", grown, err, 4*walSizeLimit)
	}
	if err := rtx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// Writes go on: once the checkpointer has copied the log, the next
	// commit starts it over, and SQLite cuts the file back.
	deadline := time.Now().Add(time.Minute)
	for i := 4000; ; i += 10 {
		if _, err := db.Objects().Put(ctx, coll, benchObjects(i, 10, added)); err != nil {
			t.Fatal(err)
		}
		sp, err := db.Space(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sp.WALBytes <= walSizeLimit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log's file is still %d bytes a minute after the read ended (grown to %d), want at most %d",
				sp.WALBytes, grown.WALBytes, walSizeLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c, err := db.Objects().Count(ctx, coll); err != nil || c < 4000 {
		t.Fatalf("objects after the log was cut back: %d, %v", c, err)
	}
}
