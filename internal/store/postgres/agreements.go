package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parley-cti/parley/internal/store"
)

func (h handle) Keys() store.Keys             { return keys(h) }
func (h handle) Agreements() store.Agreements { return agreements(h) }
func (h handle) Credits() store.Credits       { return credits(h) }

type keys handle

func (s keys) Add(ctx context.Context, k store.PartyKey) error {
	_, err := s.q.Exec(ctx, `INSERT INTO party_keys(key_id, party_id, public, valid_from, valid_until, rotation) VALUES ($1, $2, $3, $4, $5, $6)`,
		k.KeyID, k.PartyID, k.Public, micros(k.ValidFrom), micros(k.ValidUntil), k.Rotation)
	if err != nil {
		return fmt.Errorf("key %s: %w", k.KeyID, mapErr(err))
	}
	return nil
}

func (s keys) Retire(ctx context.Context, keyID string, at time.Time) error {
	tag, err := s.q.Exec(ctx, `UPDATE party_keys SET valid_until = $1 WHERE key_id = $2 AND valid_until = 0`, micros(at), keyID)
	if err != nil {
		return fmt.Errorf("key %s: %w", keyID, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("current key %s: %w", keyID, store.ErrNotFound)
	}
	return nil
}

const keyCols = `key_id, party_id, public, valid_from, valid_until, rotation`

func scanKey(sc pgx.Row) (store.PartyKey, error) {
	var k store.PartyKey
	var from, until int64
	if err := sc.Scan(&k.KeyID, &k.PartyID, &k.Public, &from, &until, &k.Rotation); err != nil {
		return store.PartyKey{}, mapErr(err)
	}
	k.ValidFrom, k.ValidUntil = fromMicros(from), fromMicros(until)
	return k, nil
}

func (s keys) Get(ctx context.Context, keyID string) (store.PartyKey, error) {
	k, err := scanKey(s.q.QueryRow(ctx, `SELECT `+keyCols+` FROM party_keys WHERE key_id = $1`, keyID))
	if err != nil {
		return store.PartyKey{}, fmt.Errorf("key %s: %w", keyID, err)
	}
	return k, nil
}

func (s keys) ListByParty(ctx context.Context, partyID string) ([]store.PartyKey, error) {
	rows, err := s.q.Query(ctx, `SELECT `+keyCols+` FROM party_keys WHERE party_id = $1 ORDER BY valid_from, key_id COLLATE "C"`, partyID)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.PartyKey, error) { return scanKey(row) })
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

type agreements handle

func (s agreements) Create(ctx context.Context, a store.AgreementRecord) error {
	_, err := s.q.Exec(ctx, `INSERT INTO agreements(id, party_a, party_b, created_at) VALUES ($1, $2, $3, $4)`,
		a.ID, a.PartyA, a.PartyB, micros(a.CreatedAt))
	if err != nil {
		return fmt.Errorf("agreement %s: %w", a.ID, mapErr(err))
	}
	return nil
}

func scanAgreement(sc pgx.Row) (store.AgreementRecord, error) {
	var a store.AgreementRecord
	var created int64
	if err := sc.Scan(&a.ID, &a.PartyA, &a.PartyB, &created); err != nil {
		return store.AgreementRecord{}, mapErr(err)
	}
	a.CreatedAt = fromMicros(created)
	return a, nil
}

func (s agreements) Get(ctx context.Context, id string) (store.AgreementRecord, error) {
	a, err := scanAgreement(s.q.QueryRow(ctx, `SELECT id, party_a, party_b, created_at FROM agreements WHERE id = $1`, id))
	if err != nil {
		return store.AgreementRecord{}, fmt.Errorf("agreement %s: %w", id, err)
	}
	return a, nil
}

