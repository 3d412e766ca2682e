package sqlite

import (
	"context"
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
