package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// Feeds across nodes (issue 14, item 3; docs/federation.md).
//
// Under an agreement between a party of this node and a party of a peer,
// this node holds both contribution collections: its own party's, written
// through TAXII as on one server, and the peer's party's, written only by
// this node's puller with what the peer serves. Each node serves its own
// party's contributions to the peer *as the peer's party reads them here*
// (the released prefix: grace + ratio × the credits this node counted for
// the peer's party), and ingests what it pulls as the peer's party, which
// counts that party's credits here and raises what this node releases of
// its own party's data. Neither node believes the other's counts.

// Feed page bounds.
const (
	// FeedPageMax is the most contributions one feed page carries.
	FeedPageMax = 1000
	// FeedPageBytes bounds the objects of one page (under the node
	// client's answer limit); a page holds at least one contribution.
	FeedPageBytes = 3 << 20
)

// FeedPage is one page of a party's released contributions, served to the
// node of the counterpart: Objects are every stored version of the
// contributions with ordinals (publish order) in (after, Next], oldest
// first. More is set when more is released now; Released is how many of
// them this node releases to the counterpart.
type FeedPage struct {
	Agreement string            `json:"agreement"`
	After     int64             `json:"after"`
	Next      int64             `json:"next"`
	More      bool              `json:"more"`
	Released  int64             `json:"released"`
	Objects   []json.RawMessage `json:"objects"`
}

// registerFeeds starts this node's pull of the peer's party's
// contributions under a (once countersigned) agreement between nodes.
func (s *Service) registerFeeds(ctx context.Context, tx store.Handle, a Agreement) error {
	for _, pid := range []string{a.Record.PartyA, a.Record.PartyB} {
		if _, err := tx.Federation().RemoteParty(ctx, pid); errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if _, err := tx.Federation().FeedCursor(ctx, a.Record.ID, pid); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := tx.Federation().SetFeedCursor(ctx, store.FeedCursor{AgreementID: a.Record.ID, PartyID: pid, UpdatedAt: s.now()}); err != nil {
			return err
		}
	}
	return nil
}

// peersPartyIn returns the party of agreementID that lives on peer, the
// other party (which must be this node's) and the other's contribution
// collection (zero before the agreement was countersigned).
// ErrNotPartyHere if peer has no party in it, or both are remote.
func (s *Service) peersPartyIn(ctx context.Context, peer store.Peer, agreementID string) (remote, local string, c store.Collection, err error) {
	rec, err := s.st.Agreements().Get(ctx, agreementID)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", c, fault.Errorf("%w: %s", ErrNotPartyHere, agreementID)
	}
	if err != nil {
		return "", "", c, err
	}
	for _, pair := range [][2]string{{rec.PartyA, rec.PartyB}, {rec.PartyB, rec.PartyA}} {
		rp, err := s.st.Federation().RemoteParty(ctx, pair[0])
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", "", c, err
		}
		if rp.NodeKeyID != peer.KeyID {
			continue
		}
		if _, err := s.st.Federation().RemoteParty(ctx, pair[1]); err == nil {
			break // both remote: not this node's agreement to serve
		} else if !errors.Is(err, store.ErrNotFound) {
			return "", "", c, err
		}
		remote, local = pair[0], pair[1]
	}
	if remote == "" {
		return "", "", c, fault.Errorf("%w: %s", ErrNotPartyHere, agreementID)
	}
	cs, err := s.st.Collections().List(ctx, agreementID)
	if err != nil {
		return "", "", c, err
	}
	for _, x := range cs {
		if x.Contributor == local {
			c = x
		}
	}
	return remote, local, c, nil
}

