package storecopy_test

import (
	"context"
	"testing"

	"github.com/parley-cti/parley/internal/store/sqlite"
	"github.com/parley-cti/parley/internal/store/storecopy"
)

// TestKnowsNewestSchema fails when a migration is added without teaching
// the copy its tables: the copy refuses other versions, so it would stop
// working silently.
func TestKnowsNewestSchema(t *testing.T) {
	db, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, known, err := db.SchemaVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if known != storecopy.SchemaVersion {
		t.Fatalf("SQLite schema is at version %d but storecopy knows %d: add the new tables to postgres/load.go and storecopy, then raise SchemaVersion", known, storecopy.SchemaVersion)
	}
}
