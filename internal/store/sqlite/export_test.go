package sqlite

import (
	"context"
	"fmt"
)

// SetSchemaVersionForTest pretends a newer parley migrated the database.
func SetSchemaVersionForTest(ctx context.Context, db *DB, v int) error {
	_, err := db.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v))
	return err
}