// ServeFeed returns, for peer, a page of the contributions of this node's
// party under agreementID after ordinal after: what this node releases to
// the peer's party, decided exactly as a read by that party here would be
// (Query, with its credits as this node counted them). At most limit
// contributions (FeedPageMax when <= 0 or more).
func (s *Service) ServeFeed(ctx context.Context, peer store.Peer, agreementID string, after int64, limit int) (FeedPage, error) {
	if after < 0 {
		return FeedPage{}, fault.Errorf("%w: after must be 0 or more", ErrInvalid)
	}
	if limit <= 0 || limit > FeedPageMax {
		limit = FeedPageMax
	}
	remote, local, c, err := s.peersPartyIn(ctx, peer, agreementID)
	if err != nil {
		return FeedPage{}, err
	}
	page := FeedPage{Agreement: agreementID, After: after, Next: after, Objects: []json.RawMessage{}}
	if c.ID == "" {
		return page, nil // not countersigned yet: nothing is released
	}
	reader := party.Principal{PartyID: remote}
	_, acc, err := s.Collection(ctx, reader, agreementID, c.ID)
	if err != nil {
		return FeedPage{}, err
	}
	if acc.Released == nil {
		return FeedPage{}, fault.Errorf("%w: no release bound for the peer's party", ErrForbidden)
	}
	page.Released = acc.Released.UpTo
	if after >= acc.Released.UpTo {
		return page, nil
	}
	to := min(after+int64(limit), acc.Released.UpTo)
	ids, err := s.st.Credits().Range(ctx, agreementID, local, after+1, to)
	if err != nil {
		return FeedPage{}, err
	}
	if int64(len(ids)) != to-after {
		return FeedPage{}, fault.Errorf("feed of %s: ordinals %d..%d hold %d contributions", agreementID, after+1, to, len(ids))
	}
	byID := map[string][]json.RawMessage{}
	// The page's objects by their place in the publish order: a walk of
	// the credits' ordinals, not a lookup of each id (what the ids are
	// for is the page's order).
	q := store.ObjectQuery{Collection: c.ID, Versions: store.VersionFilter{All: true}, Limit: 1000,
		Credited: &store.OrdinalRange{Agreement: agreementID, Contributor: local, From: after + 1, To: to}}
	for {
		// Read as the peer's party: the same decision as its own read here.
		p, err := s.Query(ctx, reader, agreementID, q)
		if err != nil {
			return FeedPage{}, err
		}
		for _, o := range p.Objects {
			byID[o.ID] = append(byID[o.ID], json.RawMessage(o.Raw))
		}
		if !p.More || len(p.Objects) == 0 {
			break
		}
		last := p.Objects[len(p.Objects)-1]
		q.After = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
	}
	size := 0
	for i, id := range ids {
		vs := byID[id]
		n := 0
		for _, v := range vs {
			n += len(v)
		}
		if i > 0 && size+n > FeedPageBytes {
			break
		}
		size += n
		page.Objects = append(page.Objects, vs...)
		page.Next = after + int64(i) + 1
	}
	page.More = page.Next < acc.Released.UpTo
	return page, nil
}

// FeedVersionsPage is one page of later versions: versions of this
// node's party's contributions with ordinals up to the requester's
// cursor, stored after position After and before or at Next, each added
// after its contribution's first version (a first version travels in the
// contribution's own page). Next is the position the next request starts
// from; More is set when versions after it may follow now.
type FeedVersionsPage struct {
	Agreement string            `json:"agreement"`
	After     string            `json:"after"`
	Next      string            `json:"next"`
	More      bool              `json:"more"`
	Objects   []json.RawMessage `json:"objects"`
}

// FormatPosition is a position in a collection's date-added order as a
// feed's later-versions cursor carries it ("" is the start).
func FormatPosition(p store.Position) string {
	if p == (store.Position{}) {
		return ""
	}
	return strconv.FormatInt(p.DateAdded.UnixMicro(), 10) + "." + strconv.FormatInt(p.Seq, 10)
}

