// Package store defines parley's storage interfaces and the sentinel errors every
// storage backend returns.
//
// The interfaces here are the only way the rest of parley reaches persistent
// state. Two backends implement them: store/sqlite (the embedded default) and
// store/postgres. Both must pass the shared suite in store/storetest, so domain
// code can rely on the contracts written on each interface without knowing
// which database is behind it.
//
// This package holds no SQL and imports no database driver; SQL lives only in
// the backend packages.
package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/parley-cti/parley/internal/fault"

	"github.com/parley-cti/parley/internal/ledger"
)

// Sentinel errors. Backends translate their own error codes into these (for
// example SQLite's CONSTRAINT_UNIQUE and PostgreSQL's 23505 both become
// ErrConflict), so callers branch with errors.Is and never on driver errors.
var (
	// ErrNotFound: the record does not exist.
	ErrNotFound = fault.Generic(fault.NotFound, "store: not found")
	// ErrConflict: the record would violate a uniqueness rule.
	ErrConflict = fault.Generic(fault.Conflict, "store: conflict")
	// ErrUnavailable: the database cannot be reached right now. Callers map
	// it to 503 with Retry-After; the operation may be retried.
	ErrUnavailable = fault.Generic(fault.Unavailable, "store: database unavailable")
	// ErrDiskFull: the database cannot write because its disk (or quota)
	// is full. It is a kind of ErrUnavailable: writes resume once space is
	// freed, without a restart.
	ErrDiskFull = fmt.Errorf("%w: disk full", ErrUnavailable)
	// ErrCorrupt: the database file or an index is damaged. It does not
	// heal by waiting; the operator restores from a backup
	// (docs/operations.md).
	ErrCorrupt = errors.New("store: database damaged")
	// ErrSchemaTooNew: the database was migrated by a newer parley than this
	// binary; refusing to run protects data the binary does not understand.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this parley")
	// ErrSchemaOutdated: the database needs `parley migrate` before use.
	ErrSchemaOutdated = errors.New("store: database schema is older than this parley; run parley migrate")
)

