package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/parley-cti/parley/internal/store"
)

type collections handle

func (s collections) Create(ctx context.Context, c store.Collection) error {
	return atomic(ctx, handle(s), func(h handle) error { return collections(h).create(ctx, c) })
}

func (s collections) create(ctx context.Context, c store.Collection) error {
	res, err := s.w.ExecContext(ctx, `INSERT INTO collections(id, api_root, title, description, created_at, agreement, contributor, kind) VALUES(?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.APIRoot, c.Title, c.Description, micros(c.CreatedAt), c.Agreement, c.Contributor, c.Kind)
	if err != nil {
		return mapErr(err)
	}
	pk, err := res.LastInsertId()
	if err != nil {
		return mapErr(err)
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
	for p, a := range acc {
		if _, err := s.w.ExecContext(ctx, `INSERT INTO collection_access(collection_pk, party_id, can_read, can_write) VALUES(?, ?, ?, ?)`,
			pk, p, a[0], a[1]); err != nil {
			return fmt.Errorf("collection access for %s: %w", p, mapErr(err))
		}
	}
	return nil
}

// accessSelect aggregates the access lists into two JSON arrays per
// collection so one query returns whole collections.
const collectionSelect = `
SELECT c.id, c.api_root, c.title, c.description, c.created_at, c.agreement, c.contributor, c.kind,
	(SELECT json_group_array(party_id) FROM (SELECT party_id FROM collection_access WHERE collection_pk = c.pk AND can_read ORDER BY party_id)),
	(SELECT json_group_array(party_id) FROM (SELECT party_id FROM collection_access WHERE collection_pk = c.pk AND can_write ORDER BY party_id))
FROM collections c`

func scanCollection(sc interface{ Scan(...any) error }) (store.Collection, error) {
	var c store.Collection
	var created int64
	var readers, writers string
	if err := sc.Scan(&c.ID, &c.APIRoot, &c.Title, &c.Description, &created, &c.Agreement, &c.Contributor, &c.Kind, &readers, &writers); err != nil {
		return store.Collection{}, mapErr(err)
	}
	c.CreatedAt = fromMicros(created)
	if err := json.Unmarshal([]byte(readers), &c.Readers); err != nil {
		return store.Collection{}, fmt.Errorf("collection %s readers: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(writers), &c.Writers); err != nil {
		return store.Collection{}, fmt.Errorf("collection %s writers: %w", c.ID, err)
	}
	return c, nil
}

func (s collections) Get(ctx context.Context, apiRoot, id string) (store.Collection, error) {
	c, err := scanCollection(s.r.QueryRowContext(ctx, collectionSelect+` WHERE c.id = ? AND c.api_root = ?`, id, apiRoot))
	if err != nil {
		return store.Collection{}, fmt.Errorf("collection %s: %w", id, err)
	}
	return c, nil
}

func (s collections) List(ctx context.Context, apiRoot string) ([]store.Collection, error) {
	rows, err := s.r.QueryContext(ctx, collectionSelect+` WHERE c.api_root = ? ORDER BY c.pk`, apiRoot)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []store.Collection
	for rows.Next() {
		c, err := scanCollection(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

func (s collections) APIRoots(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT api_root FROM collections ORDER BY api_root`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, r)
	}
	return out, mapErr(rows.Err())
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
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO statuses(id, api_root, party_id, status, request_ts, total, details) VALUES(?, ?, ?, ?, ?, ?, ?)`,
		st.ID, st.APIRoot, st.PartyID, st.Status, micros(st.RequestTimestamp), st.TotalCount, details)
	return mapErr(err)
}

func (s statuses) Get(ctx context.Context, apiRoot, id string) (store.Status, error) {
	var st store.Status
	var ts int64
	var details []byte
	err := s.r.QueryRowContext(ctx, `SELECT id, api_root, party_id, status, request_ts, total, details FROM statuses WHERE id = ? AND api_root = ?`, id, apiRoot).
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
