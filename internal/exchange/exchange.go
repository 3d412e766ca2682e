// Package exchange is the one place that decides who may read or write what.
//
// Every read and write of intelligence passes through a Service method that
// first asks Access for the caller's rights on the collection. Callers never
// query the store for objects directly. A party that may neither read nor
// write a collection gets ErrNotFound, exactly as for a collection that does
// not exist, so that existence does not leak.
//
// This package must never import the HTTP layer; it speaks in parties,
// collections and STIX objects.
package exchange

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/parley-cti/parley/internal/fault"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
)

// Sentinel errors.
var (
	// ErrNotFound: no such collection, object or status — or one the party
	// may not see. The two cases are one error on purpose.
	ErrNotFound = fault.Generic(fault.NotFound, "exchange: not found")
	// ErrForbidden: the party may see the collection but not do this to it
	// (for example write to a read-only collection).
	ErrForbidden = fault.Generic(fault.Forbidden, "exchange: not permitted")
	// ErrInvalid: the request itself is unacceptable (bad collection
	// definition, empty title, unknown party).
	ErrInvalid = fault.Generic(fault.Invalid, "exchange: invalid request")
)

// OperatorRoot is the API root holding collections the operator creates.
const OperatorRoot = "shared"

// Access is what a party may do with one collection.
type Access struct {
	Read  bool
	Write bool
	// Released, when set, bounds reading to what give-to-get released.
	Released *store.ReleaseBound
}

// Service enforces access on top of a store.
type Service struct {
	st    store.Store
	now   func() time.Time
	cache statusCache
	node  string // this node's key (SetNode); "" when it has none
	// noLedger skips ledger entries; only the benchmark that measures the
	// ledger's cost sets it (export_test.go).
	noLedger bool
}

