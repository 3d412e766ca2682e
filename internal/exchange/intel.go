package exchange

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
)

// Directions of intelligence, seen from the caller.
const (
	Received = "received" // the counterpart's released contributions, and plain handovers released to the caller
	Given    = "given"    // the caller's own contributions
)

// Kinds of source.
const (
	SourceFeed     = "feed"     // an agreement's contribution collection
	SourceHandover = "handover" // the collection of plain handovers released to the caller
)

// IntelSource is one collection the caller reads under one of its
// agreements, as the dashboard lists intelligence: exactly the collections
// TAXII shows it in that agreement's API root, with the same rights.
type IntelSource struct {
	Agreement   string
	Counterpart string // the other party's id
	Collection  string
	Direction   string // Received or Given
	Kind        string // SourceFeed or SourceHandover
	released    *store.ReleaseBound
}

// IntelSources lists the collections the caller may read under its
// agreements, decided as every TAXII read decides them (Collections).
func (s *Service) IntelSources(ctx context.Context, p party.Principal) ([]IntelSource, error) {
	recs, err := s.st.Agreements().ListByParty(ctx, p.PartyID)
	if err != nil {
		return nil, err
	}
	var out []IntelSource
	for _, r := range recs {
		other := r.PartyB
		if other == p.PartyID {
			other = r.PartyA
		}
		cs, err := s.Collections(ctx, p, r.ID)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if !c.Read {
				continue
			}
			src := IntelSource{Agreement: r.ID, Counterpart: other, Collection: c.ID, Direction: Received, Kind: SourceFeed, released: c.Released}
			switch {
			case c.Agreement != "" && c.Contributor == p.PartyID:
				src.Direction = Given
			case c.Agreement == "":
				src.Kind = SourceHandover
			}
			out = append(out, src)
		}
	}
	return out, nil
}

// IntelQuery selects intelligence the caller received or gave.
type IntelQuery struct {
	Direction   string // "" (both), Received or Given
	Agreement   string // "" (all of the caller's)
	Counterpart string // a party id; "" (any)
	// Search holds the filters, the cursor and the page size; its
	// Collection and Released are set here, per source, never by the
	// caller.
	Search store.SearchQuery
}

// IntelObject is one object of a listing and the source it was read from.
type IntelObject struct {
	store.Object
	Source IntelSource
}

// IntelPage is one page of a listing, newest first. More is set when
// older matches follow; the next page starts below the last object's
// position.
type IntelPage struct {
	Objects []IntelObject
	More    bool
}

// Intelligence returns a page of the last versions of what the caller
// received or gave, filtered by q. Every source is read with the bound
// TAXII reads it with, so nothing the caller may not read over TAXII is
// ever returned, matched or counted.
func (s *Service) Intelligence(ctx context.Context, p party.Principal, q IntelQuery) (IntelPage, error) {
	if q.Search.Limit < 1 {
		return IntelPage{}, fault.Errorf("%w: a page needs a size", ErrInvalid)
	}
	srcs, err := s.IntelSources(ctx, p)
	if err != nil {
		return IntelPage{}, err
	}
	var all []IntelObject
	more := false
	for _, src := range srcs {
		if (q.Direction != "" && src.Direction != q.Direction) || (q.Agreement != "" && src.Agreement != q.Agreement) ||
			(q.Counterpart != "" && src.Counterpart != q.Counterpart) {
			continue
		}
		sq := q.Search
		sq.Collection, sq.Released = src.Collection, src.released
		pg, err := s.st.Objects().Search(ctx, sq)
		if err != nil {
			return IntelPage{}, err
		}
		more = more || pg.More
		for _, o := range pg.Objects {
			all = append(all, IntelObject{Object: o, Source: src})
		}
	}
	// Each source's page is its newest matches below the cursor; the
	// newest of their union are the page.
	indexed := q.Search.Indexed()
	slices.SortFunc(all, func(a, b IntelObject) int { return -compareIntel(indexed, a.Object, b.Object) })
	if len(all) > q.Search.Limit {
		all, more = all[:q.Search.Limit], true
	}
	return IntelPage{Objects: all, More: more}, nil
}

// compareIntel orders objects as store.SearchQuery does: by Seq alone from
// the index, else by (DateAdded, Seq).
func compareIntel(indexed bool, a, b store.Object) int {
	if !indexed {
		if c := a.DateAdded.Compare(b.DateAdded); c != 0 {
			return c
		}
	}
	switch {
	case a.Seq < b.Seq:
		return -1
	case a.Seq > b.Seq:
		return 1
	}
	return 0
}