// ParsePosition reads FormatPosition's form; ErrInvalid for anything else.
func ParsePosition(s string) (store.Position, error) {
	if s == "" {
		return store.Position{}, nil
	}
	at, seq, ok := strings.Cut(s, ".")
	us, err1 := strconv.ParseInt(at, 10, 64)
	n, err2 := strconv.ParseInt(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil || us < 0 || n < 0 {
		return store.Position{}, fault.Errorf("%w: position %q is not MICROS.SEQ", ErrInvalid, s)
	}
	return store.Position{DateAdded: time.UnixMicro(us).UTC(), Seq: n}, nil
}

// ServeFeedVersions returns, for peer, the later versions of this node's
// party's contributions under agreementID stored after position after:
// those whose contributions are released to the peer's party here (the
// same decision as ServeFeed) and have an ordinal of at most upTo (what
// the peer says it pulled; its own cursor, so a later version never runs
// ahead of its contribution's page). At most limit versions are looked
// at (FeedPageMax when <= 0 or more). A page's contribution carries every
// version stored when it is served, so the puller starts this cursor at
// the start and moves it past every version it was shown; a first
// version is never served twice here.
func (s *Service) ServeFeedVersions(ctx context.Context, peer store.Peer, agreementID, after string, upTo int64, limit int) (FeedVersionsPage, error) {
	from, err := ParsePosition(after)
	if err != nil {
		return FeedVersionsPage{}, err
	}
	if upTo < 0 {
		return FeedVersionsPage{}, fault.Errorf("%w: upto must be 0 or more", ErrInvalid)
	}
	if limit <= 0 || limit > FeedPageMax {
		limit = FeedPageMax
	}
	remote, _, c, err := s.peersPartyIn(ctx, peer, agreementID)
	if err != nil {
		return FeedVersionsPage{}, err
	}
	page := FeedVersionsPage{Agreement: agreementID, After: after, Next: after, Objects: []json.RawMessage{}}
	if c.ID == "" {
		return page, nil
	}
	_, acc, err := s.Collection(ctx, party.Principal{PartyID: remote}, agreementID, c.ID)
	if err != nil {
		return FeedVersionsPage{}, err
	}
	switch {
	case !acc.Read:
		// As Query decides for ServeFeed's read.
		return FeedVersionsPage{}, fault.Errorf("%w: this collection is write-only for the peer's party", ErrForbidden)
	case acc.Released == nil:
		return FeedVersionsPage{}, fault.Errorf("%w: no release bound for the peer's party", ErrForbidden)
	}
	bound := *acc.Released
	bound.UpTo = min(bound.UpTo, upTo)
	if bound.UpTo <= 0 {
		return page, nil
	}
	// The read as the peer's party, narrowed to what it pulled: the
	// access decision's bound, never a wider one.
	p, err := s.st.Objects().Query(ctx, store.ObjectQuery{Collection: c.ID, Versions: store.VersionFilter{All: true},
		After: from, Limit: limit, Released: &bound})
	if err != nil {
		return FeedVersionsPage{}, err
	}
	if len(p.Objects) == 0 {
		return page, nil
	}
	// Each id's first stored version (its lowest position): the one its
	// contribution's page carried.
	firstAt := map[string]store.Position{}
	var ids []string
	for _, o := range p.Objects {
		if _, ok := firstAt[o.ID]; !ok {
			firstAt[o.ID] = store.Position{DateAdded: o.DateAdded, Seq: o.Seq}
			ids = append(ids, o.ID)
		}
	}
	q := store.ObjectQuery{Collection: c.ID, IDs: ids, Versions: store.VersionFilter{All: true}, Limit: 1000, Released: &bound}
	for {
		vs, err := s.st.Objects().Query(ctx, q)
		if err != nil {
			return FeedVersionsPage{}, err
		}
		for _, o := range vs.Objects {
			if at := (store.Position{DateAdded: o.DateAdded, Seq: o.Seq}); before(at, firstAt[o.ID]) {
				firstAt[o.ID] = at
			}
		}
		if !vs.More || len(vs.Objects) == 0 {
			break
		}
		last := vs.Objects[len(vs.Objects)-1]
		q.After = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
	}
	size := 0
	for i, o := range p.Objects {
		at := store.Position{DateAdded: o.DateAdded, Seq: o.Seq}
		if at != firstAt[o.ID] {
			if len(page.Objects) > 0 && size+len(o.Raw) > FeedPageBytes {
				page.More = true
				break
			}
			size += len(o.Raw)
			page.Objects = append(page.Objects, json.RawMessage(o.Raw))
		}
		page.Next = FormatPosition(at)
		if i == len(p.Objects)-1 {
			page.More = p.More
		}
	}
	return page, nil
}

// before reports whether position a comes before b.
func before(a, b store.Position) bool {
	return a.DateAdded.Before(b.DateAdded) || (a.DateAdded.Equal(b.DateAdded) && a.Seq < b.Seq)
}

// FeedSources returns every pull this node makes of a peer's party's
// contributions, with where it stands.
func (s *Service) FeedSources(ctx context.Context) ([]store.FeedCursor, error) {
	return s.st.Federation().FeedCursors(ctx)
}

// FeedFrom returns where this node's pull of peer's party's contributions
// under agreementID stands. ErrNotPartyHere if peer has no party in it;
// store.ErrNotFound before the agreement was countersigned here.
func (s *Service) FeedFrom(ctx context.Context, peer store.Peer, agreementID string) (store.FeedCursor, error) {
	remote, _, _, err := s.peersPartyIn(ctx, peer, agreementID)
	if err != nil {
		return store.FeedCursor{}, err
	}
	c, err := s.st.Federation().FeedCursor(ctx, agreementID, remote)
	if errors.Is(err, store.ErrNotFound) {
		return store.FeedCursor{}, fault.Errorf("%w: agreement %s has no feed here yet", ErrConflict, agreementID)
	}
	return c, err
}

// FeedPeer returns the key id of the node partyID lives on.
func (s *Service) FeedPeer(ctx context.Context, partyID string) (string, error) {
	rp, err := s.st.Federation().RemoteParty(ctx, partyID)
	if err != nil {
		return "", err
	}
	return rp.NodeKeyID, nil
}

// IngestFeed stores objects peer served of its party's contributions
// under agreementID in that party's collection here, as that party: the
// same validation, scope check, crediting and release as the party's own
// push would get on one server. Invalid and out-of-scope objects are
// refused in the status, the rest stored.
func (s *Service) IngestFeed(ctx context.Context, peer store.Peer, agreementID string, raws []json.RawMessage) (IngestResult, error) {
	rec, err := s.st.Agreements().Get(ctx, agreementID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return IngestResult{}, fault.Errorf("%w: %s", ErrNotPartyHere, agreementID)
		}
		return IngestResult{}, err
	}
	var remote store.RemoteParty
	for _, pid := range []string{rec.PartyA, rec.PartyB} {
		rp, err := s.st.Federation().RemoteParty(ctx, pid)
		if err == nil && rp.NodeKeyID == peer.KeyID {
			remote = rp
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return IngestResult{}, err
		}
	}
	if remote.PartyID == "" {
		return IngestResult{}, fault.Errorf("%w: %s", ErrNotPartyHere, agreementID)
	}
	cs, err := s.st.Collections().List(ctx, agreementID)
	if err != nil {
		return IngestResult{}, err
	}
	var coll string
	for _, c := range cs {
		if c.Contributor == remote.PartyID {
			coll = c.ID
		}
	}
	if coll == "" {
		return IngestResult{}, fault.Errorf("%w: agreement %s has no collections here yet", ErrConflict, agreementID)
	}
	p := party.Principal{PartyID: remote.PartyID, Name: remote.Name + "@" + peer.Name}
	g, err := s.Writable(ctx, p, agreementID, coll)
	if err != nil {
		return IngestResult{}, err
	}
	return s.IngestGranted(ctx, p, g, raws)
}