// New returns a Service over st.
func New(st store.Store) *Service {
	return &Service{st: st, now: func() time.Time { return time.Now().UTC() }}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Decide is the single authorization decision for operator collections:
// the rights of party p on collection c.
func Decide(p party.Principal, c store.Collection) Access {
	return Access{
		Read:  slices.Contains(c.Readers, p.PartyID),
		Write: slices.Contains(c.Writers, p.PartyID),
	}
}

// Collection returns the collection and the caller's rights on it, or
// ErrNotFound when it does not exist or the caller has no right at all.
func (s *Service) Collection(ctx context.Context, p party.Principal, apiRoot, id string) (store.Collection, Access, error) {
	c, err := s.st.Collections().Get(ctx, apiRoot, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Collection{}, Access{}, ErrNotFound
	}
	if err != nil {
		return store.Collection{}, Access{}, err
	}
	a, err := s.decide(ctx, p, c)
	if err != nil {
		return store.Collection{}, Access{}, err
	}
	if !a.Read && !a.Write {
		return store.Collection{}, Access{}, ErrNotFound
	}
	return c, a, nil
}

// decide returns p's rights on c. Operator collections follow their access
// lists (Decide). On an agreement's collections the contributor reads all
// of its own contributions and writes while the agreement is in force; the
// counterpart reads only the released prefix, never writes; nobody else
// sees them at all.
func (s *Service) decide(ctx context.Context, p party.Principal, c store.Collection) (Access, error) {
	if c.Agreement == "" {
		return Decide(p, c), nil
	}
	if p.PartyID == c.Contributor {
		// The contributor is a party to the agreement: its state is all
		// there is to read.
		a, err := s.loadAgreement(ctx, s.st, c.Agreement, s.now())
		if errors.Is(err, ErrBrokenAgreement) {
			// Its own contributions stay readable; nothing more is
			// written under terms that no longer verify.
			return Access{Read: true}, nil
		}
		if err != nil {
			return Access{}, err
		}
		return Access{Read: true, Write: a.Status.InForce(s.now())}, nil
	}
	rec, err := s.st.Agreements().Get(ctx, c.Agreement)
	if err != nil {
		return Access{}, err
	}
	switch p.PartyID {
	case rec.PartyA, rec.PartyB:
		b, err := s.st.Credits().Bound(ctx, c.Agreement, p.PartyID, c.Contributor)
		if err != nil {
			return Access{}, err
		}
		return Access{Read: true, Released: &b}, nil
	}
	return Access{}, nil
}

// CollectionView is a collection with the caller's rights.
type CollectionView struct {
	store.Collection
	Access
}

// Collections lists the collections of apiRoot the caller may read or write.
func (s *Service) Collections(ctx context.Context, p party.Principal, apiRoot string) ([]CollectionView, error) {
	all, err := s.st.Collections().List(ctx, apiRoot)
	if err != nil {
		return nil, err
	}
	var out []CollectionView
	for _, c := range all {
		a, err := s.decide(ctx, p, c)
		if err != nil {
			return nil, err
		}
		if a.Read || a.Write {
			if c.Agreement != "" && c.Contributor != p.PartyID {
				c.Title = "Released to you: " + c.Title
			}
			out = append(out, CollectionView{c, a})
		}
	}
	return out, nil
}

// APIRoots lists the API roots in which the caller has at least one
// collection. An API root with nothing for the caller does not exist for it.
func (s *Service) APIRoots(ctx context.Context, p party.Principal) ([]string, error) {
	roots, err := s.st.Collections().APIRoots(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range roots {
		cs, err := s.Collections(ctx, p, r)
		if err != nil {
			return nil, err
		}
		if len(cs) > 0 {
			out = append(out, r)
		}
	}
	return out, nil
}

// HasAPIRoot reports whether the caller can see apiRoot.
func (s *Service) HasAPIRoot(ctx context.Context, p party.Principal, apiRoot string) (bool, error) {
	cs, err := s.Collections(ctx, p, apiRoot)
	return len(cs) > 0, err
}

// CreateCollection is the operator's: it makes a collection in the operator
// root with the given readers and writers (party ids).
func (s *Service) CreateCollection(ctx context.Context, title, description string, readers, writers []string) (store.Collection, error) {
	if title == "" {
		return store.Collection{}, fault.Errorf("%w: a collection needs a title", ErrInvalid)
	}
	c := store.Collection{ID: party.NewID(""), APIRoot: OperatorRoot, Title: title, Description: description,
		CreatedAt: s.now(), Readers: readers, Writers: writers}
	err := s.st.Collections().Create(ctx, c)
	if errors.Is(err, store.ErrNotFound) {
		return store.Collection{}, fault.Errorf("%w: a listed party does not exist", ErrInvalid)
	}
	return c, err
}

// Query returns a page of objects of a collection the caller may read.
func (s *Service) Query(ctx context.Context, p party.Principal, apiRoot string, q store.ObjectQuery) (store.Page, error) {
	_, a, err := s.Collection(ctx, p, apiRoot, q.Collection)
	if err != nil {
		return store.Page{}, err
	}
	if !a.Read {
		return store.Page{}, fault.Errorf("%w: this collection is write-only for you", ErrForbidden)
	}
	q.Released = a.Released
	return s.st.Objects().Query(ctx, q)
}

// Delete removes versions of an object the caller owns from an operator
// collection it may read and write (deleteAllowed). ErrNotFound when
// nothing matched.
func (s *Service) Delete(ctx context.Context, p party.Principal, apiRoot, collection, id string, v store.VersionFilter, specVersions []string) error {
	c, a, err := s.Collection(ctx, p, apiRoot, collection)
	if err != nil {
		return err
	}
	if err := s.deleteAllowed(ctx, p, c, a, id); err != nil {
		return err
	}
	n, err := s.st.Objects().Delete(ctx, collection, id, v, specVersions)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// Status returns a status resource; only the party that made the request
// may read it.
func (s *Service) Status(ctx context.Context, p party.Principal, apiRoot, id string) (store.Status, error) {
	st, err := s.st.Statuses().Get(ctx, apiRoot, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && st.PartyID != p.PartyID) {
		return store.Status{}, ErrNotFound
	}
	return st, err
}

// WriteDenied says why p may not add objects to c, given its rights a, or
// returns nil when it may.
func WriteDenied(p party.Principal, c store.Collection, a Access) error {
	switch {
	case a.Write:
		return nil
	case c.Agreement != "" && c.Contributor == p.PartyID:
		return fault.Errorf("%w: the agreement is not in force, so nothing can be contributed under it", ErrForbidden)
	default:
		return fault.Errorf("%w: this collection is read-only for you", ErrForbidden)
	}
}

// Grant is the decision, made once for a request, that a party may add
// objects to a collection: the collection and the party's rights as
// Writable found them. Only Writable makes one; IngestGranted acts on it.
type Grant struct {
	partyID string
	c       store.Collection
}

// Collection is the collection the grant is for.
func (g Grant) Collection() store.Collection { return g.c }

// Writable decides whether p may add objects to collection id of apiRoot:
// ErrNotFound when it does not exist or p has no right on it at all, and
// the ErrForbidden of WriteDenied when p may see it but not write it.
// Surfaces decide before they read a body, so an outsider learns nothing
// from how its body is judged, and pass the grant on to IngestGranted.
func (s *Service) Writable(ctx context.Context, p party.Principal, apiRoot, id string) (Grant, error) {
	c, a, err := s.Collection(ctx, p, apiRoot, id)
	if err != nil {
		return Grant{}, err
	}
	if err := WriteDenied(p, c, a); err != nil {
		return Grant{}, err
	}
	return Grant{partyID: p.PartyID, c: c}, nil
}

// IngestResult is the outcome of adding objects: the TAXII status resource
// and the index of the ledger entry recording the batch (the receipt).
type IngestResult struct {
	Status      store.Status
	LedgerIndex int64
	// IDs holds each object's id as parsed, in the order sent, or "" where
	// it did not parse as STIX (such an object was refused).
	IDs []string
}

// Ingest decides whether p may write the collection (Writable) and adds
// raws to it (IngestGranted).
func (s *Service) Ingest(ctx context.Context, p party.Principal, apiRoot, collection string, raws []json.RawMessage) (IngestResult, error) {
	g, err := s.Writable(ctx, p, apiRoot, collection)
	if err != nil {
		return IngestResult{}, err
	}
	return s.IngestGranted(ctx, p, g, raws)
}

// IngestGranted validates each object and stores the valid ones in the
// collection of g in one transaction together with the status resource and
// the ledger entry that records the batch. Invalid objects are reported in
// the status with their reason; they never stop valid ones. Access is not
// decided again: under an agreement, only what may have changed since g
// was made is read again under the agreement's lock — the agreement's
// state, so that one suspended, terminated or broken since refuses the
// batch. A grant made for another party is refused.
func (s *Service) IngestGranted(ctx context.Context, p party.Principal, g Grant, raws []json.RawMessage) (IngestResult, error) {
	if g.partyID == "" || g.partyID != p.PartyID {
		return IngestResult{}, fault.Errorf("%w: no write access was decided for you on this collection", ErrForbidden)
	}
	c := g.c
	apiRoot, collection := c.APIRoot, c.ID
	now := s.now().Truncate(time.Microsecond)
	status := store.Status{ID: party.NewID(""), APIRoot: apiRoot, PartyID: p.PartyID, Status: "complete",
		RequestTimestamp: now, TotalCount: len(raws)}
	// Only an agreement's credits compare contents.
	results := parseAll(raws, c.Agreement != "")
	objs := make([]store.Object, 0, len(raws))
	parsed := make([]*stix.Object, 0, len(raws))
	var invalid []store.StatusDetail
	for i, r := range results {
		o, err := r.obj, r.err
		if err == nil {
			err = notInFuture(o, now)
		}
		if err != nil {
			invalid = append(invalid, failure(i, raws[i], err))
			continue
		}
		objs = append(objs, storedObject(o, now, len(objs)))
		parsed = append(parsed, o)
	}
	var index int64
	update := s.st.Update
	if rl, ok := s.st.(store.RowLockUpdater); ok && c.Agreement == "" {
		// An operator collection's ingest rests on row locks alone: the
		// claim and the heads of each object id, and the ledger's size.
		// Run strictly isolated (PostgreSQL), concurrent ingests failed
		// and re-ran on each other's reads.
		update = rl.UpdateRowLocked
	}
	err := update(ctx, func(tx store.Handle) error {
		var err error
		// Update may retry fn; start from a clean status each time.
		status.Successes = nil
		status.Failures = append([]store.StatusDetail(nil), invalid...)
		keep, kept := objs, parsed
		var ag Agreement
		if c.Agreement != "" {
			// The agreement's lock serializes its accounting across
			// instances; its state is checked again under it.
			if err := tx.Agreements().Lock(ctx, c.Agreement); err != nil {
				return err
			}
			if ag, err = s.loadAgreement(ctx, tx, c.Agreement, now); errors.Is(err, ErrBrokenAgreement) {
				return fault.Errorf("%w: %w", ErrForbidden, err)
			} else if err != nil {
				return err
			}
			if !ag.Status.InForce(now) {
				return fault.Errorf("%w: the agreement is %s, so nothing can be contributed under it", ErrForbidden, ag.Status.Phase)
			}
			keep, kept = nil, nil
			for i, o := range parsed {
				if err := agreement.CheckScope(ag.Status.Document.Scope, o.Type, o.AllMarkings()); err != nil {
					status.Failures = append(status.Failures, store.StatusDetail{ID: o.ID, Version: stix.FormatTime(objs[i].Version),
						Message: o.ID + ": " + scopeDetail(err)})
					continue
				}
				keep, kept = append(keep, objs[i]), append(kept, o)
			}
		}
		if c.Agreement == "" {
			// Under an agreement only the contributor writes; in an
			// operator collection an id is its first poster's.
			if keep, kept, err = claim(ctx, tx, p, collection, keep, kept, &status); err != nil {
				return err
			}
		}
		outcomes, err := tx.Objects().Put(ctx, collection, keep)
		if err != nil {
			return err
		}
		var credit []creditNote
		if c.Agreement != "" {
			if credit, err = contribute(ctx, tx, ag, p.PartyID, kept, now); err != nil {
				return err
			}
			// A new version of an object already released is released
			// too: the read of the released prefix must reach it. What
			// earned credit just now has an ordinal past everything
			// released, so only the rest can be.
			var stored []string
			for i, o := range keep {
				if outcomes[i] != store.Duplicate && !credit[i].earned {
					stored = append(stored, o.ID)
				}
			}
			if err := tx.Credits().Reach(ctx, c.Agreement, ag.Counterpart(p.PartyID), p.PartyID, stored); err != nil {
				return err
			}
			// What earned credit was marked with it; the rest may be
			// a new version of an earlier credit.
			var rest []store.Object
			var restParsed []*stix.Object
			for i := range keep {
				if !credit[i].earned {
					rest, restParsed = append(rest, keep[i]), append(restParsed, kept[i])
				}
			}
			if err := markStored(ctx, tx, c.Agreement, p.PartyID, rest, restParsed); err != nil {
				return err
			}
		}
		digest := sha256.New()
		added, credited := 0, 0
		for i, o := range keep {
			d := store.StatusDetail{ID: o.ID, Version: stix.FormatTime(o.Version)}
			if outcomes[i] == store.Duplicate {
				d.Message = duplicateMessage
			} else {
				added++
				digest.Write([]byte(o.ID + " " + d.Version + "\n"))
			}
			if credit != nil {
				if credit[i].earned {
					credited++
				} else if d.Message == "" {
					d.Message = credit[i].why
				}
			}
			status.Successes = append(status.Successes, d)
		}
		if err := tx.Statuses().Create(ctx, status); err != nil {
			return err
		}
		attrs := map[string]string{"api_root": apiRoot, "collection": collection, "added": strconv.Itoa(added),
			"duplicates": strconv.Itoa(len(keep) - added), "refused": strconv.Itoa(len(status.Failures))}
		if c.Agreement != "" {
			attrs["credited"] = strconv.Itoa(credited)
		}
		index, err = s.record(ctx, tx, ledger.Entry{
			Kind: ledger.KindFeedBatch, Actor: p.PartyID, Agreement: c.Agreement, Subject: "status--" + status.ID, Time: now,
			Parties: []string{p.PartyID}, Attrs: attrs,
			Digests: map[string]string{"objects": "sha256:" + hex.EncodeToString(digest.Sum(nil))},
		})
		if err != nil {
			return err
		}
		if c.Agreement != "" && credited > 0 {
			return s.release(ctx, tx, ag, now)
		}
		return nil
	})
	if err != nil {
		return IngestResult{}, err
	}
	ids := make([]string, len(results))
	for i, r := range results {
		if r.err == nil {
			ids[i] = r.obj.ID
		}
	}
	return IngestResult{Status: status, LedgerIndex: index, IDs: ids}, nil
}

type parseResult struct {
	obj *stix.Object
	err error
}

// parseAll validates raws on every core: validation is the CPU-heavy part
// of ingest and needs no lock, while the store's writes are serial anyway.
// With fingerprint, each object's content fingerprint is computed too
// (what an agreement's credits compare); without, it is left zero.
// Results keep the request's order.
func parseAll(raws []json.RawMessage, fingerprint bool) []parseResult {
	out := make([]parseResult, len(raws))
	parse := stix.ValidateObject
	if fingerprint {
		parse = stix.ParseObject
	}
	workers := runtime.GOMAXPROCS(0)
	if len(raws) < 64 || workers < 2 {
		for i, raw := range raws {
			out[i].obj, out[i].err = parse(raw)
		}
		return out
	}
	var wg sync.WaitGroup
	chunk := (len(raws) + workers - 1) / workers
	for lo := 0; lo < len(raws); lo += chunk {
		hi := min(lo+chunk, len(raws))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				out[i].obj, out[i].err = parse(raws[i])
			}
		}()
	}
	wg.Wait()
	return out
}

// record appends a ledger entry inside the transaction of the change it
// records and returns its index.
func (s *Service) record(ctx context.Context, tx store.Handle, e ledger.Entry) (int64, error) {
	if s.noLedger {
		return -1, nil
	}
	l := tx.Ledger()
	return ledger.Append(ctx, l, e)
}

// failure describes one rejected object, naming it by id where it has one
// and by its position in the request otherwise, and by the version it
// claims: TAXII 2.1 section 4.3.1 gives every status detail the object's
// modified (created when it has none), which a client matches against what
// it sent. A value that is not a valid timestamp is reported as sent, since
// it is what the client knows the object by; an object with neither (or not
// an object at all) gets TimelessVersion, as it would had it been stored.
func failure(i int, raw json.RawMessage, err error) store.StatusDetail {
	var ve *stix.ValidationError
	d := store.StatusDetail{}
	if errors.As(err, &ve) {
		d.ID = ve.ObjectID
	}
	var probe struct {
		ID       any `json:"id"`
		Modified any `json:"modified"`
		Created  any `json:"created"`
	}
	if json.Unmarshal(raw, &probe) == nil {
		if s, ok := probe.ID.(string); ok && d.ID == "" {
			d.ID = s
		}
		if s, ok := probe.Modified.(string); ok && s != "" {
			d.Version = s
		} else if s, ok := probe.Created.(string); ok && s != "" {
			d.Version = s
		}
	}
	if d.Version == "" {
		d.Version = stix.FormatTime(stix.TimelessVersion)
	}
	// Parsing fails only with a stix.ValidationError, whose text is
	// written for the client; anything else is not shown.
	msg := "the object could not be read"
	if m, ok := fault.MessageOf(err); ok {
		msg = string(m)
	}
	if d.ID == "" {
		msg = fmt.Sprintf("objects[%d]: %s", i, msg)
	}
	d.Message = msg
	return d
}

// storedObject is o as stored, the i-th object of a batch added at now.
// Each object of a batch gets its own date_added, one microsecond apart, so
// a client resuming with added_after set to the last date_added it saw
// never skips the rest of a large batch.
func storedObject(o *stix.Object, now time.Time, i int) store.Object {
	return store.Object{ID: o.ID, Type: o.Type, SpecVersion: o.SpecVersion, Version: o.Version(),
		DateAdded: now.Add(time.Duration(i) * time.Microsecond), Raw: o.Raw}
}

// scopeDetail is what agreement.CheckScope said is out of scope, without
// the sentinel's words, which the status or list names once.
func scopeDetail(err error) string {
	if d, ok := fault.Detail(err); ok {
		return string(d)
	}
	return "out of the agreement's scope"
}
