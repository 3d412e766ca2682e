package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

func (h handle) Keys() store.Keys             { return keys(h) }
func (h handle) Agreements() store.Agreements { return agreements(h) }
func (h handle) Credits() store.Credits       { return credits(h) }

var _ store.Handle = handle{}

type keys handle

func (s keys) Add(ctx context.Context, k store.PartyKey) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO party_keys(key_id, party_id, public, valid_from, valid_until, rotation) VALUES (?, ?, ?, ?, ?, ?)`,
		k.KeyID, k.PartyID, k.Public, micros(k.ValidFrom), micros(k.ValidUntil), k.Rotation)
	return mapErr(err)
}

func (s keys) Retire(ctx context.Context, keyID string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE party_keys SET valid_until = ? WHERE key_id = ? AND valid_until = 0`, micros(at), keyID)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("current key %s: %w", keyID, store.ErrNotFound)
	}
	return nil
}

const keyCols = `key_id, party_id, public, valid_from, valid_until, rotation`

func scanKey(sc interface{ Scan(...any) error }) (store.PartyKey, error) {
	var k store.PartyKey
	var from, until int64
	if err := sc.Scan(&k.KeyID, &k.PartyID, &k.Public, &from, &until, &k.Rotation); err != nil {
		return store.PartyKey{}, mapErr(err)
	}
	k.ValidFrom, k.ValidUntil = fromMicros(from), fromMicros(until)
	return k, nil
}

func (s keys) Get(ctx context.Context, keyID string) (store.PartyKey, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, `SELECT `+keyCols+` FROM party_keys WHERE key_id = ?`, keyID))
	if err != nil {
		return store.PartyKey{}, fmt.Errorf("key %s: %w", keyID, err)
	}
	return k, nil
}

func (s keys) ListByParty(ctx context.Context, partyID string) ([]store.PartyKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+keyCols+` FROM party_keys WHERE party_id = ? ORDER BY valid_from, key_id`, partyID)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.PartyKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, mapErr(rows.Err())
}

type agreements handle

func (s agreements) Create(ctx context.Context, a store.AgreementRecord) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO agreements(id, party_a, party_b, created_at) VALUES (?, ?, ?, ?)`,
		a.ID, a.PartyA, a.PartyB, micros(a.CreatedAt))
	return mapErr(err)
}

func (s agreements) Get(ctx context.Context, id string) (store.AgreementRecord, error) {
	var a store.AgreementRecord
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT id, party_a, party_b, created_at FROM agreements WHERE id = ?`, id).Scan(&a.ID, &a.PartyA, &a.PartyB, &created)
	if err != nil {
		return store.AgreementRecord{}, fmt.Errorf("agreement %s: %w", id, mapErr(err))
	}
	a.CreatedAt = fromMicros(created)
	return a, nil
}

// Lock: a SQLite write transaction already holds the database's one write
// lock, so checking existence on the writer is all that is needed.
func (s agreements) Lock(ctx context.Context, id string) error {
	var one int
	if err := s.w.QueryRowContext(ctx, `SELECT 1 FROM agreements WHERE id = ?`, id).Scan(&one); err != nil {
		return fmt.Errorf("agreement %s: %w", id, mapErr(err))
	}
	return nil
}

func (s agreements) ListByParty(ctx context.Context, partyID string) ([]store.AgreementRecord, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, party_a, party_b, created_at FROM agreements WHERE party_a = ? OR party_b = ? ORDER BY created_at DESC, id`, partyID, partyID)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.AgreementRecord
	for rows.Next() {
		var a store.AgreementRecord
		var created int64
		if err := rows.Scan(&a.ID, &a.PartyA, &a.PartyB, &created); err != nil {
			return nil, mapErr(err)
		}
		a.CreatedAt = fromMicros(created)
		out = append(out, a)
	}
	return out, mapErr(rows.Err())
}

func (s agreements) AddVersion(ctx context.Context, v store.AgreementVersion) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO agreement_versions(agreement_id, version, document, hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		v.AgreementID, v.Version, v.Document, v.Hash[:], micros(v.CreatedAt))
	return mapErr(err)
}

func (s agreements) Versions(ctx context.Context, id string) ([]store.AgreementVersion, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT agreement_id, version, document, hash, created_at FROM agreement_versions WHERE agreement_id = ? ORDER BY version`, id)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.AgreementVersion
	for rows.Next() {
		var v store.AgreementVersion
		var hash []byte
		var created int64
		if err := rows.Scan(&v.AgreementID, &v.Version, &v.Document, &hash, &created); err != nil {
			return nil, mapErr(err)
		}
		copy(v.Hash[:], hash)
		v.CreatedAt = fromMicros(created)
		out = append(out, v)
	}
	return out, mapErr(rows.Err())
}

