package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
)

// ErrNotEmpty: Load was given a database that already holds data.
var ErrNotEmpty = errors.New("postgres: the target database is not empty")

// loadable lists, in load order (referenced tables first), every table
// Load accepts and its columns. object_heads is derived, ledger_size is
// set from the loaded entries, and schema_migrations belongs to migrate.
var loadable = []loadTable{
	{"settings", []string{"key", "value"}},
	{"parties", []string{"id", "name", "created_at"}},
	{"tokens", []string{"id", "party_id", "hash", "label", "created_at", "revoked_at", "expires_at", "last_used_at"}},
	{"collections", []string{"pk", "id", "api_root", "title", "description", "created_at", "agreement", "contributor", "kind"}},
	{"collection_access", []string{"collection_pk", "party_id", "can_read", "can_write"}},
	{"objects", []string{"seq", "coll", "id", "type", "spec_version", "version", "date_added", "is_first", "is_last", "raw"}},
	{"object_owners", []string{"coll", "id", "party_id"}},
	{"statuses", []string{"id", "api_root", "party_id", "status", "request_ts", "total", "details"}},
	{"ledger_entries", []string{"idx", "data"}},
	{"ledger_hashes", []string{"idx", "hash"}},
	{"ledger_checkpoints", []string{"size", "note"}},
	{"ledger_cosignatures", []string{"size", "witness", "line"}},
	{"party_keys", []string{"key_id", "party_id", "public", "valid_from", "valid_until", "rotation"}},
	{"agreements", []string{"id", "party_a", "party_b", "created_at"}},
	{"agreement_versions", []string{"agreement_id", "version", "document", "hash", "created_at"}},
	{"agreement_signatures", []string{"seq", "agreement_id", "version", "party_id", "action", "raw", "signed_at"}},
	{"agreement_credits", []string{"agreement_id", "object_id", "party_id", "ord", "weight", "added_at", "fingerprint", "contested"}},
	{"agreement_handed", []string{"agreement_id", "fingerprint"}},
	{"agreement_contests", []string{"id", "agreement_id", "contester", "contributor", "object_id", "weight", "reason", "statement", "filed_at",
		"ledger_index", "withdrawn_at", "withdrawal", "withdraw_index"}},
	{"agreement_released", []string{"agreement_id", "reader", "up_to", "reach_added", "reach_seq"}},
	{"handovers", []string{"id", "agreement_id", "proposer", "counterpart", "proposer_delivers", "counterpart_delivers", "request_id",
		"deadline", "state", "created_at", "decided_at", "closed_at", "near_notified", "release_index"}},
	{"handover_deposits", []string{"handover_id", "party_id", "sealed", "content", "sha256", "objects", "deposited_at", "ledger_index", "dispute", "disputed_at",
		"manifest", "dispute_statement"}},
	{"requests", []string{"id", "agreement_id", "requester", "responder", "subject", "refs", "reason", "urgency", "state", "filed_at", "ack_by", "fulfil_by",
		"acknowledged_at", "answered_at", "ground", "ground_text", "handover_id", "ack_overdue", "answer_overdue", "near_notified"}},
	{"event_heads", []string{"party_id", "seq"}},
	{"events", []string{"party_id", "seq", "kind", "subject", "data", "at"}},
	{"matches", []string{"id", "agreement_id", "session_id", "cap", "initiator", "responder", "i_upload", "i_count", "i_size", "i_at", "i_index",
		"r_upload", "r_count", "r_size", "r_at", "r_index", "handover_id", "created_at", "ledger_index"}},
	{"match_chunks", []string{"match_id", "party_id", "upload", "seq", "data"}},
	{"ledger_verifications", []string{"party_id", "seq", "size", "root", "entries", "verified_at", "received_at", "statement"}},
	{"node_self", []string{"id", "public_url", "updated_at"}},
	{"node_peers", []string{"name", "url", "key", "key_id", "added_at"}},
	{"mirrors", []string{"id", "party_id", "agreement_id", "created_at", "source_url", "source_collection", "source_user", "source_token",
		"page_limit", "added_after", "next_token", "session_last", "accepted", "refused", "last_refusal", "pages", "last_success", "last_error", "last_error_at",
		"failures", "next_attempt", "lease", "lease_until"}},
	{"credit_marks", []string{"agreement_id", "party_id", "object_id", "ord", "type", "tlp", "version"}},
	{"credit_tallies", []string{"agreement_id", "party_id", "block", "type", "tlp", "n"}},
	{"credit_marks_pending", []string{"agreement_id", "party_id"}},
	{"report_signatures", []string{"agreement_id", "ledger_index", "party_id", "key_id", "report_hash", "period_from", "period_to", "signed_at", "statement"}},
	{"node_remote_parties", []string{"party_id", "node_key", "node_key_id", "name", "learned_at"}},
	{"node_outbox", []string{"seq", "peer_key_id", "agreement_id", "party_id", "kind", "body", "created_at", "state", "attempts", "next_attempt", "last_error", "done_at"}},
	{"node_peer_logs", []string{"key_id", "peer", "log_key", "witness_key", "size", "checkpoint", "updated_at"}},
	{"node_peer_incidents", []string{"key_id", "digest", "peer", "kind", "detail", "ours", "theirs", "at"}},
	{"node_peer_receipts", []string{"key_id", "idx", "leaf_hash", "added_at"}},
	{"node_feed_cursors", []string{"agreement_id", "party_id", "after_ord", "pulled", "refused", "attempts", "next_attempt", "last_error", "updated_at", "last_success", "peer_released", "versions_after"}},
	{"escrow_held", []string{"handover_id", "agreement_id", "document_sha256", "document", "proposer", "counterpart", "proposer_node", "counterpart_node",
		"deadline", "state", "created_at", "closed_at", "release_index"}},
	{"escrow_held_deposits", []string{"handover_id", "party_id", "content", "sha256", "deposited_at", "ledger_index"}},
	{"handover_gradual", []string{"handover_id", "chunks", "proposer_commitment", "counterpart_commitment", "stopped_by", "stop_reason", "stopped_at"}},
	{"handover_chunks", []string{"handover_id", "depositor", "idx", "sha256", "size", "content", "moved_at", "confirmed_at", "confirmation", "ledger_index"}},
}

