package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/store"
)

type collections handle

func (s collections) Create(ctx context.Context, c store.Collection) error {
	return atomic(ctx, handle(s), func(h handle) error { return collections(h).create(ctx, c) })
}

func (s collections) create(ctx context.Context, c store.Collection) error {
	var pk int64
	err := s.q.QueryRow(ctx, `INSERT INTO collections(id, api_root, title, description, created_at, agreement, contributor, kind) VALUES($1, $2, $3, $4, $5, $6, $7, $8) RETURNING pk`,
		c.ID, c.APIRoot, c.Title, c.Description, micros(c.CreatedAt), c.Agreement, c.Contributor, c.Kind).Scan(&pk)
	if err != nil {
		return fmt.Errorf("collection %s: %w", c.ID, mapErr(err))
	}
	acc := map[string][2]bool{}
	for _, p := range c.Readers {
		a := acc[p]
		a[0] = true
		acc[p] = a
	}
	for _, p := range c.Writers {
		a := acc[p]
		a[1] = true
		acc[p] = a
	}
	if len(acc) == 0 {
		return nil
	}
	var party []string
	var read, write []bool
	for _, p := range slices.Sorted(maps.Keys(acc)) {
		party = append(party, p)
		read = append(read, acc[p][0])
		write = append(write, acc[p][1])
	}
	_, err = s.q.Exec(ctx, `INSERT INTO collection_access(collection_pk, party_id, can_read, can_write)
		SELECT $1, p, r, w FROM unnest($2::text[], $3::boolean[], $4::boolean[]) AS u(p, r, w)`, pk, party, read, write)
	if err != nil {
		return fmt.Errorf("collection %s access lists: %w", c.ID, mapErr(err))
	}
	return nil
}

// collectionSelect gathers the access lists into two arrays per collection
// so one query returns whole collections.
const collectionSelect = `
SELECT c.id, c.api_root, c.title, c.description, c.created_at, c.agreement, c.contributor, c.kind,
	ARRAY(SELECT party_id FROM collection_access WHERE collection_pk = c.pk AND can_read ORDER BY party_id COLLATE "C"),
	ARRAY(SELECT party_id FROM collection_access WHERE collection_pk = c.pk AND can_write ORDER BY party_id COLLATE "C")
FROM collections c`

func scanCollection(sc pgx.Row) (store.Collection, error) {
	var c store.Collection
	var created int64
	if err := sc.Scan(&c.ID, &c.APIRoot, &c.Title, &c.Description, &created, &c.Agreement, &c.Contributor, &c.Kind, &c.Readers, &c.Writers); err != nil {
		return store.Collection{}, mapErr(err)
	}
	c.CreatedAt = fromMicros(created)
	return c, nil
}

func (s collections) Get(ctx context.Context, apiRoot, id string) (store.Collection, error) {
	c, err := scanCollection(s.q.QueryRow(ctx, collectionSelect+` WHERE c.id = $1 AND c.api_root = $2`, id, apiRoot))
	if err != nil {
		return store.Collection{}, fmt.Errorf("collection %s: %w", id, err)
	}
	return c, nil
}

func (s collections) List(ctx context.Context, apiRoot string) ([]store.Collection, error) {
	rows, err := s.q.Query(ctx, collectionSelect+` WHERE c.api_root = $1 ORDER BY c.pk`, apiRoot)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Collection, error) { return scanCollection(row) })
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

func (s collections) APIRoots(ctx context.Context) ([]string, error) {
	rows, err := s.q.Query(ctx, `SELECT DISTINCT api_root COLLATE "C" AS r FROM collections ORDER BY r`)
	if err != nil {
		return nil, mapErr(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

type statuses handle

type statusDetails struct {
	Successes []store.StatusDetail `json:"successes"`
	Failures  []store.StatusDetail `json:"failures"`
	Pendings  []store.StatusDetail `json:"pendings"`
}

func (s statuses) Create(ctx context.Context, st store.Status) error {
	details, err := json.Marshal(statusDetails{st.Successes, st.Failures, st.Pendings})
	if err != nil {
		return fmt.Errorf("status %s: %w", st.ID, err)
	}
	_, err = s.q.Exec(ctx, `INSERT INTO statuses(id, api_root, party_id, status, request_ts, total, details) VALUES($1, $2, $3, $4, $5, $6, $7)`,
		st.ID, st.APIRoot, st.PartyID, st.Status, micros(st.RequestTimestamp), st.TotalCount, details)
	if err != nil {
		return fmt.Errorf("status %s: %w", st.ID, mapErr(err))
	}
	return nil
}

func (s statuses) Get(ctx context.Context, apiRoot, id string) (store.Status, error) {
	var st store.Status
	var ts int64
	var details []byte
	err := s.q.QueryRow(ctx, `SELECT id, api_root, party_id, status, request_ts, total, details FROM statuses WHERE id = $1 AND api_root = $2`, id, apiRoot).
		Scan(&st.ID, &st.APIRoot, &st.PartyID, &st.Status, &ts, &st.TotalCount, &details)
	if err != nil {
		return store.Status{}, fmt.Errorf("status %s: %w", id, mapErr(err))
	}
	st.RequestTimestamp = fromMicros(ts)
	var d statusDetails
	if err := json.Unmarshal(details, &d); err != nil {
		return store.Status{}, fmt.Errorf("status %s details: %w", id, err)
	}
	st.Successes, st.Failures, st.Pendings = d.Successes, d.Failures, d.Pendings
	return st, nil
}
