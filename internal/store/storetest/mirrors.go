package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// testMirrors covers migration 19: mirror definitions with their secret,
// cursor and progress; claims that hand a due mirror to one runner at a
// time; saves that only the current claim may make.
func testMirrors(t *testing.T, st store.Store) {
	a := mustParty(t, st, "alpha")
	b := mustParty(t, st, "beta")
	if err := st.Agreements().Create(ctx, store.AgreementRecord{ID: "agreement--m", PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	m := store.Mirror{ID: "mirror--1", PartyID: a.ID, Agreement: "agreement--m", CreatedAt: t0,
		SourceURL: "https://taxii.example/api1/", SourceCollection: "c1", SourceUser: "u", SourceToken: "secret", PageLimit: 500,
		NextAttempt: t0}
	if err := st.Mirrors().Create(ctx, m); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := st.Mirrors().Create(ctx, m); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Create of an existing id: %v, want ErrConflict", err)
	}
	ghost := m
	ghost.ID, ghost.PartyID = "mirror--ghost", "party--ghost"
	if err := st.Mirrors().Create(ctx, ghost); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Create for an unknown party: %v, want ErrNotFound", err)
	}
	ghost.PartyID, ghost.Agreement = a.ID, "agreement--ghost"
	if err := st.Mirrors().Create(ctx, ghost); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Create under an unknown agreement: %v, want ErrNotFound", err)
	}
	later := m
	later.ID, later.CreatedAt, later.NextAttempt = "mirror--2", t0.Add(time.Second), t0.Add(time.Hour)
	if err := st.Mirrors().Create(ctx, later); err != nil {
		t.Fatal(err)
	}
	got, err := st.Mirrors().Get(ctx, m.ID)
	if err != nil || got != m {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, m)
	}
	if _, err := st.Mirrors().Get(ctx, "mirror--none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of an unknown id: %v", err)
	}
	list, err := st.Mirrors().ListByParty(ctx, a.ID)
	if err != nil || len(list) != 2 || list[0].ID != m.ID || list[1].ID != later.ID {
		t.Fatalf("ListByParty = %+v, %v; want mirror--1 then mirror--2", list, err)
	}
	if list, err := st.Mirrors().ListByParty(ctx, b.ID); err != nil || len(list) != 0 {
		t.Fatalf("beta's mirrors = %+v, %v; want none", list, err)
	}

	// Only the due mirror is claimed, and only once while its lease runs.
	now := t0.Add(time.Minute)
	c, err := st.Mirrors().Claim(ctx, now, now.Add(time.Minute), "lease-1")
	if err != nil || c.ID != m.ID || c.Lease != "lease-1" || !c.LeaseUntil.Equal(now.Add(time.Minute)) {
		t.Fatalf("Claim = %+v, %v; want mirror--1 under lease-1", c, err)
	}
	if c, err := st.Mirrors().Claim(ctx, now, now.Add(time.Minute), "lease-2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Claim while leased = %+v, %v; want ErrNotFound", c, err)
	}

	// The claim saves progress; a stale claim cannot.
	c.AddedAfter, c.Next, c.SessionLast, c.Accepted, c.Refused, c.LastRefusal, c.Pages = "2026-01-01T00:00:00.123456Z", "cursor-7", "2026-01-01T00:00:01Z", 10, 1, "out of scope", 3
	c.LastSuccess, c.LastError, c.LastErrorAt, c.Failures = now, "source answered 503", now.Add(time.Second), 4
	c.NextAttempt, c.LeaseUntil = now.Add(2*time.Minute), time.Time{}
	if err := st.Mirrors().Save(ctx, c); err != nil {
		t.Fatalf("Save: %v", err)
	}
	got, err = st.Mirrors().Get(ctx, m.ID)
	if err != nil || got != c {
		t.Fatalf("after Save, Get = %+v, %v; want %+v", got, err, c)
	}
	if c2, err := st.Mirrors().Claim(ctx, now.Add(3*time.Minute), now.Add(4*time.Minute), "lease-3"); err != nil || c2.ID != m.ID {
		t.Fatalf("Claim once due again = %+v, %v", c2, err)
	}
	stale := c
	stale.Accepted = 99
	if err := st.Mirrors().Save(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Save under a lost lease: %v, want ErrConflict", err)
	}
	if got, _ := st.Mirrors().Get(ctx, m.ID); got.Accepted != 10 {
		t.Fatalf("a stale Save changed progress: accepted %d", got.Accepted)
	}

	if err := st.Mirrors().Delete(ctx, m.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := st.Mirrors().Delete(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}
	if err := st.Mirrors().Save(ctx, c); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Save of a deleted mirror: %v, want ErrNotFound", err)
	}
	// Inside a transaction, through its handle.
	err = st.Update(ctx, func(tx store.Handle) error {
		_, err := tx.Mirrors().Get(ctx, later.ID)
		return err
	})
	if err != nil {
		t.Fatalf("Get inside Update: %v", err)
	}
}