type loadTable struct {
	table string
	cols  []string
}

// LoadTables returns the tables Load accepts, in the order to load them,
// each with its columns.
func LoadTables() (tables []string, cols map[string][]string) {
	cols = make(map[string][]string, len(loadable))
	for _, t := range loadable {
		tables = append(tables, t.table)
		cols[t.table] = slices.Clone(t.cols)
	}
	return tables, cols
}

// Loader bulk-loads rows inside the transaction of one Load.
type Loader struct {
	tx pgx.Tx
}

// Load runs fn in one transaction on an empty, migrated database, for
// `parley copy`: fn's rows keep their keys (collection pks, object seqs,
// signature seqs) so that cursors and references stay valid, and either
// everything fn loads is committed or nothing is. ErrNotEmpty if any table
// holds a row or the ledger is not empty.
func (db *DB) Load(ctx context.Context, fn func(l *Loader) error) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return mapErr(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// Instances starting on the target would write settings; hold them off.
	for _, t := range loadable {
		if _, err := tx.Exec(ctx, `LOCK TABLE `+pgx.Identifier{t.table}.Sanitize()+` IN EXCLUSIVE MODE`); err != nil {
			return mapErr(err)
		}
	}
	for _, t := range append([]string{"object_heads"}, tableNames()...) {
		var has bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+pgx.Identifier{t}.Sanitize()+`)`).Scan(&has); err != nil {
			return mapErr(err)
		}
		if has {
			return fmt.Errorf("%w: table %s has rows; copy only into a freshly migrated database", ErrNotEmpty, t)
		}
	}
	var size int64
	if err := tx.QueryRow(ctx, `SELECT size FROM ledger_size WHERE id = 1`).Scan(&size); err != nil {
		return mapErr(err)
	}
	if size != 0 {
		return fmt.Errorf("%w: the ledger has %d entries", ErrNotEmpty, size)
	}
	if err := fn(&Loader{tx: tx}); err != nil {
		return err
	}
	if err := finishLoad(ctx, tx); err != nil {
		return err
	}
	return mapErr(tx.Commit(ctx))
}

