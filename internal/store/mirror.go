package store

import (
	"context"
	"time"
)

// Mirror is a party's standing pull from another TAXII 2.1 server into its
// own contribution collection under an agreement (package mirror). Its
// cursor and progress live beside its definition, so a pull resumes where
// it stopped on any instance, after any restart.
type Mirror struct {
	ID        string
	PartyID   string // whose authority the pull runs with; its contributions
	Agreement string // the agreement whose contribution collection it feeds
	CreatedAt time.Time

	// The source: an API root URL, a collection id in it, and the
	// credential it wants. Token is secret: stored so the pull can use it,
	// never returned to anyone (package mirror redacts it).
	SourceURL        string
	SourceCollection string
	SourceUser       string // HTTP Basic user; empty: "Authorization: Bearer <Token>"
	SourceToken      string
	PageLimit        int // objects asked for per page

	// The cursor: AddedAfter is the added_after of the paging session,
	// the source's date_added of the last object stored before it, exactly
	// as the source wrote it ("" before the first page). Next is the
	// source's paging token of a session under way ("" when none is) and
	// SessionLast the source's date_added of the last object stored in
	// it, which becomes AddedAfter when the session ends.
	AddedAfter  string
	Next        string
	SessionLast string

	// Progress.
	Accepted    int64  // objects the collection took (new versions and versions it held already)
	Refused     int64  // objects refused (invalid STIX, out of scope)
	LastRefusal string // why the last refused object was refused
	Pages       int64
	LastSuccess time.Time // zero: never
	LastError   string    // "" after a success
	LastErrorAt time.Time
	Failures    int       // consecutive failed attempts, for backoff
	NextAttempt time.Time // when a runner should pull it next

	// The lease: a runner that claimed the mirror holds it until
	// LeaseUntil; Lease names the claim, so a runner whose lease ran out
	// cannot overwrite its successor's progress.
	Lease      string
	LeaseUntil time.Time
}

// Mirrors stores mirror definitions, cursors and progress.
type Mirrors interface {
	// Create stores m. ErrConflict if the id exists; ErrNotFound if its
	// party or agreement does not exist.
	Create(ctx context.Context, m Mirror) error
	// Get returns the mirror with id, or ErrNotFound.
	Get(ctx context.Context, id string) (Mirror, error)
	// ListByParty returns a party's mirrors, oldest first.
	ListByParty(ctx context.Context, partyID string) ([]Mirror, error)
	// Delete removes a mirror. ErrNotFound if there is none with id.
	Delete(ctx context.Context, id string) error
	// Claim takes the lease of the mirror due soonest (NextAttempt at or
	// before now) whose lease has run out, naming the claim lease and
	// holding it until until, and returns it with Lease and LeaseUntil
	// set. Two concurrent Claims never return the same mirror. ErrNotFound
	// when no mirror is due.
	Claim(ctx context.Context, now, until time.Time, lease string) (Mirror, error)
	// Save writes m's cursor, progress and lease (LeaseUntil; zero releases
	// it) while m.Lease is still the mirror's claim. ErrNotFound if the
	// mirror was deleted; ErrConflict if another runner claimed it since.
	Save(ctx context.Context, m Mirror) error
}