// Store is a handle on one database. Methods of the sub-stores obtained from a
// Store run each in their own implicit transaction; Update groups several
// changes into one transaction that commits or rolls back as a whole.
type Store interface {
	Handle
	// Update runs fn inside one read-write transaction. If fn returns an
	// error, nothing fn wrote is kept and that error is returned. Backends
	// retry fn on transient serialization failures, so fn must not have
	// effects outside the Handle it is given. A backend may run fn in a
	// transaction shared with concurrent Updates (SQLite's group commit):
	// fn still sees every write committed or grouped before it, its own
	// writes are kept or discarded as its own, and Update returns only once
	// the shared transaction has committed; if that commit fails, every
	// Update in it returns the failure.
	Update(ctx context.Context, fn func(tx Handle) error) error
	// Ping reports ErrUnavailable when the database does not answer.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}

// Space is what an embedded database occupies on its disk and what is
// left there.
type Space struct {
	DatabaseBytes int64 // the database file
	WALBytes      int64 // its write-ahead log
	FreeBytes     int64 // free space on the filesystem holding them, for this process
}

// Spacer is implemented by stores whose files the server manages itself
// (SQLite; a PostgreSQL server manages its own). Space measures; TruncateWAL
// checkpoints the write-ahead log and shrinks it to nothing, returning
// ErrUnavailable if it could not (disk full, a reader holding it).
type Spacer interface {
	Space(ctx context.Context) (Space, error)
	TruncateWAL(ctx context.Context) error
}

// CommitStats counts a store's write transactions since it was opened.
type CommitStats struct {
	Transactions int64 // write transactions begun
	Updates      int64 // Updates run in them (one re-run after a lost transaction counts again)
	Largest      int64 // most Updates one transaction committed
	Waiting      int64 // Updates queued for the next transaction right now
}

// GroupCommitter is implemented by stores that run concurrent Updates in
// shared transactions (SQLite, whose single writer would otherwise commit
// and fsync each alone); CommitStats shows how well they group.
type GroupCommitter interface {
	CommitStats() CommitStats
}

// RowLockUpdater is implemented by stores whose Update isolates
// transactions more strictly than a writer that takes its own locks needs
// (PostgreSQL runs Update SERIALIZABLE, and concurrent ingests there failed
// and re-ran on each other's predicate locks and the ledger's row).
// UpdateRowLocked runs fn like Update, but isolated only by the row locks
// the store's methods take (READ COMMITTED on PostgreSQL): Objects.Claim
// and Objects.Put lock per object id, Ledger appends queue on the ledger's
// size row, and every statement sees what committed before it. Only a fn
// whose every decision rests on such locks may use it; callers fall back to
// Update when the store does not offer it.
type RowLockUpdater interface {
	UpdateRowLocked(ctx context.Context, fn func(tx Handle) error) error
}

// Handle gives access to every sub-store, either directly on the database or
// inside a transaction opened by Store.Update.
type Handle interface {
	Parties() Parties
	Tokens() Tokens
	Collections() Collections
	Objects() Objects
	Statuses() Statuses
	Settings() Settings
	// Ledger is the Merkle log bound to the handle (and its transaction,
	// inside Update), so a state change and its entry commit together.
	Ledger() ledger.Store
	Keys() Keys
	Agreements() Agreements
	Credits() Credits
	Matches() Matches // private matching sessions (matching.go)
	// Handovers, requests and their events (escrow.go).
	Handovers() Handovers
	Requests() Requests
	Events() Events
	Nodes() Nodes     // this node's public URL and its pinned peers (nodes.go)
	Mirrors() Mirrors // parties' standing pulls from other TAXII servers (mirror.go)
	// Federation holds other nodes' parties and the outbox to peers (nodes.go).
	Federation() Federation
	PeerLogs() PeerLogs // this node's view of its peers' ledgers (peerlogs.go)
	// HeldCases are the handovers this node holds as another agreement's
	// escrow node (escrowhost.go).
	HeldCases() HeldCases
}

// PartyKey is one registered public key set of a party. A party's first key
// is registered by the party; each later one arrives with a rotation
// statement signed by the key before it.
type PartyKey struct {
	KeyID      string
	PartyID    string
	Public     []byte    // agreement.PublicKeys as JSON
	ValidFrom  time.Time //
	ValidUntil time.Time // zero while current
	Rotation   []byte    // agreement.KeyRotation as JSON that introduced this key; nil for the first
}

// Keys stores parties' public keys.
type Keys interface {
	// Add stores k. ErrConflict if the key id is registered; ErrNotFound if
	// the party does not exist.
	Add(ctx context.Context, k PartyKey) error
	// Retire sets ValidUntil of a current key. ErrNotFound if there is no
	// such current key.
	Retire(ctx context.Context, keyID string, at time.Time) error
	// Get returns the key with this id, or ErrNotFound.
	Get(ctx context.Context, keyID string) (PartyKey, error)
	// ListByParty returns a party's keys, oldest first.
	ListByParty(ctx context.Context, partyID string) ([]PartyKey, error)
	// AddVerification stores a party's signed verification of the ledger,
	// numbering it after the party's last (Seq is assigned). ErrNotFound if
	// the party does not exist.
	AddVerification(ctx context.Context, v Verification) (Verification, error)
	// Verifications returns up to limit of the party's verifications,
	// newest first; only that party's.
	Verifications(ctx context.Context, partyID string, limit int) ([]Verification, error)
}

// Verification is a party's own signed statement that its client verified
// the ledger up to a checkpoint (`parley verify --upload`).
type Verification struct {
	PartyID    string
	Seq        int64 // the party's n-th upload, from 1
	Size       int64 // the verified checkpoint's size
	Root       string
	Entries    int64 // the party's entries its client replayed
	VerifiedAt time.Time
	ReceivedAt time.Time
	Statement  []byte // agreement.SignedVerification as JSON
}

// AgreementRecord is an agreement between two parties. Its documents and
// signatures are stored beside it; its state is computed from them.
type AgreementRecord struct {
	ID        string
	PartyA    string // the proposer
	PartyB    string
	CreatedAt time.Time
}

// AgreementVersion is one signed-over document version.
type AgreementVersion struct {
	AgreementID string
	Version     int
	Document    []byte // canonical JSON
	Hash        [32]byte
	CreatedAt   time.Time
}

// AgreementSignature is one signature on an agreement, in arrival order.
type AgreementSignature struct {
	AgreementID string
	Seq         int64 // assigned by the store
	Version     int
	PartyID     string
	Action      string
	Raw         []byte // agreement.Signature as JSON
	SignedAt    time.Time
}

// Agreements stores agreement records, versions and signatures.
type Agreements interface {
	// Create stores a new agreement. ErrConflict if the id exists;
	// ErrNotFound if a party does not exist.
	Create(ctx context.Context, a AgreementRecord) error
	// Get returns the agreement, or ErrNotFound.
	Get(ctx context.Context, id string) (AgreementRecord, error)
	// Lock takes the agreement's row lock until the surrounding transaction
	// ends, serializing state changes and accounting of one agreement across
	// instances. ErrNotFound if it does not exist.
	Lock(ctx context.Context, id string) error
	// ListByParty returns the agreements a party is in, newest first.
	ListByParty(ctx context.Context, partyID string) ([]AgreementRecord, error)
	// AddVersion stores a document version. ErrConflict if that version exists.
	AddVersion(ctx context.Context, v AgreementVersion) error
	// Versions returns every version, ascending.
	Versions(ctx context.Context, id string) ([]AgreementVersion, error)
	// AddSignature stores a signature and assigns its Seq. ErrConflict if
	// the same party already gave the same action on the same version at
	// the same time.
	AddSignature(ctx context.Context, s AgreementSignature) (int64, error)
	// Signatures returns every signature in arrival order.
	Signatures(ctx context.Context, id string) ([]AgreementSignature, error)
	// AddReportSignature stores a party's signed statement of a joint
	// report, in the transaction that records its report.signed ledger
	// entry. ErrConflict if that entry's index is already stored.
	AddReportSignature(ctx context.Context, rs ReportSignature) error
	// ReportSignatures returns the agreement's stored report signatures,
	// in ledger order.
	ReportSignatures(ctx context.Context, agreementID string) ([]ReportSignature, error)
}

// ReportSignature is one party's signature of a joint report as stored:
// the statement's bytes exactly as the report.signed ledger entry's
// "statement" digest covers them, so that anyone can check both later.
type ReportSignature struct {
	AgreementID string
	LedgerIndex int64
	PartyID     string
	KeyID       string
	ReportHash  string
	From, To    time.Time
	SignedAt    time.Time // when the server recorded it
	Statement   []byte    // agreement.SignedReport as JSON
}

// Contribution is one object offered for credit, with its weight and its
// content fingerprint (stix.Fingerprint; nil when unknown), and the mark
// of the version offered (as in Mark): one that earns credit is marked in
// the same call. Without a Type it is left for Mark.
type Contribution struct {
	ObjectID    string
	Weight      float64
	Fingerprint []byte
	Type        string
	TLP         int
	Version     time.Time
}

// Credited is what Contribute made of one contribution.
type Credited struct {
	// Ord is the contribution's ordinal, 1-based, in the party's publish
	// order; 0 when it earned nothing.
	Ord int64
	// SameContent is set when it earned nothing because its content (the
	// fingerprint) was known, though its id was not.
	SameContent bool
}

// Balance is one party's standing under an agreement.
type Balance struct {
	Contributed int64   // objects this party contributed that were new to the agreement
	Credits     float64 // their weighted sum (within the window, when asked), less contested ones
	Contested   float64 // the weight of its contributions under an open contest (within the window, when asked)
	Released    int64   // how many of the other party's contributions were released to this party
}

// Credit is one contribution as Credits keeps it.
type Credit struct {
	ObjectID  string
	PartyID   string // the contributor
	Ord       int64
	Weight    float64
	AddedAt   time.Time
	Contested bool // an open contest reverses it
}

// Contest is the receiving party's signed objection to one credit.
type Contest struct {
	ID          string
	AgreementID string
	Contester   string // the party that received the object
	Contributor string // the party whose credit it contests
	ObjectID    string
	Weight      float64 // the credit reversed while the contest stands
	Reason      string
	Statement   []byte // agreement.SignedContest as JSON
	FiledAt     time.Time
	LedgerIndex int64
	// Set once withdrawn (a withdrawal is final).
	WithdrawnAt   time.Time
	Withdrawal    []byte // agreement.SignedContest as JSON
	WithdrawIndex int64
}

// Credits keeps give-to-get accounting: which object each party contributed
// first under an agreement (its ordinal in that party's publish order) and
// how far each party's reading has been released.
type Credits interface {
	// Contribute records that party contributed the given objects under
	// agreement, in order, and says for each whether it earned credit. An
	// object earns nothing (and nothing is recorded) when it is already
	// known to the party, by id or by fingerprint: the party contributed it
	// before (or earlier in items); or the counterpart did and it is within
	// what has been released to the party; or (fingerprint) it came in a
	// plain handover released under the agreement (Handed). A counterpart's
	// object not released to the party earns credit like any other, so that
	// the outcome never tells a party what the other holds. A contribution
	// that earns credit and has a Type is marked (Mark) and tallied with
	// it, once for the call. Callers hold the agreement's Lock.
	Contribute(ctx context.Context, agreementID, partyID string, items []Contribution, at time.Time) ([]Credited, error)
	// Handed records fingerprints of objects a plain handover released
	// under the agreement: both parties know them from then on, so neither
	// earns credit for giving them again. Repeats are ignored.
	Handed(ctx context.Context, agreementID string, fingerprints [][]byte) error
	// Balance returns party's standing; credits count contributions at or
	// after since (zero: all).
	Balance(ctx context.Context, agreementID, partyID string, since time.Time) (Balance, error)
	// Released returns how many of the counterpart's contributions are
	// released to reader (0 when none): one row read.
	Released(ctx context.Context, agreementID, reader string) (int64, error)
	// SetReleased raises the number of the counterpart's contributions
	// released to reader to upTo; it never lowers it.
	SetReleased(ctx context.Context, agreementID, reader string, upTo int64) error
	// Bound returns what of contributor's contributions is released to
	// reader, for a query: the released prefix and its reach (Reach), so
	// that a read walks only the part of the collection holding them. One
	// row read.
	Bound(ctx context.Context, agreementID, reader, contributor string) (ReleaseBound, error)
	// Reach raises the reach of what is released to reader to cover every
	// stored version, in contributor's agreement collection, of those of
	// ids released to reader. Callers hold the agreement's Lock and call it
	// after every change that stores versions in the collection (with the
	// ids written, less those that earned a new ordinal just now: those
	// are not released yet) or releases more (with the ids released), so
	// that the reach never falls short of a released version.
	Reach(ctx context.Context, agreementID, reader, contributor string, ids []string) error
	// ReachRange is Reach for contributor's contributions with ordinals in
	// [from, to] (those past what is released to reader are left out): what
	// a release just released, found by ordinal rather than by id, so the
	// lookups walk the credits and the collection in the order they were
	// written.
	ReachRange(ctx context.Context, agreementID, reader, contributor string, from, to int64) error
	// Range returns the ids of party's contributions with ordinals in
	// [from, to], in publish order.
	Range(ctx context.Context, agreementID, partyID string, from, to int64) ([]string, error)
	// Credit returns party's credited contribution of objectID, or
	// ErrNotFound.
	Credit(ctx context.Context, agreementID, partyID, objectID string) (Credit, error)
	// Contest records c and takes the credit of c.Contributor for
	// c.ObjectID out of its credits. ErrNotFound if there is no such credit;
	// ErrConflict if that credit was contested before (a contest, even
	// withdrawn, is not filed twice). Callers hold the agreement's Lock.
	Contest(ctx context.Context, c Contest) error
	// WithdrawContest marks contest id withdrawn at at (recording the signed
	// withdrawal and its ledger index) and gives the credit back; it
	// returns the contest as it now stands. ErrNotFound if no such contest
	// is under the agreement; ErrConflict if it was withdrawn already.
	// Callers hold the agreement's Lock.
	WithdrawContest(ctx context.Context, agreementID, id string, at time.Time, withdrawal []byte, ledgerIndex int64) (Contest, error)
	// MirrorContest records c, a contest the other party's node relayed of
	// a credit it counts there, without touching any credit or total
	// here: this node counts the other side's credits, not its own
	// party's (docs/federation.md). ErrConflict if c.ID exists. Callers
	// hold the agreement's Lock.
	MirrorContest(ctx context.Context, c Contest) error
	// MirrorWithdrawal marks the mirrored contest id withdrawn as
	// WithdrawContest does, giving nothing back (MirrorContest took
	// nothing). ErrNotFound and ErrConflict as WithdrawContest.
	MirrorWithdrawal(ctx context.Context, agreementID, id string, at time.Time, withdrawal []byte, ledgerIndex int64) (Contest, error)
	// Contests returns the agreement's contests, oldest first.
	Contests(ctx context.Context, agreementID string) ([]Contest, error)
	// Mark records the STIX type and TLP level of stored versions of
	// party's contributions, in order, so that Tally can count them
	// without reading a single object. A mark whose object is not a
	// credited contribution of party under the agreement is ignored; one
	// older than (or as old as) the version already marked for its object
	// changes nothing. Callers hold the agreement's Lock and mark, in the
	// transaction that stores them, every version they store in the
	// party's agreement collection and every object that earns credit
	// (Contribute marks those it credits with a Type).
	Mark(ctx context.Context, agreementID, partyID string, marks []Mark) error
	// Tally counts party's contributions with ordinals in [1, upTo] by
	// the type and TLP level of their latest marked version, reading
	// O(upTo/1024 × types × levels) rows, never every contribution.
	Tally(ctx context.Context, agreementID, partyID string, upTo int64) ([]Tally, error)
	// Marked reports whether every contribution of party has its mark:
	// false only for contributions credited before marks existed, until
	// SetMarked.
	Marked(ctx context.Context, agreementID, partyID string) (bool, error)
	// SetMarked records that every contribution of party is marked (after
	// a backfill under the agreement's Lock).
	SetMarked(ctx context.Context, agreementID, partyID string) error
}

// Mark is the type and TLP level of one stored version of an object.
type Mark struct {
	ObjectID string
	Type     string
	TLP      int // the most restrictive TLP level of its object_marking_refs (stix.TLPLevel); -1: none
	Version  time.Time
}

// Tally is how many contributions have one type and TLP level.
type Tally struct {
	Type string
	TLP  int // as in Mark
	N    int64
}

// TallyBlock is how many consecutive ordinals one stored tally row sums:
// Tally reads the rows of the whole blocks below upTo and the marks of
// the last, partial one.
const TallyBlock = 1024

// Party is an organisation that exchanges intelligence through parley.
type Party struct {
	ID        string // "party--<uuid>"
	Name      string // unique, chosen by the operator
	CreatedAt time.Time
}

// Parties stores parties.
type Parties interface {
	// Create stores p. ErrConflict if the id or the name is taken.
	Create(ctx context.Context, p Party) error
	// Get returns the party with id, or ErrNotFound.
	Get(ctx context.Context, id string) (Party, error)
	// ByName returns the party named name, or ErrNotFound.
	ByName(ctx context.Context, name string) (Party, error)
	// List returns every party ordered by name.
	List(ctx context.Context) ([]Party, error)
}

// Token is an API credential of a party. Only the SHA-256 of the secret is
// stored; the secret itself is shown once when created.
type Token struct {
	ID        string // public handle used to revoke the token
	PartyID   string
	Hash      [32]byte
	Label     string
	CreatedAt time.Time
	RevokedAt time.Time // zero while the token is valid
	ExpiresAt time.Time // zero: never expires
	// LastUsedAt is when the token last authenticated a request, to the
	// minute (Touch is called at most once a minute per token); zero if
	// never used.
	LastUsedAt time.Time
}

// Tokens stores API tokens.
type Tokens interface {
	// Create stores t. ErrConflict if the id or hash exists; ErrNotFound if
	// the party does not exist.
	Create(ctx context.Context, t Token) error
	// ByHash returns the token with this hash, revoked or not, or ErrNotFound.
	ByHash(ctx context.Context, hash [32]byte) (Token, error)
	// Revoke marks the token revoked at the given time. ErrNotFound if no
	// such token exists; revoking twice keeps the first time.
	Revoke(ctx context.Context, id string, at time.Time) error
	// ListByParty returns the tokens of a party, oldest first.
	ListByParty(ctx context.Context, partyID string) ([]Token, error)
	// Touch records that the token authenticated a request at the given
	// time; a time earlier than the one stored leaves it. ErrNotFound if no
	// such token exists.
	Touch(ctx context.Context, id string, at time.Time) error
}

// Collection is a TAXII collection. Access lists name who may read and who
// may write; the decision itself is made in package exchange.
type Collection struct {
	ID          string // UUID, as TAXII requires
	APIRoot     string // path segment of the API root holding it
	Title       string
	Description string
	CreatedAt   time.Time
	Readers     []string // party ids
	Writers     []string // party ids
	// Agreement and Contributor are set on the collections an agreement
	// creates: Contributor's contributions under Agreement. Access to them
	// is decided from the agreement, not from Readers and Writers.
	Agreement   string
	Contributor string
	// Kind is what the collection holds when that is not told by
	// Agreement: empty for operator and agreement collections,
	// KindHandover for a handover collection.
	Kind string
}

// KindHandover marks the collection of an agreement's API root holding the
// objects of plain handovers released to its one reader (Readers); nobody
// writes it through TAXII.
const KindHandover = "handover"

// Collections stores collections and their access lists.
type Collections interface {
	// Create stores c with its access lists. ErrConflict if the id exists;
	// ErrNotFound if a listed party does not exist.
	Create(ctx context.Context, c Collection) error
	// Get returns the collection with id in apiRoot, or ErrNotFound.
	Get(ctx context.Context, apiRoot, id string) (Collection, error)
	// List returns the collections of apiRoot ordered by creation.
	List(ctx context.Context, apiRoot string) ([]Collection, error)
	// APIRoots returns every API root that holds at least one collection.
	APIRoots(ctx context.Context) ([]string, error)
}

// Object is one version of one STIX object stored in a collection.
type Object struct {
	ID          string
	Type        string
	SpecVersion string
	// Version is the object's modified time (or created, for objects
	// without modified, or DateAdded for objects with neither), the TAXII
	// version identifier.
	Version time.Time
	// DateAdded is when the server stored this version; microsecond precision.
	DateAdded time.Time
	// Seq orders objects added at the same microsecond; assigned by the store.
	Seq int64
	Raw []byte
}

// Position is a place in a collection's date-added order, as carried by a
// pagination cursor. The zero Position is before the first object.
type Position struct {
	DateAdded time.Time
	Seq       int64
}

// VersionFilter selects versions of each object, as TAXII match[version] does.
// Several selectors combine with OR. The zero value selects the last version.
type VersionFilter struct {
	All   bool
	First bool
	Last  bool
	At    []time.Time
}

// IsZero reports whether no selector is set (meaning: last version).
func (v VersionFilter) IsZero() bool {
	return !v.All && !v.First && !v.Last && len(v.At) == 0
}

// ObjectQuery selects objects of one collection in date-added order.
type ObjectQuery struct {
	Collection   string // collection id
	IDs          []string
	Types        []string
	SpecVersions []string
	Versions     VersionFilter
	AddedAfter   time.Time // zero: no bound
	After        Position  // resume after this position (exclusive)
	Limit        int       // at least 1
	// Released, when set, limits the result to objects whose first
	// contribution under Released.Agreement by Released.Contributor has an
	// ordinal of at most Released.UpTo: what give-to-get has released.
	Released *ReleaseBound
	// Credited, when set, limits the result to objects whose first
	// contribution under Credited.Agreement by Credited.Contributor has an
	// ordinal in [From, To]: a stretch of the contributor's publish order,
	// read by its place there (a feed page) rather than by a list of ids.
	Credited *OrdinalRange
	// RawOnly fills only each object's Seq, DateAdded and Raw: what an
	// envelope and its cursor need. The other columns are not read, which
	// saves most of the per-row work of a page on SQLite's driver.
	RawOnly bool
}

// OrdinalRange is a stretch of a contributor's publish order under an
// agreement: the ordinals From to To, both included.
type OrdinalRange struct {
	Agreement   string
	Contributor string
	From, To    int64
}

// ReleaseBound limits a query to released contributions.
type ReleaseBound struct {
	Agreement   string
	Contributor string
	UpTo        int64
	// Reach, when set, is the position of the last released version in
	// the collection (maintained by Credits.Reach): nothing after it is
	// released, so a read stops there instead of checking every unreleased
	// contribution. Nil: no such bound (the same objects, read slower).
	Reach *Position
}

// Page is one page of a query result. More is true when objects beyond the
// page match the query.
type Page struct {
	Objects []Object
	More    bool
}

// PutOutcome says what happened to one object given to Objects.Put.
type PutOutcome int

const (
	// Added: a new object or a new version was stored.
	Added PutOutcome = iota + 1
	// Duplicate: this id and version were already stored; nothing changed.
	Duplicate
)

// Objects stores STIX objects in collections.
type Objects interface {
	// Put stores the given versions in the collection, all in order. A
	// version already stored (same id and Version) is left as it was and
	// reported Duplicate. Put assigns Seq; DateAdded must be set by the
	// caller. ErrNotFound if the collection does not exist.
	Put(ctx context.Context, collection string, objs []Object) ([]PutOutcome, error)
	// Query returns one page of objects matching q, ordered by
	// (DateAdded, Seq). It never returns ErrNotFound: an empty page is an
	// empty result.
	Query(ctx context.Context, q ObjectQuery) (Page, error)
	// Delete removes the versions of object id selected by versions (and
	// spec versions, when given) and reports how many it removed.
	Delete(ctx context.Context, collection, id string, versions VersionFilter, specVersions []string) (int, error)
	// Count returns the number of stored versions in the collection.
	Count(ctx context.Context, collection string) (int64, error)
	// Claim records owner as the owner of each of ids in the collection
	// that has no owner yet, and returns the owner of every one of ids
	// afterwards: the party that first claimed an id owns it there for
	// good, even once every version is deleted. ErrNotFound if the
	// collection does not exist.
	Claim(ctx context.Context, collection, owner string, ids []string) (map[string]string, error)
	// Owner returns the party that owns id in the collection, or
	// ErrNotFound when nobody does (or the collection does not exist).
	Owner(ctx context.Context, collection, id string) (string, error)
	// Search returns one page of the last versions of the collection's
	// objects matching q, newest first (see SearchQuery for the order).
	// q.Released bounds it exactly as it bounds Query: nothing outside the
	// released prefix and its reach is ever returned. ErrNotFound if the
	// collection does not exist.
	Search(ctx context.Context, q SearchQuery) (Page, error)
}

// SearchQuery selects the last versions of objects of one collection for
// the dashboard: filters, full text, and paging back from the newest.
//
// Without Text, Types, Labels, Markings or Refs the result is ordered by
// (DateAdded, Seq) descending and Before is compared in that order; with
// any of them it comes from the full-text index, ordered by Seq
// descending, and only Before.Seq counts (Indexed says which). A rare or
// absent type is then one index lookup, not a walk of the collection.
type SearchQuery struct {
	Collection string
	// Released bounds the result as it bounds ObjectQuery.
	Released *ReleaseBound
	// Text: every word must occur in the object's name, aliases,
	// description or pattern. Words are runs of letters and digits
	// (SearchWords), matched whole and case-insensitively; a word with
	// punctuation inside ("10.0.0.1", "evil.example") matches its runs in
	// sequence.
	Text     string
	Types    []string // any of these types
	Labels   []string // every one of these labels, exactly
	Markings []string // any of these marking-definition ids, object-level or granular
	// Refs: objects that refer to any of these ids as source_ref,
	// target_ref, sighting_of_ref, object_refs, where_sighted_refs or
	// observed_data_refs (relationships, sightings, reports...).
	Refs        []string
	AddedFrom   time.Time // DateAdded at or after; zero: no bound
	AddedBefore time.Time // DateAdded before; zero: no bound
	IDs         []string  // only these ids
	Before      Position  // resume below this position (exclusive); zero: from the newest
	Limit       int       // at least 1
}

// Indexed reports whether q is answered from the full-text index (and so
// ordered by Seq alone).
func (q SearchQuery) Indexed() bool {
	return len(SearchWords(q.Text)) > 0 || len(q.Types) > 0 || len(q.Labels) > 0 || len(q.Markings) > 0 || len(q.Refs) > 0
}

// MaxSearchWords bounds the words of SearchQuery.Text that count.
const MaxSearchWords = 16

// SearchWords splits text into the words a search matches: each
// whitespace-separated word as its runs of letters and digits, lower-cased
// (a word without any is dropped), at most MaxSearchWords of them. Both
// backends index names and descriptions the same way, so that a word
// matches alike on either.
func SearchWords(text string) [][]string {
	var out [][]string
	for _, w := range strings.Fields(text) {
		parts := strings.FieldsFunc(strings.ToLower(w), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		if len(parts) > 0 {
			out = append(out, parts)
		}
		if len(out) == MaxSearchWords {
			break
		}
	}
	return out
}

// Facet kinds of the full-text index: a type, a label, a marking, a
// referenced id, a collection. A facet is indexed as one token, the kind
// then the value's bytes in hexadecimal, so that any value matches exactly
// and never as words.
const (
	FacetType       = 'T'
	FacetLabel      = 'L'
	FacetMarking    = 'M'
	FacetRef        = 'R'
	FacetCollection = 'C'
)

// FacetToken is the index token of one facet value.
func FacetToken(kind byte, value string) string {
	return string(kind) + strings.ToUpper(hex.EncodeToString([]byte(value)))
}

// StatusDetail reports one object of a TAXII add-objects request.
type StatusDetail struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Message string `json:"message,omitempty"`
}

// Status is a TAXII status resource: the outcome of one POST of objects.
type Status struct {
	ID               string
	APIRoot          string
	PartyID          string // who made the request; only that party may read it
	Status           string // "complete" or "pending"
	RequestTimestamp time.Time
	TotalCount       int
	Successes        []StatusDetail
	Failures         []StatusDetail
	Pendings         []StatusDetail
}

// Statuses stores status resources.
type Statuses interface {
	// Create stores s. ErrConflict if the id exists.
	Create(ctx context.Context, s Status) error
	// Get returns the status with id in apiRoot, or ErrNotFound.
	Get(ctx context.Context, apiRoot, id string) (Status, error)
}

// Settings stores small server-wide values (keys, identifiers) shared by
// every instance on the same database.
type Settings interface {
	// Get returns the value of key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// PutIfAbsent stores value under key unless key exists, and returns the
	// value stored under key afterwards, so that concurrent instances agree
	// on one value.
	PutIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error)
}