func tableNames() []string {
	out := make([]string, len(loadable))
	for i, t := range loadable {
		out[i] = t.table
	}
	return out
}

// Rows loads rows (values in the order of cols, which must be the table's
// columns as LoadTables lists them) into table with COPY.
func (l *Loader) Rows(ctx context.Context, table string, cols []string, rows [][]any) error {
	i := slices.IndexFunc(loadable, func(t loadTable) bool { return t.table == table })
	if i < 0 || !slices.Equal(loadable[i].cols, cols) {
		return fmt.Errorf("postgres: load: unknown table or columns %s%v", table, cols)
	}
	if len(rows) == 0 {
		return nil
	}
	if table == "collections" {
		// pk is GENERATED ALWAYS; keeping the source's keys needs OVERRIDING.
		for _, r := range rows {
			if _, err := l.tx.Exec(ctx, `INSERT INTO collections(pk, id, api_root, title, description, created_at, agreement, contributor, kind)
				OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, r...); err != nil {
				return fmt.Errorf("postgres: load collections: %w", mapErr(err))
			}
		}
		return nil
	}
	if _, err := l.tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("postgres: load %s: %w", table, mapErr(err))
	}
	return nil
}

// finishLoad derives what the backend keeps beside the loaded rows: the
// object heads, the ledger size and the identity sequences, which must
// continue after the loaded keys.
func finishLoad(ctx context.Context, tx pgx.Tx) error {
	stmts := []string{
		`INSERT INTO object_heads(coll, id, first_version, last_version)
			SELECT coll, id, min(version), max(version) FROM objects GROUP BY coll, id`,
		`UPDATE ledger_size SET size = (SELECT count(*) FROM ledger_entries) WHERE id = 1`,
		`INSERT INTO agreement_totals(agreement_id, party_id, contributed, credits, contested)
			SELECT agreement_id, party_id, max(ord), sum(weight), coalesce(sum(weight) FILTER (WHERE contested <> 0), 0)
			FROM agreement_credits GROUP BY agreement_id, party_id`,
		`SELECT setval(pg_get_serial_sequence('collections', 'pk'), coalesce((SELECT max(pk) FROM collections), 0) + 1, false)`,
		`SELECT setval(pg_get_serial_sequence('objects', 'seq'), coalesce((SELECT max(seq) FROM objects), 0) + 1, false)`,
		`SELECT setval(pg_get_serial_sequence('agreement_signatures', 'seq'), coalesce((SELECT max(seq) FROM agreement_signatures), 0) + 1, false)`,
		`SELECT setval(pg_get_serial_sequence('node_outbox', 'seq'), coalesce((SELECT max(seq) FROM node_outbox), 0) + 1, false)`,
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("postgres: finishing the load: %w", mapErr(err))
		}
	}
	// The ledger's entries must be exactly 0..size-1, as the log requires.
	var n, maxIdx int64
	if err := tx.QueryRow(ctx, `SELECT count(*), coalesce(max(idx), -1) FROM ledger_entries`).Scan(&n, &maxIdx); err != nil {
		return mapErr(err)
	}
	if maxIdx != n-1 {
		return fmt.Errorf("postgres: load: ledger entries have gaps (%d entries, highest index %d): %w", n, maxIdx, store.ErrConflict)
	}
	return nil
}
