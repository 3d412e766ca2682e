package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parley-cti/parley/internal/store"
)

// migration is one schema version. The list is append-only: never edit or
// reorder an entry that has shipped; add a new one instead. Version n is
// migrations[n-1].
type migration struct {
	name string
	sql  string
}

var migrations = []migration{
	{"parties, tokens, operator collections, objects, status resources", `
CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value BYTEA NOT NULL
);
CREATE TABLE parties (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at BIGINT NOT NULL
);
CREATE TABLE tokens (
	id         TEXT PRIMARY KEY,
	party_id   TEXT NOT NULL REFERENCES parties(id),
	hash       BYTEA NOT NULL UNIQUE,
	label      TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	revoked_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tokens_party ON tokens(party_id);
CREATE TABLE collections (
	pk          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id          TEXT NOT NULL UNIQUE,
	api_root    TEXT NOT NULL,
	title       TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL
);
CREATE INDEX collections_root ON collections(api_root, pk);
CREATE TABLE collection_access (
	collection_pk BIGINT NOT NULL REFERENCES collections(pk),
	party_id      TEXT NOT NULL REFERENCES parties(id),
	can_read      BOOLEAN NOT NULL,
	can_write     BOOLEAN NOT NULL,
	PRIMARY KEY (collection_pk, party_id)
);
-- One row per (collection, object id), locked by every writer of that
-- object's versions so that concurrent writers queue; it also remembers the
-- first and last version (NULL once every version is deleted).
--
-- object_heads.coll and objects.coll have no foreign key: the per-row check
-- cost half of a 1,000-object Put. Objects.Put instead takes FOR KEY SHARE
-- on the collection row once, which is the lock the check would take.
CREATE TABLE object_heads (
	coll          BIGINT NOT NULL,
	id            TEXT NOT NULL,
	first_version BIGINT,
	last_version  BIGINT,
	PRIMARY KEY (coll, id)
);
CREATE TABLE objects (
	seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	coll         BIGINT NOT NULL,
	id           TEXT NOT NULL,
	type         TEXT NOT NULL,
	spec_version TEXT NOT NULL,
	version      BIGINT NOT NULL,
	date_added   BIGINT NOT NULL,
	is_first     BOOLEAN NOT NULL,
	is_last      BOOLEAN NOT NULL,
	raw          BYTEA NOT NULL
);
CREATE UNIQUE INDEX objects_version ON objects(coll, id, version);
CREATE INDEX objects_added ON objects(coll, date_added, seq);
CREATE TABLE statuses (
	id          TEXT PRIMARY KEY,
	api_root    TEXT NOT NULL,
	party_id    TEXT NOT NULL,
	status      TEXT NOT NULL,
	request_ts  BIGINT NOT NULL,
	total       INTEGER NOT NULL,
	details     BYTEA NOT NULL
);
`},
}

// migrationLock serialises migrations of one schema across every instance
// starting at once. The two-key advisory lock space does not overlap the
// one-key space, and the second key keeps separate schemas (tests) apart.
const migrationLock = `SELECT pg_advisory_xact_lock(hashtext('parley.schema_migrations'), hashtext(current_schema()))`

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at BIGINT NOT NULL
)`

// currentVersion reads the schema version; a database without
// schema_migrations is at version 0.
func currentVersion(ctx context.Context, q querier) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, mapErr(err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, mapErr(err)
	}
	return v, nil
}

// migrate brings the schema to the newest version this binary knows, each
// migration in its own transaction under the migration lock, re-reading the
// version inside it so that each migration runs exactly once however many
// instances start together.
func migrate(ctx context.Context, pool *pgxpool.Pool, apply bool) error {
	have, err := currentVersion(ctx, pool)
	if err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("%w (database at version %d, this binary knows %d)", store.ErrSchemaTooNew, have, len(migrations))
	}
	if have < len(migrations) && !apply {
		return fmt.Errorf("%w (database at version %d, this binary knows %d)", store.ErrSchemaOutdated, have, len(migrations))
	}
	for v := have; v < len(migrations); v++ {
		if err := applyMigration(ctx, pool, v+1); err != nil {
			return err
		}
	}
	return nil
}

// applyMigration applies version v unless another instance did first.
func applyMigration(ctx context.Context, pool *pgxpool.Pool, v int) error {
	m := migrations[v-1]
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, migrationLock); err != nil {
			return fmt.Errorf("postgres: migration lock: %w", mapErr(err))
		}
		// Created under the lock: concurrent CREATE TABLE IF NOT EXISTS
		// can otherwise fail on the catalog's unique index.
		if _, err := tx.Exec(ctx, createMigrationsTable); err != nil {
			return fmt.Errorf("postgres: creating schema_migrations: %w", mapErr(err))
		}
		cur, err := currentVersion(ctx, tx)
		if err != nil {
			return err
		}
		if cur >= v {
			return nil
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("postgres: migration %d (%s): %w", v, m.name, mapErr(err))
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES($1, $2)`, v, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("postgres: recording migration %d: %w", v, mapErr(err))
		}
		return nil
	})
}
