package postgres_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/store/postgres"
)

// twoParties creates two parties and an agreement between them.
func twoParties(t *testing.T, db *postgres.DB) (a, b store.Party, agreementID string) {
	t.Helper()
	ctx := context.Background()
	t0 := time.UnixMicro(1).UTC()
	a = store.Party{ID: "party--a", Name: "a", CreatedAt: t0}
	b = store.Party{ID: "party--b", Name: "b", CreatedAt: t0}
	for _, p := range []store.Party{a, b} {
		if err := db.Parties().Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	agreementID = "agreement--busy"
	if err := db.Agreements().Create(ctx, store.AgreementRecord{ID: agreementID, PartyA: a.ID, PartyB: b.ID, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return a, b, agreementID
}

// waitForWaiter polls until a session waits for agreement's lock, either
// its advisory lock or (as before issue 15) its row, or fails after a
// minute.
func waitForWaiter(t *testing.T, conn *pgx.Conn, agreement string) {
	t.Helper()
	for range 600 {
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
			WHERE NOT l.granted AND a.datname = current_database() AND (
				(l.locktype = 'advisory' AND l.objid = (hashtext($1)::bigint & 4294967295)::oid)
				OR a.query LIKE '%FROM agreements WHERE id = $1 FOR UPDATE%')`, agreement).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the second Update never queued for the agreement")
}

// TestBusyAgreementQueuesBeforeSnapshot: a SERIALIZABLE Update that finds
// its agreement locked by another instance must wait for it before its
// snapshot is taken, and then succeed without a serialization failure. A
// transaction that waited for the row lock inside itself read the
// accounting from before the holder's commit and failed after the wait;
// with many writers on one agreement nearly every one did (issue 15).
func TestBusyAgreementQueuesBeforeSnapshot(t *testing.T) {
	ctx := context.Background()
	u := freshSchema(t)
	one := open(t, u, postgres.Options{Migrate: true})
	two := open(t, u, postgres.Options{})
	a, _, ag := twoParties(t, one)
	watch, err := pgx.Connect(ctx, baseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)

	locked, release := make(chan struct{}), make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- one.Update(ctx, func(tx store.Handle) error {
			if err := tx.Agreements().Lock(ctx, ag); err != nil {
				return err
			}
			if _, err := tx.Credits().Contribute(ctx, ag, a.ID, []store.Contribution{{ObjectID: "indicator--1", Weight: 1}}, time.UnixMicro(10).UTC()); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	var runs atomic.Int32
	var credited []store.Credited
	secondDone := make(chan error, 1)
	go func() {
		secondDone <- two.Update(ctx, func(tx store.Handle) error {
			runs.Add(1)
			if err := tx.Agreements().Lock(ctx, ag); err != nil {
				return err
			}
			var err error
			credited, err = tx.Credits().Contribute(ctx, ag, a.ID, []store.Contribution{{ObjectID: "indicator--2", Weight: 1}}, time.UnixMicro(20).UTC())
			return err
		})
	}()
	waitForWaiter(t, watch, ag)
	close(release)
	if err := <-firstDone; err != nil {
		t.Fatalf("first Update: %v", err)
	}
	if err := <-secondDone; err != nil {
		t.Fatalf("second Update: %v", err)
	}
	if r := two.Retries(); r != 0 {
		t.Errorf("the queued Update failed %d times with a serialization failure; it must wait before its snapshot", r)
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("the queued Update's function ran %d times, want 2 (stopped at the busy lock, then once queued)", n)
	}
	// It saw the first one's contribution: its ordinal follows it.
	if len(credited) != 1 || credited[0].Ord != 2 {
		t.Errorf("second contribution credited %+v, want ordinal 2", credited)
	}
}

// TestUpdateRetriesDeadlock makes two Updates on two instances revoke two
// tokens in opposite orders, each waiting for the other's first write: one
// is chosen as the deadlock victim (40P01). Update must run it again, and
// both callers must see success.
func TestUpdateRetriesDeadlock(t *testing.T) {
	ctx := context.Background()
	u := freshSchema(t)
	dbs := []*postgres.DB{open(t, u, postgres.Options{Migrate: true}), nil}
	dbs[1] = open(t, u, postgres.Options{})
	p := store.Party{ID: "party--a", Name: "a", CreatedAt: time.UnixMicro(1).UTC()}
	if err := dbs[0].Parties().Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	toks := []store.Token{
		{ID: "tok-1", PartyID: p.ID, Hash: [32]byte{1}, CreatedAt: p.CreatedAt},
		{ID: "tok-2", PartyID: p.ID, Hash: [32]byte{2}, CreatedAt: p.CreatedAt},
	}
	for _, tok := range toks {
		if err := dbs[0].Tokens().Create(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	var bothWrote sync.WaitGroup
	bothWrote.Add(2)
	var mu sync.Mutex
	var seen []error
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		first, second := toks[i], toks[1-i]
		wg.Go(func() {
			attempt := 0
			errs[i] = dbs[i].Update(ctx, func(tx store.Handle) error {
				attempt++
				at := time.UnixMicro(int64(100 + i)).UTC()
				if err := tx.Tokens().Revoke(ctx, first.ID, at); err != nil {
					return err
				}
				if attempt == 1 {
					bothWrote.Done()
					bothWrote.Wait()
				}
				err := tx.Tokens().Revoke(ctx, second.ID, at)
				if err != nil {
					mu.Lock()
					seen = append(seen, err)
					mu.Unlock()
				}
				return err
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Update %d: %v (a deadlock must be retried, not reported)", i, err)
		}
	}
	deadlocked := false
	for _, err := range seen {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "40P01" {
			deadlocked = true
		}
	}
	if !deadlocked {
		t.Fatalf("no attempt failed with a deadlock (40P01); errors seen: %v", seen)
	}
	if r := dbs[0].Retries() + dbs[1].Retries(); r < 1 {
		t.Fatalf("%d retries counted, want at least 1", r)
	}
	for _, tok := range toks {
		got, err := dbs[0].Tokens().ByHash(ctx, tok.Hash)
		if err != nil || got.RevokedAt.IsZero() {
			t.Fatalf("%s after both Updates: %+v, %v", tok.ID, got, err)
		}
	}
}

// TestLostConnectionIsUnavailable: when the server drops a transaction's
// connection (PostgreSQL killed or restarted, an administrator's
// pg_terminate_backend), the caller gets store.ErrUnavailable, which the
// HTTP edge answers with 503 and Retry-After, not an internal error.
func TestLostConnectionIsUnavailable(t *testing.T) {
	ctx := context.Background()
	db := open(t, freshSchema(t), postgres.Options{Migrate: true})
	killer, err := pgx.Connect(ctx, baseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(ctx)
	err = db.Update(ctx, func(tx store.Handle) error {
		pid, err := postgres.BackendPIDForTest(ctx, tx)
		if err != nil {
			return err
		}
		var ok bool
		if err := killer.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
			t.Fatalf("terminating backend %d: %v, %v", pid, ok, err)
		}
		_, err = tx.Settings().Get(ctx, "anything")
		return err
	})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Update on a connection the server dropped = %v, want store.ErrUnavailable", err)
	}
	// The pool drops the dead connection; the next call is served.
	if _, err := db.Settings().Get(ctx, "anything"); err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after the lost connection: %v", err)
	}
}

// TestQueuedUpdateGivesAgreementBack: an Update that waited for its
// agreement before BEGIN commits and gives the agreement back in one
// round trip; whatever the commit's outcome, the agreement is free after
// it returns and its connection serves the next Update. A function that
// carries on after a failed statement commits nothing and gets an error.
func TestQueuedUpdateGivesAgreementBack(t *testing.T) {
	ctx := context.Background()
	u := freshSchema(t)
	one := open(t, u, postgres.Options{Migrate: true})
	two := open(t, u, postgres.Options{MaxConns: 1})
	a, _, ag := twoParties(t, one)
	watch, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)
	free := func() bool {
		t.Helper()
		var ok bool
		if err := watch.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext('parley.agreement:' || current_schema()), hashtext($1))`, ag).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			if _, err := watch.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('parley.agreement:' || current_schema()), hashtext($1))`, ag); err != nil {
				t.Fatal(err)
			}
		}
		return ok
	}
	// queuedUpdate runs fn on two while one holds the agreement, so that
	// two's Update finds it busy and runs fn again queued for it.
	queuedUpdate := func(fn func(tx store.Handle) error) (runs int32, err error) {
		t.Helper()
		locked, release := make(chan struct{}), make(chan struct{})
		firstDone := make(chan error, 1)
		go func() {
			firstDone <- one.Update(ctx, func(tx store.Handle) error {
				if err := tx.Agreements().Lock(ctx, ag); err != nil {
					return err
				}
				close(locked)
				<-release
				return nil
			})
		}()
		<-locked
		var n atomic.Int32
		done := make(chan error, 1)
		go func() {
			done <- two.Update(ctx, func(tx store.Handle) error {
				n.Add(1)
				if err := tx.Agreements().Lock(ctx, ag); err != nil {
					return err
				}
				return fn(tx)
			})
		}()
		waitForWaiter(t, watch, ag)
		close(release)
		if err := <-firstDone; err != nil {
			t.Fatalf("holder: %v", err)
		}
		err = <-done
		return n.Load(), err
	}

	runs, err := queuedUpdate(func(tx store.Handle) error {
		_, err := tx.Credits().Contribute(ctx, ag, a.ID, []store.Contribution{{ObjectID: "indicator--1", Weight: 1}}, time.UnixMicro(10).UTC())
		return err
	})
	if err != nil || runs != 2 {
		t.Fatalf("queued Update: %v after %d runs, want success after 2 (busy, then queued)", err, runs)
	}
	if !free() {
		t.Fatal("the agreement is still locked after a queued Update committed")
	}
	if b, err := two.Credits().Balance(ctx, ag, a.ID, time.Time{}); err != nil || b.Contributed != 1 {
		t.Fatalf("after the queued Update: balance %+v, %v; want its contribution committed", b, err)
	}

	// A failed statement aborts the transaction; fn ignores it.
	runs, err = queuedUpdate(func(tx store.Handle) error {
		_, _ = tx.Credits().Contribute(ctx, ag, a.ID, []store.Contribution{{ObjectID: "indicator--2", Weight: 1}}, time.UnixMicro(20).UTC())
		_ = postgres.FailStatementForTest(ctx, tx)
		return nil
	})
	if err == nil || runs != 2 {
		t.Fatalf("queued Update of an aborted transaction: %v after %d runs, want an error after 2", err, runs)
	}
	if !free() {
		t.Fatal("the agreement is still locked after a queued Update's commit failed")
	}
	// The one connection of two went back to the pool usable, and nothing
	// of the aborted transaction was committed.
	if b, err := two.Credits().Balance(ctx, ag, a.ID, time.Time{}); err != nil || b.Contributed != 1 {
		t.Fatalf("after the aborted Update: balance %+v, %v; want only the first contribution", b, err)
	}

	// The COMMIT itself fails (a deferred constraint), which skips the
	// unlocks sent with it.
	runs, err = queuedUpdate(func(tx store.Handle) error {
		if _, err := tx.Credits().Contribute(ctx, ag, a.ID, []store.Contribution{{ObjectID: "indicator--3", Weight: 1}}, time.UnixMicro(30).UTC()); err != nil {
			return err
		}
		return postgres.FailAtCommitForTest(ctx, tx)
	})
	if !errors.Is(err, store.ErrConflict) || runs != 2 {
		t.Fatalf("queued Update whose COMMIT fails: %v after %d runs, want ErrConflict after 2", err, runs)
	}
	if !free() {
		t.Fatal("the agreement is still locked after a queued Update's COMMIT failed")
	}
	if b, err := two.Credits().Balance(ctx, ag, a.ID, time.Time{}); err != nil || b.Contributed != 1 {
		t.Fatalf("after the failed COMMIT: balance %+v, %v; want only the first contribution", b, err)
	}
}