// SetFeedCursor records where a pull stands.
func (s *Service) SetFeedCursor(ctx context.Context, c store.FeedCursor) error {
	c.UpdatedAt = s.now()
	return s.st.Federation().SetFeedCursor(ctx, c)
}

// FeedCursorOf returns where the pull of partyID's contributions under
// agreementID stands.
func (s *Service) FeedCursorOf(ctx context.Context, agreementID, partyID string) (store.FeedCursor, error) {
	return s.st.Federation().FeedCursor(ctx, agreementID, partyID)
}

// FeedInForce reports whether agreementID is in force here: a pull of
// the peer's party's contributions is made only then (nothing could be
// ingested otherwise; what the peer serves waits for a resumption).
func (s *Service) FeedInForce(ctx context.Context, agreementID string) (bool, error) {
	a, err := s.loadAgreement(ctx, s.st, agreementID, s.now())
	if errors.Is(err, ErrBrokenAgreement) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return a.Status.InForce(s.now()), nil
}

// FeedRefused tells this node's party of agreementID, on its event stream
// (node.feed_refused), that what peer served of the other party's
// contributions was refused: count objects (what "objects") or a whole
// page (what "page"), with the first reason.
func (s *Service) FeedRefused(ctx context.Context, peer store.Peer, agreementID, what string, count int64, message string) error {
	rec, err := s.st.Agreements().Get(ctx, agreementID)
	if err != nil {
		return err
	}
	local := ""
	for _, pid := range []string{rec.PartyA, rec.PartyB} {
		if _, err := s.st.Federation().RemoteParty(ctx, pid); errors.Is(err, store.ErrNotFound) {
			local = pid
		} else if err != nil {
			return err
		}
	}
	if local == "" {
		return nil
	}
	data, err := json.Marshal(map[string]any{"peer": peer.Name, "what": what, "count": count, "message": message})
	if err != nil {
		return err
	}
	_, err = s.st.Events().Append(ctx, store.Event{PartyID: local, Kind: "node.feed_refused", Subject: agreementID, Data: data, At: s.now()})
	return err
}