func (s agreements) AddSignature(ctx context.Context, sg store.AgreementSignature) (int64, error) {
	res, err := s.w.ExecContext(ctx, `INSERT INTO agreement_signatures(agreement_id, version, party_id, action, raw, signed_at) VALUES (?, ?, ?, ?, ?, ?)`,
		sg.AgreementID, sg.Version, sg.PartyID, sg.Action, sg.Raw, micros(sg.SignedAt))
	if err != nil {
		return 0, mapErr(err)
	}
	seq, err := res.LastInsertId()
	return seq, mapErr(err)
}

func (s agreements) Signatures(ctx context.Context, id string) ([]store.AgreementSignature, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, agreement_id, version, party_id, action, raw, signed_at FROM agreement_signatures WHERE agreement_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.AgreementSignature
	for rows.Next() {
		var sg store.AgreementSignature
		var at int64
		if err := rows.Scan(&sg.Seq, &sg.AgreementID, &sg.Version, &sg.PartyID, &sg.Action, &sg.Raw, &at); err != nil {
			return nil, mapErr(err)
		}
		sg.SignedAt = fromMicros(at)
		out = append(out, sg)
	}
	return out, mapErr(rows.Err())
}

type credits handle

// chunked runs a statement over rows in chunks of full rows, its text
// made by sql(n) for n rows. The statement for a full chunk is parsed once:
// inside a group-commit transaction the writer keeps it prepared across
// transactions (memberQuerier.queryKept), elsewhere it is prepared once per
// call and reused for every full chunk of the call. The last partial chunk
// is run unprepared. A multi-row statement has too many placeholders for
// the writer's general statement cache, and parsing it at every chunk cost
// as much as a tenth of a give-to-get ingest.
type chunked struct {
	q    querier
	full int
	sql  func(n int) string
	text string    // sql(full), once made
	stmt *sql.Stmt // prepared for this call, when q keeps none
}

// keptQuerier is a querier that keeps full chunks' statements prepared.
type keptQuerier interface {
	queryKept(ctx context.Context, query string, args []any) (*sql.Rows, error)
	execKept(ctx context.Context, query string, args []any) error
}

// prepared returns the statement for a full chunk when q keeps none, nil
// when it does.
func (c *chunked) prepared(ctx context.Context) (*sql.Stmt, error) {
	if c.text == "" {
		c.text = c.sql(c.full)
	}
	if _, ok := c.q.(keptQuerier); ok {
		return nil, nil
	}
	if c.stmt == nil {
		var err error
		if c.stmt, err = c.q.PrepareContext(ctx, c.text); err != nil {
			return nil, err
		}
	}
	return c.stmt, nil
}

func (c *chunked) query(ctx context.Context, n int, args []any) (*sql.Rows, error) {
	if n != c.full {
		return c.q.QueryContext(ctx, c.sql(n), args...)
	}
	s, err := c.prepared(ctx)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.q.(keptQuerier).queryKept(ctx, c.text, args)
	}
	return s.QueryContext(ctx, args...)
}

func (c *chunked) exec(ctx context.Context, n int, args []any) error {
	if n != c.full {
		_, err := c.q.ExecContext(ctx, c.sql(n), args...)
		return err
	}
	s, err := c.prepared(ctx)
	if err != nil {
		return err
	}
	if s == nil {
		return c.q.(keptQuerier).execKept(ctx, c.text, args)
	}
	_, err = s.ExecContext(ctx, args...)
	return err
}

func (c *chunked) close() {
	if c.stmt != nil {
		c.stmt.Close()
	}
}

// placeholders is n question marks separated by commas.
func placeholders(n int) string { return `?` + strings.Repeat(`, ?`, n-1) }

