package sqlite_test

import (
	"context"
	"errors"
	"testing"

	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/sqlite"
	"github.com/parley-cti/parley/internal/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

func TestRefusesUnmigratedAndNewerSchema(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := sqlite.Open(ctx, dir, sqlite.Options{}); !errors.Is(err, store.ErrSchemaOutdated) {
		t.Fatalf("open without migrate on an empty database: %v, want ErrSchemaOutdated", err)
	}
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	have, known, err := db.SchemaVersion(ctx)
	if err != nil || have != known {
		t.Fatalf("SchemaVersion = %d, %d, %v", have, known, err)
	}
	if err := sqlite.SetSchemaVersionForTest(ctx, db, known+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := sqlite.Open(ctx, dir, sqlite.Options{Migrate: true}); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
}