// ObjectCopy is one collection's versions of an object the caller reads,
// with where they came from.
type ObjectCopy struct {
	Source   IntelSource
	Versions []store.Object // oldest first
	// Ord is the object's ordinal in its contributor's publish order under
	// the agreement (feeds; 0 when unknown), CreditedAt when it was
	// credited.
	Ord        int64
	CreditedAt time.Time
	// LedgerIndex is the ledger entry that recorded its arrival: the
	// feed.released entry that released it to the caller (received), or
	// the caller's feed.batch entry that stored its first version (given);
	// -1 when none is found.
	LedgerIndex int64
	LedgerKind  ledger.Kind
}

// Object returns every copy of object id the caller may read under its
// agreements, each read through Query as TAXII reads it (every version),
// or ErrNotFound when there is none: an object the caller may not read
// and one that does not exist look the same.
func (s *Service) Object(ctx context.Context, p party.Principal, id string) ([]ObjectCopy, error) {
	srcs, err := s.IntelSources(ctx, p)
	if err != nil {
		return nil, err
	}
	var out []ObjectCopy
	for _, src := range srcs {
		pg, err := s.Query(ctx, p, src.Agreement, store.ObjectQuery{Collection: src.Collection, IDs: []string{id},
			Versions: store.VersionFilter{All: true}, Limit: maxVersionsShown})
		if err != nil {
			return nil, err
		}
		if len(pg.Objects) == 0 {
			continue
		}
		c := ObjectCopy{Source: src, Versions: pg.Objects, LedgerIndex: -1}
		if src.Kind == SourceFeed {
			contributor := p.PartyID
			if src.Direction == Received {
				contributor = src.Counterpart
			}
			cr, err := s.st.Credits().Credit(ctx, src.Agreement, contributor, id)
			if err == nil {
				c.Ord, c.CreditedAt = cr.Ord, cr.AddedAt
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			if c.LedgerIndex, c.LedgerKind, err = s.arrival(ctx, p, src, id, c); err != nil {
				return nil, err
			}
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}

// duplicateMessage is Ingest's status message for a version stored before.
const duplicateMessage = "this version was already stored"

// maxVersionsShown bounds the versions of one object an object page reads.
const maxVersionsShown = 200

// arrival finds the ledger entry that recorded how a copy arrived: for a
// received feed object, the first feed.released entry to the caller whose
// range reaches its ordinal; for a given one, the caller's latest
// feed.batch into that collection at or before its first version's
// date_added whose status resource lists it. It reads the ledger from the
// start, as BalanceHistory does; -1 when nothing matches.
func (s *Service) arrival(ctx context.Context, p party.Principal, src IntelSource, id string, c ObjectCopy) (int64, ledger.Kind, error) {
	if src.Direction == Received && c.Ord == 0 {
		return -1, "", nil
	}
	l := s.st.Ledger()
	size, err := l.Size(ctx)
	if err != nil {
		return -1, "", fault.Errorf("ledger size: %w", err)
	}
	needle := []byte(`"agreement":` + strconv.Quote(src.Agreement))
	first := c.Versions[0].DateAdded
	best := int64(-1)
	for start := int64(0); start < size; start += historyChunk {
		end := min(start+historyChunk, size)
		raws, err := l.ReadEntries(ctx, start, end)
		if err != nil {
			return -1, "", fault.Errorf("ledger entries [%d, %d): %w", start, end, err)
		}
		for i, raw := range raws {
			if !bytes.Contains(raw, needle) {
				continue
			}
			var e ledger.Entry
			if err := json.Unmarshal(raw, &e); err != nil {
				return -1, "", fault.Errorf("ledger entry %d: %w", start+int64(i), err)
			}
			if e.Agreement != src.Agreement {
				continue
			}
			switch src.Direction {
			case Received:
				if e.Kind != ledger.KindFeedReleased || e.Attrs["recipient"] != p.PartyID {
					continue
				}
				if to, err := strconv.ParseInt(e.Attrs["to"], 10, 64); err == nil && to >= c.Ord {
					return start + int64(i), ledger.KindFeedReleased, nil
				}
			case Given:
				if e.Kind != ledger.KindFeedBatch || e.Actor != p.PartyID || e.Attrs["collection"] != src.Collection || e.Time.After(first) {
					continue
				}
				st, err := s.Status(ctx, p, src.Agreement, strings.TrimPrefix(e.Subject, "status--"))
				if err != nil {
					continue
				}
				for _, d := range st.Successes {
					if d.ID == id && d.Version == stix.FormatTime(c.Versions[0].Version) && d.Message != duplicateMessage {
						best = start + int64(i)
					}
				}
			}
		}
	}
	if best < 0 {
		return -1, "", nil
	}
	return best, ledger.KindFeedBatch, nil
}