// Contribute's statement sizes: the known-id and known-fingerprint
// lookups take knownChunk values each, the insert creditChunk rows; an
// envelope of 1,000 objects is two and eight full chunks.
const (
	knownChunk  = 500
	creditChunk = 125
	creditCols  = 11 // values of one credit row in the insert
)

func (s credits) Contribute(ctx context.Context, agreementID, partyID string, items []store.Contribution, at time.Time) ([]store.Credited, error) {
	out := make([]store.Credited, len(items))
	err := atomic(ctx, handle(s), func(h handle) error {
		ag, pa, err := creditNames(ctx, h, agreementID, partyID)
		if err != nil {
			return err
		}
		var released, ord int64
		var handed bool // plain handovers released content under the agreement
		if err := h.w.QueryRowContext(ctx, `SELECT coalesce((SELECT up_to FROM agreement_released WHERE agreement_id = ? AND reader = ?), 0),
			coalesce((SELECT max(ord) FROM agreement_credits WHERE ag = ? AND pa = ?), 0),
			EXISTS (SELECT 1 FROM agreement_handed WHERE agreement_id = ?)`, agreementID, partyID, ag, pa, agreementID).Scan(&released, &ord, &handed); err != nil {
			return mapErr(err)
		}
		first := ord
		// What the party knows already: its own contributions, and the
		// counterpart's within what was released to it, by id; the same by
		// fingerprint, and what plain handovers released.
		// Credits are found by the ids' compact keys (stix_ids, migration
		// 26) and keyed by ordinal (migration 34), so a new credit appends
		// to both b-trees.
		known := map[string]bool{}
		names := make([]string, 0, len(items))
		fps := make([]any, 0, len(items))
		seen := make(map[string]bool, len(items))
		for _, it := range items {
			if !seen[it.ObjectID] {
				seen[it.ObjectID] = true
				names = append(names, it.ObjectID)
			}
			if it.Fingerprint != nil {
				fps = append(fps, fp64(it.Fingerprint))
			}
		}
		keys, _, err := stixKeys(ctx, h.w, names, true)
		if err != nil {
			return err
		}
		// An id whose key this turn created, and that no Contribute of
		// the turn has seen, is named by no credit row: it is not looked
		// up (keyMemo.uncredited). A second sight of it in this call is
		// caught by known below, in a later call by the lookup.
		memo := memoOf(h.w)
		byKey := make(map[int64]string, len(keys))
		ids := make([]any, 0, len(keys))
		for id, k := range keys {
			if memo.takeUncredited(id) {
				continue
			}
			byKey[k] = id
			ids = append(ids, k)
		}
		knownFP := map[int64]bool{}
		collect := func(c *chunked, n int, args []any, add func(*sql.Rows) error) error {
			rows, err := c.query(ctx, n, args)
			if err != nil {
				return mapErr(err)
			}
			defer rows.Close()
			for rows.Next() {
				if err := add(rows); err != nil {
					return mapErr(err)
				}
			}
			return mapErr(rows.Err())
		}
		byID := &chunked{q: h.w, full: knownChunk, sql: func(n int) string {
			// Planned on its own, "pa = ? OR ord <= ?" can lead SQLite
			// to the table's key (ag, pa, ord), a walk of every credit.
			return `SELECT key FROM agreement_credits INDEXED BY agreement_credits_key
				WHERE ag = ? AND key IN (` + placeholders(n) + `) AND (pa = ? OR ord <= ?)`
		}}
		defer byID.close()
		for len(ids) > 0 {
			chunk := ids[:min(len(ids), knownChunk)]
			ids = ids[len(chunk):]
			args := append(append([]any{ag}, chunk...), pa, released)
			if err := collect(byID, len(chunk), args, func(r *sql.Rows) error {
				var k int64
				err := r.Scan(&k)
				known[byKey[k]] = true
				return err
			}); err != nil {
				return err
			}
		}
		// The writer's index of the contents the party knows by credit
		// (fpfilter.go) answers for every fingerprint; the content plain
		// handovers released is looked up in agreement_handed.
		var ff *fpFilter
		if len(fps) > 0 {
			if ff, err = idFilterOf(h.w).fingerprints(ctx, h.w, ag, pa, released); err != nil {
				return err
			}
			if ff == nil { // no writer's filter: this call's own
				if ff, err = readFingerprints(ctx, h.w, ag, pa, released); err != nil {
					return err
				}
			}
			rest := fps[:0]
			for _, v := range fps {
				if ff.has(uint64(v.(int64))) {
					knownFP[v.(int64)] = true
				} else if handed {
					rest = append(rest, v)
				}
			}
			fps = rest
		}
		idFilterOf(h.w).writes(ag) // before anything of this call is written
		fpLookupsForTest.Add(int64(len(fps)))
		byFP := &chunked{q: h.w, full: knownChunk, sql: handedFPs}
		defer byFP.close()
		for len(fps) > 0 {
			chunk := fps[:min(len(fps), knownChunk)]
			fps = fps[len(chunk):]
			args := append([]any{agreementID}, chunk...)
			if err := collect(byFP, len(chunk), args, func(r *sql.Rows) error {
				var fp int64
				err := r.Scan(&fp)
				knownFP[fp] = true
				return err
			}); err != nil {
				return err
			}
		}
		// New credits go in multi-row INSERTs: a statement per row costs
		// more in the driver than the insert itself.
		insert := &chunked{q: h.w, full: creditChunk, sql: func(n int) string {
			return `INSERT INTO agreement_credits(ag, pa, ord, key, object_id, weight, added_at, fingerprint,
				mark_type, mark_tlp, mark_version) VALUES ` +
				strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), `, n), `, `)
		}}
		defer insert.close()
		var added float64
		var rows []any
		flush := func() error {
			if len(rows) == 0 {
				return nil
			}
			err := insert.exec(ctx, len(rows)/creditCols, rows)
			rows = rows[:0]
			return mapErr(err)
		}
		for i, it := range items {
			if known[it.ObjectID] {
				continue
			}
			var fp any // NULL: no fingerprint
			if it.Fingerprint != nil {
				k := fp64(it.Fingerprint)
				if knownFP[k] {
					out[i].SameContent = true
					continue
				}
				knownFP[k], fp = true, k
				idFilterOf(h.w).entered(ff, fpKey{ag, pa}, uint64(k))
			}
			known[it.ObjectID] = true
			ord++
			// The credit's mark (its type and TLP level for the joint
			// report) goes in its row; none without a type, as
			// store.CreditMarks decides.
			var mt, ml, mv any
			if it.Type != "" {
				mt, ml, mv = it.Type, it.TLP, micros(it.Version)
			}
			rows = append(rows, ag, pa, ord, keys[it.ObjectID], it.ObjectID, it.Weight, micros(at), fp, mt, ml, mv)
			out[i].Ord = ord
			added += it.Weight
			if len(rows) == creditCols*creditChunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		if ff != nil && ord > first {
			idFilterOf(h.w).move(ff, fpKey{ag, pa}, pa, ord)
		}
		if ord > first {
			// This call's credits, for a rolling window's balance.
			if _, err := h.w.ExecContext(ctx, `INSERT INTO credit_batches(ag, pa, added_at, first_ord, last_ord) VALUES (?, ?, ?, ?, ?)`,
				ag, pa, micros(at), first+1, ord); err != nil {
				return mapErr(err)
			}
		}
		if _, err := h.w.ExecContext(ctx, `INSERT INTO agreement_totals(agreement_id, party_id, contributed, credits) VALUES (?, ?, ?, ?)
			ON CONFLICT(agreement_id, party_id) DO UPDATE SET contributed = excluded.contributed, credits = credits + ?`,
			agreementID, partyID, ord, added, added); err != nil {
			return mapErr(err)
		}
		// New credits' marks went in their rows: only the tallies are
		// left, added once for the call.
		delta := store.CreditDelta(items, out)
		return writeMarks(ctx, h, agreementID, partyID, nil, delta)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s credits) Handed(ctx context.Context, agreementID string, fingerprints [][]byte) error {
	for len(fingerprints) > 0 {
		chunk := fingerprints[:min(len(fingerprints), 400)]
		fingerprints = fingerprints[len(chunk):]
		args := make([]any, 0, 2*len(chunk))
		for _, fp := range chunk {
			args = append(args, agreementID, fp64(fp))
		}
		if _, err := s.w.ExecContext(ctx, `INSERT INTO agreement_handed(agreement_id, fingerprint) VALUES `+
			strings.TrimSuffix(strings.Repeat(`(?, ?), `, len(chunk)), `, `)+` ON CONFLICT DO NOTHING`, args...); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

func (s credits) Balance(ctx context.Context, agreementID, partyID string, since time.Time) (store.Balance, error) {
	// One statement, so one snapshot: read apart, a commit between the
	// totals and the released bound could show more released than the
	// credits read beside it allow. A rolling window sums its credits by
	// the batches they were credited in (credit_batches, migration 36):
	// each batch's ordinals are a range of the table's key.
	var b store.Balance
	window := int64(0)
	if !since.IsZero() {
		window = micros(since)
	}
	err := s.r.QueryRowContext(ctx, `SELECT
			coalesce((SELECT contributed FROM agreement_totals WHERE agreement_id = ?1 AND party_id = ?2), 0),
			CASE WHEN ?3 = 0
				THEN coalesce((SELECT credits - contested FROM agreement_totals WHERE agreement_id = ?1 AND party_id = ?2), 0)
				ELSE coalesce((SELECT sum(c.weight) FROM credit_batches b
					JOIN agreement_credits c ON c.ag = b.ag AND c.pa = b.pa AND c.ord >= b.first_ord AND c.ord <= b.last_ord
					WHERE b.ag = (SELECT n FROM credit_names WHERE name = ?1) AND b.pa = (SELECT n FROM credit_names WHERE name = ?2)
					AND b.added_at >= ?3 AND c.contested = 0), 0) END,
			CASE WHEN ?3 = 0
				THEN coalesce((SELECT contested FROM agreement_totals WHERE agreement_id = ?1 AND party_id = ?2), 0)
				ELSE coalesce((SELECT sum(c.weight) FROM credit_batches b
					JOIN agreement_credits c ON c.ag = b.ag AND c.pa = b.pa AND c.ord >= b.first_ord AND c.ord <= b.last_ord
					WHERE b.ag = (SELECT n FROM credit_names WHERE name = ?1) AND b.pa = (SELECT n FROM credit_names WHERE name = ?2)
					AND b.added_at >= ?3 AND c.contested <> 0), 0) END,
			coalesce((SELECT up_to FROM agreement_released WHERE agreement_id = ?1 AND reader = ?2), 0)`,
		agreementID, partyID, window).Scan(&b.Contributed, &b.Credits, &b.Contested, &b.Released)
	if err != nil {
		return store.Balance{}, fmt.Errorf("agreement %s balance: %w", agreementID, mapErr(err))
	}
	return b, nil
}

func (s credits) Released(ctx context.Context, agreementID, reader string) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT up_to FROM agreement_released WHERE agreement_id = ? AND reader = ?`, agreementID, reader).Scan(&n)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return n, mapErr(err)
}

func (s credits) SetReleased(ctx context.Context, agreementID, reader string, upTo int64) error {
	// The writer's sets of known contents (fpfilter.go) take back what
	// they read within this release if the transaction does not commit.
	if t := idFilterOf(s.w); t != nil {
		var ag int64
		err := s.w.QueryRowContext(ctx, `SELECT n FROM credit_names WHERE name = ?`, agreementID).Scan(&ag)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return mapErr(err)
		}
		if err == nil {
			t.writes(ag)
		}
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO agreement_released(agreement_id, reader, up_to) VALUES (?, ?, ?)
		ON CONFLICT(agreement_id, reader) DO UPDATE SET up_to = max(up_to, excluded.up_to)`, agreementID, reader, upTo)
	return mapErr(err)
}

func (s credits) Bound(ctx context.Context, agreementID, reader, contributor string) (store.ReleaseBound, error) {
	b := store.ReleaseBound{Agreement: agreementID, Contributor: contributor, Reach: &store.Position{}}
	var added int64
	err := s.r.QueryRowContext(ctx, `SELECT up_to, reach_added, reach_seq FROM agreement_released WHERE agreement_id = ? AND reader = ?`,
		agreementID, reader).Scan(&b.UpTo, &added, &b.Reach.Seq)
	if err == sql.ErrNoRows {
		return b, nil
	}
	if err != nil {
		return store.ReleaseBound{}, fmt.Errorf("agreement %s release bound: %w", agreementID, mapErr(err))
	}
	if added != 0 || b.Reach.Seq != 0 {
		b.Reach.DateAdded = fromMicros(added)
	}
	return b, nil
}

// reachChunk bounds the ids of one Reach statement.
const reachChunk = 500

func (s credits) Reach(ctx context.Context, agreementID, reader, contributor string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	upTo, added, seq, err := s.reach(ctx, agreementID, reader)
	if err != nil || upTo == 0 {
		return err // nothing released, nothing to reach
	}
	raised := false
	for len(ids) > 0 {
		n := min(len(ids), reachChunk)
		args := keysOfIDsArgs([]any{agreementID, contributor, upTo, agreementID, contributor}, ids[:n])
		ids = ids[n:]
		var a, q int64
		// Objects are found by their id's key (stixids.go);
		// "+c.ord" keeps the planner on the credits' key index, one
		// lookup per id, rather than a walk of the released prefix.
		err := s.w.QueryRowContext(ctx, `SELECT o.date_added, o.seq FROM stix_ids k
			JOIN agreement_credits c ON c.ag = `+creditName+` AND c.pa = `+creditName+` AND c.key = k.key AND +c.ord <= ?
			JOIN objects o ON o.key = k.key AND o.coll IN (SELECT pk FROM collections WHERE agreement = ? AND contributor = ?)
			WHERE k.key IN (`+keysOfIDs(n)+`)
			ORDER BY o.date_added DESC, o.seq DESC LIMIT 1`, args...).Scan(&a, &q)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return fmt.Errorf("agreement %s reach: %w", agreementID, mapErr(err))
		}
		if a > added || (a == added && q > seq) {
			added, seq, raised = a, q, true
		}
	}
	if !raised {
		return nil
	}
	return s.setReach(ctx, agreementID, reader, added, seq)
}

func (s credits) ReachRange(ctx context.Context, agreementID, reader, contributor string, from, to int64) error {
	upTo, added, seq, err := s.reach(ctx, agreementID, reader)
	if err != nil || upTo == 0 {
		return err // nothing released, nothing to reach
	}
	to = min(to, upTo)
	if from > to {
		return nil
	}
	var a, q int64
	// The credits by ordinal, each object by its compact key: both walks
	// go in the order the rows were written, unlike Reach's lookups by id.
	err = s.w.QueryRowContext(ctx, `SELECT o.date_added, o.seq FROM agreement_credits c
		JOIN objects o ON o.coll IN (SELECT pk FROM collections WHERE agreement = ?1 AND contributor = ?2) AND o.key = c.key
		WHERE c.ag = (SELECT n FROM credit_names WHERE name = ?1) AND c.pa = (SELECT n FROM credit_names WHERE name = ?2)
		AND c.ord >= ?3 AND c.ord <= ?4
		ORDER BY o.date_added DESC, o.seq DESC LIMIT 1`, agreementID, contributor, from, to).Scan(&a, &q)
	if err == sql.ErrNoRows {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agreement %s reach: %w", agreementID, mapErr(err))
	}
	if a < added || (a == added && q <= seq) {
		return nil
	}
	return s.setReach(ctx, agreementID, reader, a, q)
}

// reach reads what is released to reader and the reach recorded for it;
// upTo is 0 when nothing is.
func (s credits) reach(ctx context.Context, agreementID, reader string) (upTo, added, seq int64, err error) {
	err = s.w.QueryRowContext(ctx, `SELECT up_to, reach_added, reach_seq FROM agreement_released WHERE agreement_id = ? AND reader = ?`,
		agreementID, reader).Scan(&upTo, &added, &seq)
	if err == sql.ErrNoRows {
		return 0, 0, 0, nil
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("agreement %s reach: %w", agreementID, mapErr(err))
	}
	return upTo, added, seq, nil
}

// setReach records the reach of what is released to reader.
func (s credits) setReach(ctx context.Context, agreementID, reader string, added, seq int64) error {
	_, err := s.w.ExecContext(ctx, `UPDATE agreement_released SET reach_added = ?, reach_seq = ? WHERE agreement_id = ? AND reader = ?`,
		added, seq, agreementID, reader)
	return mapErr(err)
}

func (s credits) Range(ctx context.Context, agreementID, partyID string, from, to int64) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT object_id FROM agreement_credits
		WHERE ag = `+creditName+` AND pa = `+creditName+` AND ord >= ? AND ord <= ? ORDER BY ord`, agreementID, partyID, from, to)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, id)
	}
	return out, mapErr(rows.Err())
}