// FeedPull is where one pull of a peer's party's contributions stands
// (docs/api.md, GET /api/v1/agreements/{id}/feeds).
type FeedPull struct {
	Agreement    string     `json:"agreement"`
	Peer         string     `json:"peer"`       // the pinned name of the node pulled from ("" when no longer pinned)
	Party        string     `json:"party"`      // the peer's party whose contributions are pulled
	PartyName    string     `json:"party_name"` // as this node knows it, NAME@PEER
	Cursor       int64      `json:"cursor"`     // the last of its contributions (publish order) ingested here
	PeerReleased int64      `json:"peer_released"`
	Pulled       int64      `json:"pulled"`
	Refused      int64      `json:"refused"`
	Attempts     int        `json:"attempts"` // failed attempts in a row
	LastSuccess  *time.Time `json:"last_success,omitempty"`
	LastError    string     `json:"last_error,omitempty"`
	NextAttempt  *time.Time `json:"next_attempt,omitempty"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// FeedPulls returns the pulls feeding agreementID on this node, for p, a
// party to it (ErrNotFound otherwise, as for a stranger's agreement).
func (s *Service) FeedPulls(ctx context.Context, p party.Principal, agreementID string) ([]FeedPull, error) {
	rec, err := s.st.Agreements().Get(ctx, agreementID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && rec.PartyA != p.PartyID && rec.PartyB != p.PartyID) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := []FeedPull{}
	for _, pid := range []string{rec.PartyA, rec.PartyB} {
		c, err := s.st.Federation().FeedCursor(ctx, agreementID, pid)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		v, err := s.feedPull(ctx, c)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// AllFeedPulls returns every pull this node makes, for its operator.
func (s *Service) AllFeedPulls(ctx context.Context) ([]FeedPull, error) {
	curs, err := s.st.Federation().FeedCursors(ctx)
	if err != nil {
		return nil, err
	}
	out := []FeedPull{}
	for _, c := range curs {
		v, err := s.feedPull(ctx, c)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Service) feedPull(ctx context.Context, c store.FeedCursor) (FeedPull, error) {
	v := FeedPull{Agreement: c.AgreementID, Party: c.PartyID, Cursor: c.After, PeerReleased: c.PeerReleased, Pulled: c.Pulled,
		Refused: c.Refused, Attempts: c.Attempts, LastError: c.LastError, UpdatedAt: c.UpdatedAt}
	if !c.LastSuccess.IsZero() {
		t := c.LastSuccess
		v.LastSuccess = &t
	}
	if !c.NextAttempt.IsZero() {
		t := c.NextAttempt
		v.NextAttempt = &t
	}
	rp, err := s.st.Federation().RemoteParty(ctx, c.PartyID)
	if err != nil {
		return FeedPull{}, err
	}
	v.PartyName = rp.Name
	peer, err := s.st.Nodes().PeerByKeyID(ctx, rp.NodeKeyID)
	switch {
	case err == nil:
		v.Peer = peer.Name
		v.PartyName = rp.Name + "@" + peer.Name
	case !errors.Is(err, store.ErrNotFound):
		return FeedPull{}, err
	}
	return v, nil
}