// Lock takes the agreement's lock: an advisory lock on its id, then its
// row FOR UPDATE. Every instance changing the agreement or its accounting
// queues on it until the transaction ends.
//
// A SERIALIZABLE transaction must not wait for it: its snapshot was taken
// before the wait, so it would read the accounting as it was before the
// holder committed, and fail with a serialization failure after waiting
// (with many writers on one agreement, nearly every one did, and queued
// again). So when the agreement is busy, Lock gives up at once with
// errAgreementBusy, and Update runs the function again after waiting for
// the agreement before BEGIN (DB.attempt).
func (s agreements) Lock(ctx context.Context, id string) error {
	switch {
	case s.tx == nil:
		// Outside a transaction the lock would end with the statement;
		// only whether the agreement exists is left to say.
	case s.tx.queued == id:
		// Taken before BEGIN.
	case s.tx.serial && s.tx.queued == "":
		var free bool
		if err := s.q.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(`+agreementKey+`)`, id).Scan(&free); err != nil {
			return fmt.Errorf("agreement %s: %w", id, mapErr(err))
		}
		if !free {
			return &errAgreementBusy{id: id}
		}
	default:
		if _, err := s.q.Exec(ctx, `SELECT pg_advisory_xact_lock(`+agreementKey+`)`, id); err != nil {
			return fmt.Errorf("agreement %s: %w", id, mapErr(err))
		}
	}
	var one int
	if err := s.q.QueryRow(ctx, `SELECT 1 FROM agreements WHERE id = $1 FOR UPDATE`, id).Scan(&one); err != nil {
		return fmt.Errorf("agreement %s: %w", id, mapErr(err))
	}
	return nil
}

// agreementKey is the advisory lock key of agreement $1 in this schema.
const agreementKey = `hashtext('parley.agreement:' || current_schema()), hashtext($1)`

// agreementQueue and agreementQueueRelease take and give back an
// agreement's lock for a whole session, before a transaction begins.
const (
	agreementQueue        = `SELECT pg_advisory_lock(` + agreementKey + `)`
	agreementQueueRelease = `SELECT pg_advisory_unlock(` + agreementKey + `)`
)

// errAgreementBusy stops a SERIALIZABLE attempt that found its agreement
// locked, before it waits; Update runs the function again queued for the
// agreement (see Lock).
type errAgreementBusy struct{ id string }

func (e *errAgreementBusy) Error() string {
	return "postgres: agreement " + e.id + " is busy; the transaction is run again after waiting for it"
}

func (s agreements) ListByParty(ctx context.Context, partyID string) ([]store.AgreementRecord, error) {
	rows, err := s.q.Query(ctx, `SELECT id, party_a, party_b, created_at FROM agreements
		WHERE party_a = $1 OR party_b = $1 ORDER BY created_at DESC, id COLLATE "C"`, partyID)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.AgreementRecord, error) { return scanAgreement(row) })
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

func (s agreements) AddVersion(ctx context.Context, v store.AgreementVersion) error {
	_, err := s.q.Exec(ctx, `INSERT INTO agreement_versions(agreement_id, version, document, hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		v.AgreementID, v.Version, v.Document, v.Hash[:], micros(v.CreatedAt))
	if err != nil {
		return fmt.Errorf("agreement %s version %d: %w", v.AgreementID, v.Version, mapErr(err))
	}
	return nil
}

func (s agreements) Versions(ctx context.Context, id string) ([]store.AgreementVersion, error) {
	rows, err := s.q.Query(ctx, `SELECT agreement_id, version, document, hash, created_at FROM agreement_versions WHERE agreement_id = $1 ORDER BY version`, id)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.AgreementVersion, error) {
		var v store.AgreementVersion
		var hash []byte
		var created int64
		if err := row.Scan(&v.AgreementID, &v.Version, &v.Document, &hash, &created); err != nil {
			return v, err
		}
		if len(hash) != len(v.Hash) {
			return v, fmt.Errorf("agreement %s version %d: stored hash has %d bytes", id, v.Version, len(hash))
		}
		copy(v.Hash[:], hash)
		v.CreatedAt = fromMicros(created)
		return v, nil
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

func (s agreements) AddSignature(ctx context.Context, sg store.AgreementSignature) (int64, error) {
	var seq int64
	err := s.q.QueryRow(ctx, `INSERT INTO agreement_signatures(agreement_id, version, party_id, action, raw, signed_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq`,
		sg.AgreementID, sg.Version, sg.PartyID, sg.Action, sg.Raw, micros(sg.SignedAt)).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("agreement %s signature: %w", sg.AgreementID, mapErr(err))
	}
	return seq, nil
}

func (s agreements) Signatures(ctx context.Context, id string) ([]store.AgreementSignature, error) {
	rows, err := s.q.Query(ctx, `SELECT seq, agreement_id, version, party_id, action, raw, signed_at FROM agreement_signatures WHERE agreement_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.AgreementSignature, error) {
		var sg store.AgreementSignature
		var at int64
		err := row.Scan(&sg.Seq, &sg.AgreementID, &sg.Version, &sg.PartyID, &sg.Action, &sg.Raw, &at)
		sg.SignedAt = fromMicros(at)
		return sg, err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

type credits handle

// Contribute is one statement: the ordinal is computed and the row inserted
// together, and an object the agreement already has inserts nothing. Two
// contributors racing for the same ordinal without holding
// Agreements.Lock would get ErrConflict; the exchange always holds it.
func (s credits) Contribute(ctx context.Context, agreementID, partyID string, items []store.Contribution, at time.Time) ([]store.Credited, error) {
	out := make([]store.Credited, len(items))
	err := atomic(ctx, handle(s), func(h handle) error {
		ids := make([]string, len(items))
		fps := make([]int64, 0, len(items))
		for i, it := range items {
			ids[i] = it.ObjectID
			if it.Fingerprint != nil {
				fps = append(fps, fp64(it.Fingerprint))
			}
		}
		// What the party knows already: its own contributions, and the
		// counterpart's within what was released to it, by id (kind 0)
		// and by fingerprint (kind 1), and what plain handovers released;
		// and its last ordinal. One round trip for both, and one for the
		// two writes below: the caller holds the agreement's lock, which
		// every writer of the agreement waits for.
		b := &pgx.Batch{}
		b.Queue(`WITH r AS (SELECT coalesce((SELECT up_to FROM agreement_released WHERE agreement_id = $1 AND reader = $2), 0) AS up_to)
			SELECT object_id, 0 FROM agreement_credits, r WHERE agreement_id = $1 AND (party_id = $2 OR ord <= r.up_to) AND object_id = ANY($3)
			UNION SELECT '', fingerprint FROM agreement_credits, r WHERE fingerprint = ANY($4) AND agreement_id = $1 AND (party_id = $2 OR ord <= r.up_to)
			UNION SELECT '', fingerprint FROM agreement_handed WHERE agreement_id = $1 AND fingerprint = ANY($4)`, agreementID, partyID, ids, fps)
		b.Queue(`SELECT coalesce(max(ord), 0) FROM agreement_credits WHERE agreement_id = $1 AND party_id = $2`, agreementID, partyID)
		br := h.q.SendBatch(ctx, b)
		known, knownFP, ord, err := readKnown(br)
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("agreement %s credit: %w", agreementID, mapErr(err))
		}
		var newIDs []string
		var ords []int64
		var weights []float64
		var newFPs []*int64 // nil: no fingerprint
		for i, it := range items {
			if known[it.ObjectID] {
				continue
			}
			var fp *int64
			if it.Fingerprint != nil {
				k := fp64(it.Fingerprint)
				if knownFP[k] {
					out[i].SameContent = true
					continue
				}
				knownFP[k], fp = true, &k
			}
			known[it.ObjectID] = true
			ord++
			out[i].Ord = ord
			newIDs, ords, weights, newFPs = append(newIDs, it.ObjectID), append(ords, ord), append(weights, it.Weight), append(newFPs, fp)
		}
		if len(newIDs) == 0 {
			return nil
		}
		var added float64
		for _, w := range weights {
			added += w
		}
		b = &pgx.Batch{}
		b.Queue(`INSERT INTO agreement_credits(agreement_id, object_id, party_id, ord, weight, added_at, fingerprint)
			SELECT $1, u.id, $2, u.ord, u.weight, $6, u.fp FROM unnest($3::text[], $4::bigint[], $5::double precision[], $7::bigint[]) AS u(id, ord, weight, fp)`,
			agreementID, partyID, newIDs, ords, weights, micros(at), newFPs)
		b.Queue(`INSERT INTO agreement_totals(agreement_id, party_id, contributed, credits) VALUES ($1, $2, $3, $4)
			ON CONFLICT (agreement_id, party_id) DO UPDATE SET contributed = excluded.contributed, credits = agreement_totals.credits + excluded.credits`,
			agreementID, partyID, ord, added)
		br = h.q.SendBatch(ctx, b)
		defer br.Close()
		_, err = br.Exec()
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			// Another instance's contribution committed while this
			// transaction waited for the agreement's lock.
			return fmt.Errorf("agreement %s credit: %w: %v", agreementID, errStaleSnapshot, err)
		}
		if err != nil {
			return fmt.Errorf("agreement %s credit: %w", agreementID, mapErr(err))
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("agreement %s totals: %w", agreementID, mapErr(err))
		}
		if err := br.Close(); err != nil {
			return fmt.Errorf("agreement %s totals: %w", agreementID, mapErr(err))
		}
		// New credits have no mark yet: theirs are written without
		// reading any, and the tallies once for the call.
		marks, delta := store.CreditMarks(items, out)
		return writeMarks(ctx, h.q, agreementID, partyID, marks, delta)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readKnown reads Contribute's first batch: the ids (kind 0) and
// fingerprints (kind 1) the party knows, then its last ordinal.
func readKnown(br pgx.BatchResults) (known map[string]bool, knownFP map[int64]bool, ord int64, err error) {
	known, knownFP = map[string]bool{}, map[int64]bool{}
	rows, err := br.Query()
	if err != nil {
		return nil, nil, 0, err
	}
	for rows.Next() {
		var id string
		var fp int64
		if err := rows.Scan(&id, &fp); err != nil {
			rows.Close()
			return nil, nil, 0, err
		}
		if id != "" {
			known[id] = true
		} else {
			knownFP[fp] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, 0, err
	}
	if err := br.QueryRow().Scan(&ord); err != nil {
		return nil, nil, 0, err
	}
	return known, knownFP, ord, nil
}

func (s credits) Handed(ctx context.Context, agreementID string, fingerprints [][]byte) error {
	if len(fingerprints) == 0 {
		return nil
	}
	fps := make([]int64, len(fingerprints))
	for i, fp := range fingerprints {
		fps[i] = fp64(fp)
	}
	_, err := s.q.Exec(ctx, `INSERT INTO agreement_handed(agreement_id, fingerprint) SELECT $1, fp FROM unnest($2::bigint[]) AS u(fp)
		ON CONFLICT DO NOTHING`, agreementID, fps)
	if err != nil {
		return fmt.Errorf("agreement %s handed: %w", agreementID, mapErr(err))
	}
	return nil
}

func (s credits) Balance(ctx context.Context, agreementID, partyID string, since time.Time) (store.Balance, error) {
	var b store.Balance
	// Running totals answer in one row; a rolling window sums its credits
	// over the (agreement, party, added_at) index.
	err := s.q.QueryRow(ctx, `SELECT
			coalesce((SELECT contributed FROM agreement_totals WHERE agreement_id = $1 AND party_id = $2), 0),
			CASE WHEN $3::bigint = 0
				THEN coalesce((SELECT credits - contested FROM agreement_totals WHERE agreement_id = $1 AND party_id = $2), 0)
				ELSE coalesce((SELECT sum(weight) FROM agreement_credits WHERE agreement_id = $1 AND party_id = $2 AND added_at >= $3 AND contested = 0), 0) END,
			CASE WHEN $3::bigint = 0
				THEN coalesce((SELECT contested FROM agreement_totals WHERE agreement_id = $1 AND party_id = $2), 0)
				ELSE coalesce((SELECT sum(weight) FROM agreement_credits WHERE agreement_id = $1 AND party_id = $2 AND added_at >= $3 AND contested <> 0), 0) END,
			coalesce((SELECT up_to FROM agreement_released WHERE agreement_id = $1 AND reader = $2), 0)`,
		agreementID, partyID, micros(since)).Scan(&b.Contributed, &b.Credits, &b.Contested, &b.Released)
	if err != nil {
		return store.Balance{}, fmt.Errorf("agreement %s balance: %w", agreementID, mapErr(err))
	}
	return b, nil
}

func (s credits) Released(ctx context.Context, agreementID, reader string) (int64, error) {
	var n int64
	err := s.q.QueryRow(ctx, `SELECT up_to FROM agreement_released WHERE agreement_id = $1 AND reader = $2`, agreementID, reader).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("agreement %s released: %w", agreementID, mapErr(err))
	}
	return n, nil
}

// SetReleased is an upsert taking the greater value, so a late or repeated
// call can never lower what was released.
func (s credits) SetReleased(ctx context.Context, agreementID, reader string, upTo int64) error {
	_, err := s.q.Exec(ctx, `INSERT INTO agreement_released(agreement_id, reader, up_to) VALUES ($1, $2, $3)
		ON CONFLICT (agreement_id, reader) DO UPDATE SET up_to = greatest(agreement_released.up_to, excluded.up_to)`, agreementID, reader, upTo)
	if err != nil {
		return fmt.Errorf("agreement %s released: %w", agreementID, mapErr(err))
	}
	return nil
}

func (s credits) Bound(ctx context.Context, agreementID, reader, contributor string) (store.ReleaseBound, error) {
	b := store.ReleaseBound{Agreement: agreementID, Contributor: contributor, Reach: &store.Position{}}
	var added int64
	err := s.q.QueryRow(ctx, `SELECT up_to, reach_added, reach_seq FROM agreement_released WHERE agreement_id = $1 AND reader = $2`,
		agreementID, reader).Scan(&b.UpTo, &added, &b.Reach.Seq)
	if errors.Is(err, pgx.ErrNoRows) {
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

func (s credits) Reach(ctx context.Context, agreementID, reader, contributor string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	// One statement: the last stored version of the released among ids,
	// raising the reach only forward.
	_, err := s.q.Exec(ctx, `WITH r AS (SELECT up_to FROM agreement_released WHERE agreement_id = $1 AND reader = $2),
		last AS (SELECT o.date_added, o.seq FROM objects o
			JOIN agreement_credits c ON c.agreement_id = $1 AND c.party_id = $3 AND c.object_id = o.id
			WHERE c.ord <= (SELECT up_to FROM r) AND o.coll IN (SELECT pk FROM collections WHERE agreement = $1 AND contributor = $3) AND o.id = ANY($4::text[])
			ORDER BY o.date_added DESC, o.seq DESC LIMIT 1)
		UPDATE agreement_released SET reach_added = last.date_added, reach_seq = last.seq FROM last
		WHERE agreement_id = $1 AND reader = $2 AND (last.date_added, last.seq) > (reach_added, reach_seq)`,
		agreementID, reader, contributor, ids)
	if err != nil {
		return fmt.Errorf("agreement %s reach: %w", agreementID, mapErr(err))
	}
	return nil
}

func (s credits) ReachRange(ctx context.Context, agreementID, reader, contributor string, from, to int64) error {
	_, err := s.q.Exec(ctx, `WITH r AS (SELECT up_to FROM agreement_released WHERE agreement_id = $1 AND reader = $2),
		last AS (SELECT o.date_added, o.seq FROM agreement_credits c
			JOIN objects o ON o.id = c.object_id AND o.coll IN (SELECT pk FROM collections WHERE agreement = $1 AND contributor = $3)
			WHERE c.agreement_id = $1 AND c.party_id = $3 AND c.ord >= $4 AND c.ord <= least($5, (SELECT up_to FROM r))
			ORDER BY o.date_added DESC, o.seq DESC LIMIT 1)
		UPDATE agreement_released SET reach_added = last.date_added, reach_seq = last.seq FROM last
		WHERE agreement_id = $1 AND reader = $2 AND (last.date_added, last.seq) > (reach_added, reach_seq)`,
		agreementID, reader, contributor, from, to)
	if err != nil {
		return fmt.Errorf("agreement %s reach: %w", agreementID, mapErr(err))
	}
	return nil
}

func (s credits) Range(ctx context.Context, agreementID, partyID string, from, to int64) ([]string, error) {
	rows, err := s.q.Query(ctx, `SELECT object_id FROM agreement_credits
		WHERE agreement_id = $1 AND party_id = $2 AND ord >= $3 AND ord <= $4 ORDER BY ord`, agreementID, partyID, from, to)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

// fp64 is the key stored for a content fingerprint: its first 64 bits, as
// in the SQLite backend (so that storecopy copies the column as it is).
// Two different contents share a key with probability 2^-64 per pair;
// finding a second content for a given key needs 2^64 tries.
func fp64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }

func (s credits) Credit(ctx context.Context, agreementID, partyID, objectID string) (store.Credit, error) {
	c := store.Credit{ObjectID: objectID, PartyID: partyID}
	var at, contested int64
	err := s.q.QueryRow(ctx, `SELECT ord, weight, added_at, contested FROM agreement_credits WHERE agreement_id = $1 AND object_id = $2 AND party_id = $3`,
		agreementID, objectID, partyID).Scan(&c.Ord, &c.Weight, &at, &contested)
	if err != nil {
		return store.Credit{}, fmt.Errorf("credit for %s under %s: %w", objectID, agreementID, mapErr(err))
	}
	c.AddedAt, c.Contested = fromMicros(at), contested != 0
	return c, nil
}

func (s credits) Contest(ctx context.Context, c store.Contest) error {
	return atomic(ctx, handle(s), func(h handle) error {
		tag, err := h.q.Exec(ctx, `UPDATE agreement_credits SET contested = 1 WHERE agreement_id = $1 AND object_id = $2 AND party_id = $3 AND contested = 0`,
			c.AgreementID, c.ObjectID, c.Contributor)
		if err != nil {
			return mapErr(err)
		}
		if tag.RowsAffected() == 0 {
			var one int
			if err := h.q.QueryRow(ctx, `SELECT 1 FROM agreement_credits WHERE agreement_id = $1 AND object_id = $2 AND party_id = $3`,
				c.AgreementID, c.ObjectID, c.Contributor).Scan(&one); err != nil {
				return fmt.Errorf("credit for %s under %s: %w", c.ObjectID, c.AgreementID, mapErr(err))
			}
			return fmt.Errorf("credit for %s under %s is contested already: %w", c.ObjectID, c.AgreementID, store.ErrConflict)
		}
		if _, err := h.q.Exec(ctx, `INSERT INTO agreement_contests(id, agreement_id, contester, contributor, object_id, weight, reason, statement, filed_at, ledger_index)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, c.ID, c.AgreementID, c.Contester, c.Contributor, c.ObjectID, c.Weight, c.Reason, c.Statement, micros(c.FiledAt), c.LedgerIndex); err != nil {
			return mapErr(err)
		}
		_, err = h.q.Exec(ctx, `UPDATE agreement_totals SET contested = contested + $1 WHERE agreement_id = $2 AND party_id = $3`, c.Weight, c.AgreementID, c.Contributor)
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
	c, err := scanContest(h.q.QueryRow(ctx, `SELECT `+contestCols+` FROM agreement_contests WHERE id = $1 AND agreement_id = $2 FOR UPDATE`, id, agreementID))
	if err != nil {
		return store.Contest{}, fmt.Errorf("contest %s: %w", id, err)
	}
	if !c.WithdrawnAt.IsZero() {
		return store.Contest{}, fmt.Errorf("contest %s was withdrawn already: %w", id, store.ErrConflict)
	}
	if _, err := h.q.Exec(ctx, `UPDATE agreement_contests SET withdrawn_at = $1, withdrawal = $2, withdraw_index = $3 WHERE id = $4`,
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
		if _, err := h.q.Exec(ctx, `UPDATE agreement_credits SET contested = 0 WHERE agreement_id = $1 AND object_id = $2 AND party_id = $3`,
			agreementID, c.ObjectID, c.Contributor); err != nil {
			return mapErr(err)
		}
		if _, err := h.q.Exec(ctx, `UPDATE agreement_totals SET contested = contested - $1 WHERE agreement_id = $2 AND party_id = $3`,
			c.Weight, agreementID, c.Contributor); err != nil {
			return mapErr(err)
		}
		out = c
		return nil
	})
	return out, err
}

func (s credits) MirrorContest(ctx context.Context, c store.Contest) error {
	_, err := s.q.Exec(ctx, `INSERT INTO agreement_contests(id, agreement_id, contester, contributor, object_id, weight, reason, statement, filed_at, ledger_index)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, c.ID, c.AgreementID, c.Contester, c.Contributor, c.ObjectID, c.Weight, c.Reason, c.Statement, micros(c.FiledAt), c.LedgerIndex)
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
	rows, err := s.q.Query(ctx, `SELECT `+contestCols+` FROM agreement_contests WHERE agreement_id = $1 ORDER BY filed_at, id`, agreementID)
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