// creditName is the integer credit rows hold for an agreement or party
// id (credit_names, migration 34): NULL for a name no credit has, which
// matches no row.
const creditName = `(SELECT n FROM credit_names WHERE name = ?)`

// creditNames returns the integers of an agreement and a party in credit
// rows, giving them theirs the first time.
func creditNames(ctx context.Context, h handle, agreementID, partyID string) (ag, pa int64, err error) {
	if _, err := h.w.ExecContext(ctx, `INSERT INTO credit_names(name) VALUES (?), (?) ON CONFLICT DO NOTHING`, agreementID, partyID); err != nil {
		return 0, 0, mapErr(err)
	}
	err = h.w.QueryRowContext(ctx, `SELECT (SELECT n FROM credit_names WHERE name = ?), (SELECT n FROM credit_names WHERE name = ?)`,
		agreementID, partyID).Scan(&ag, &pa)
	return ag, pa, mapErr(err)
}

// handedFPs is a query for which of n fingerprints plain handovers under
// an agreement released: its arguments are the agreement's id and the n
// fingerprints.
func handedFPs(n int) string {
	return `SELECT fingerprint FROM agreement_handed WHERE agreement_id = ? AND fingerprint IN (` + placeholders(n) + `)`
}

// fp64 is the key SQLite stores for a content fingerprint: its first 64
// bits. An index of 8-byte integers keeps the b-tree a fraction of the
// size of one of 32-byte blobs, and random inserts into it touch fewer
// pages. Two different contents share a key with probability 2^-64 per
// pair; finding a second content for a given key needs 2^64 tries.
func fp64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }

func (s credits) Credit(ctx context.Context, agreementID, partyID, objectID string) (store.Credit, error) {
	c := store.Credit{ObjectID: objectID, PartyID: partyID}
	var at, contested int64
	err := s.r.QueryRowContext(ctx, `SELECT ord, weight, added_at, contested FROM agreement_credits WHERE ag = `+creditName+` AND key = `+keyOfID+` AND pa = `+creditName+``,
		creditKeyArgs(agreementID, objectID, partyID)...).Scan(&c.Ord, &c.Weight, &at, &contested)
	if err != nil {
		return store.Credit{}, fmt.Errorf("credit for %s under %s: %w", objectID, agreementID, mapErr(err))
	}
	c.AddedAt, c.Contested = fromMicros(at), contested != 0
	return c, nil
}

func (s credits) Contest(ctx context.Context, c store.Contest) error {
	return atomic(ctx, handle(s), func(h handle) error {
		res, err := h.w.ExecContext(ctx, `UPDATE agreement_credits SET contested = 1 WHERE ag = `+creditName+` AND key = `+keyOfID+` AND pa = `+creditName+` AND contested = 0`,
			creditKeyArgs(c.AgreementID, c.ObjectID, c.Contributor)...)
		if err != nil {
			return mapErr(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var one int
			if err := h.w.QueryRowContext(ctx, `SELECT 1 FROM agreement_credits WHERE ag = `+creditName+` AND key = `+keyOfID+` AND pa = `+creditName+``,
				creditKeyArgs(c.AgreementID, c.ObjectID, c.Contributor)...).Scan(&one); err != nil {
				return fmt.Errorf("credit for %s under %s: %w", c.ObjectID, c.AgreementID, mapErr(err))
			}
			return fmt.Errorf("credit for %s under %s is contested already: %w", c.ObjectID, c.AgreementID, store.ErrConflict)
		}
		if _, err := h.w.ExecContext(ctx, `INSERT INTO agreement_contests(id, agreement_id, contester, contributor, object_id, weight, reason, statement, filed_at, ledger_index)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, c.AgreementID, c.Contester, c.Contributor, c.ObjectID, c.Weight, c.Reason, c.Statement, micros(c.FiledAt), c.LedgerIndex); err != nil {
			return mapErr(err)
		}
		_, err = h.w.ExecContext(ctx, `UPDATE agreement_totals SET contested = contested + ? WHERE agreement_id = ? AND party_id = ?`, c.Weight, c.AgreementID, c.Contributor)
		return mapErr(err)
	})
}

const contestCols = `id, agreement_id, contester, contributor, object_id, weight, reason, statement, filed_at, ledger_index, withdrawn_at, withdrawal, withdraw_index`

func scanContest(sc interface{ Scan(...any) error }) (store.Contest, error) {
	var c store.Contest
	var filed, withdrawn int64
	if err := sc.Scan(&c.ID, &c.AgreementID, &c.Contester, &c.Contributor, &c.ObjectID, &c.Weight, &c.Reason, &c.Statement,
		&filed, &c.LedgerIndex, &withdrawn, &c.Withdrawal, &c.WithdrawIndex); err != nil {
		return store.Contest{}, mapErr(err)
	}
	c.FiledAt, c.WithdrawnAt = fromMicros(filed), fromMicros(withdrawn)
	return c, nil
}

// withdraw marks contest id of agreementID withdrawn, refusing one withdrawn
// already, and returns it withdrawn; the caller settles credits.
func withdraw(ctx context.Context, h handle, agreementID, id string, at time.Time, withdrawal []byte, ledgerIndex int64) (store.Contest, error) {
	c, err := scanContest(h.w.QueryRowContext(ctx, `SELECT `+contestCols+` FROM agreement_contests WHERE id = ? AND agreement_id = ?`, id, agreementID))
	if err != nil {
		return store.Contest{}, fmt.Errorf("contest %s: %w", id, err)
	}
	if !c.WithdrawnAt.IsZero() {
		return store.Contest{}, fmt.Errorf("contest %s was withdrawn already: %w", id, store.ErrConflict)
	}
	if _, err := h.w.ExecContext(ctx, `UPDATE agreement_contests SET withdrawn_at = ?, withdrawal = ?, withdraw_index = ? WHERE id = ?`,
		micros(at), withdrawal, ledgerIndex, id); err != nil {
		return store.Contest{}, mapErr(err)
	}
	c.WithdrawnAt, c.Withdrawal, c.WithdrawIndex = fromMicros(micros(at)), withdrawal, ledgerIndex
	return c, nil
}

func (s credits) WithdrawContest(ctx context.Context, agreementID, id string, at time.Time, withdrawal []byte, ledgerIndex int64) (store.Contest, error) {
	var out store.Contest
	err := atomic(ctx, handle(s), func(h handle) error {
		c, err := withdraw(ctx, h, agreementID, id, at, withdrawal, ledgerIndex)
		if err != nil {
			return err
		}
		if _, err := h.w.ExecContext(ctx, `UPDATE agreement_credits SET contested = 0 WHERE ag = `+creditName+` AND key = `+keyOfID+` AND pa = `+creditName+``,
			creditKeyArgs(agreementID, c.ObjectID, c.Contributor)...); err != nil {
			return mapErr(err)
		}
		if _, err := h.w.ExecContext(ctx, `UPDATE agreement_totals SET contested = contested - ? WHERE agreement_id = ? AND party_id = ?`,
			c.Weight, agreementID, c.Contributor); err != nil {
			return mapErr(err)
		}
		out = c
		return nil
	})
	return out, err
}

func (s credits) MirrorContest(ctx context.Context, c store.Contest) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO agreement_contests(id, agreement_id, contester, contributor, object_id, weight, reason, statement, filed_at, ledger_index)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, c.AgreementID, c.Contester, c.Contributor, c.ObjectID, c.Weight, c.Reason, c.Statement, micros(c.FiledAt), c.LedgerIndex)
	return mapErr(err)
}

func (s credits) MirrorWithdrawal(ctx context.Context, agreementID, id string, at time.Time, withdrawal []byte, ledgerIndex int64) (store.Contest, error) {
	var out store.Contest
	err := atomic(ctx, handle(s), func(h handle) error {
		c, err := withdraw(ctx, h, agreementID, id, at, withdrawal, ledgerIndex)
		if err != nil {
			return err
		}
		out = c
		return nil
	})
	return out, err
}

func (s credits) Contests(ctx context.Context, agreementID string) ([]store.Contest, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+contestCols+` FROM agreement_contests WHERE agreement_id = ? ORDER BY filed_at, id`, agreementID)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.Contest
	for rows.Next() {
		c, err := scanContest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}
