package web

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/verification"
)

// ledgerStatus is what the dashboard says about the log's latest checkpoint.
type ledgerStatus struct {
	Present  bool   // a checkpoint has been signed
	Verified bool   // its signature verifies with the published key and its root matches the stored log
	Problem  string // why it did not verify, for people
	Size     int64
	Root     string
	Origin   string
	LogSize  int64     // entries in the log now
	Pending  int64     // entries not yet covered by the checkpoint
	Covers   time.Time // time of the newest entry it covers
	Age      string    // since then
	Key      string    // the verifier key used
}

// ledgerStatus verifies the latest checkpoint server-side, the way a
// client's `parley verify` would: the note's signature against the
// published verifier key, then its root against the tree hash recomputed
// from the stored log.
func (d *Dashboard) ledgerStatus(ctx context.Context) (ledgerStatus, error) {
	st := ledgerStatus{Key: d.o.VerifierKey}
	l := d.o.Ledger
	logSize, err := l.Size(ctx)
	if err != nil {
		return st, fmt.Errorf("ledger size: %w", err)
	}
	st.LogSize = logSize
	size, note, err := l.LatestCheckpoint(ctx)
	if errors.Is(err, ledger.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("latest checkpoint: %w", err)
	}
	st.Present, st.Size, st.Pending = true, size, logSize-size
	c, err := ledger.VerifyCheckpoint(note, d.o.VerifierKey)
	if err != nil {
		st.Problem = "its signature does not verify with the log's published key"
		d.log.WarnContext(ctx, "latest checkpoint does not verify", "size", size, "err", err)
		return st, nil
	}
	st.Root, st.Origin = c.Hash.String(), c.Origin
	if c.Size != size {
		st.Problem = fmt.Sprintf("it claims size %d but is stored as %d", c.Size, size)
		return st, nil
	}
	root, err := ledger.TreeHash(ctx, l, c.Size)
	if err != nil {
		return st, fmt.Errorf("tree hash at %d: %w", c.Size, err)
	}
	if root != c.Hash {
		st.Problem = "its root hash differs from the stored log's"
		d.log.WarnContext(ctx, "latest checkpoint root differs from the stored log", "size", size)
		return st, nil
	}
	st.Verified = true
	if c.Size > 0 {
		raws, err := l.ReadEntries(ctx, c.Size-1, c.Size)
		if err != nil {
			return st, fmt.Errorf("ledger entry %d: %w", c.Size-1, err)
		}
		e, err := ledger.DecodeEntry(raws[0])
		if err != nil {
			return st, fmt.Errorf("ledger entry %d: %w", c.Size-1, err)
		}
		st.Covers, st.Age = e.Time, ago(d.now().Sub(e.Time))
	}
	return st, nil
}

// ledgerScan bounds the entries one ledger page reads while looking for
// the party's: a page costs at most this many entry reads however large
// the log, and links on from where it stopped.
const ledgerScan = 2048

// ledgerRow is one entry on the ledger page.
type ledgerRow struct {
	Index                  int64
	Time                   time.Time
	Kind, Actor, Agreement string
	Subject, SubjectURL    string
	Attrs                  string
}

type ledgerData struct {
	Status     ledgerStatus
	Mine       *verification.View // the party's own latest verification
	Rows       []ledgerRow
	Kinds      []option
	Agreements []option
	Older      string
	Scanned    int64 // entries read for this page
	From       int64 // the newest index considered
}

// ledger lists the log's entries that concern the party (it acted, it is
// named, or they are under one of its agreements), newest first, with
// filters by kind and agreement, paged backwards by index.
func (d *Dashboard) ledger(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	st, err := d.ledgerStatus(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	data := ledgerData{Status: st}
	if data.Mine, err = d.myVerification(r.Context(), s.principal.PartyID); err != nil {
		d.fail(w, r, err)
		return
	}
	kinds := []string{"", "any kind"}
	for _, k := range ledger.Kinds() {
		kinds = append(kinds, string(k), string(k))
	}
	data.Kinds = options(q.Get("kind"), kinds...)
	if data.Agreements, err = d.agreementChoices(r.Context(), s.principal, q.Get("agreement")); err != nil {
		d.fail(w, r, err)
		return
	}
	mine := map[string]bool{}
	for _, o := range data.Agreements {
		mine[o.Value] = true
	}
	data.Agreements = append([]option{{Value: "", Label: "every agreement", Selected: q.Get("agreement") == ""}}, data.Agreements...)
	end := st.LogSize
	if b, err := strconv.ParseInt(q.Get("before"), 10, 64); err == nil && b >= 0 && b < end {
		end = b
	}
	data.From = end - 1
	n := d.namer(r.Context(), nil)
	for end > 0 && len(data.Rows) < pageSize && data.Scanned < ledgerScan {
		start := max(0, end-256)
		raws, err := d.o.Ledger.ReadEntries(r.Context(), start, end)
		if err != nil {
			d.fail(w, r, fmt.Errorf("ledger entries %d-%d: %w", start, end, err))
			return
		}
		data.Scanned += end - start
		for i := len(raws) - 1; i >= 0 && len(data.Rows) < pageSize; i-- {
			idx := start + int64(i)
			end = idx
			e, err := ledger.DecodeEntry(raws[i])
			if err != nil {
				continue
			}
			concerns := e.Actor == s.principal.PartyID || mine[e.Agreement]
			for _, p := range e.Parties {
				concerns = concerns || p == s.principal.PartyID
			}
			if !concerns || (q.Get("kind") != "" && string(e.Kind) != q.Get("kind")) ||
				(q.Get("agreement") != "" && e.Agreement != q.Get("agreement")) ||
				(q.Get("subject") != "" && e.Subject != q.Get("subject")) {
				continue
			}
			row := ledgerRow{Index: idx, Time: e.Time, Kind: string(e.Kind), Agreement: e.Agreement, Subject: e.Subject}
			if e.Actor != "" {
				row.Actor = n.name(e.Actor)
			}
			switch {
			case strings.HasPrefix(e.Subject, "handover--"):
				row.SubjectURL = "/ui/handovers/" + url.PathEscape(e.Subject)
			case strings.HasPrefix(e.Subject, "request--"):
				row.SubjectURL = "/ui/requests/" + url.PathEscape(e.Subject)
			}
			var attrs []string
			for _, k := range slices.Sorted(maps.Keys(e.Attrs)) {
				attrs = append(attrs, k+"="+e.Attrs[k])
			}
			row.Attrs = strings.Join(attrs, " ")
			data.Rows = append(data.Rows, row)
		}
	}
	if end > 0 {
		v := url.Values{}
		for _, k := range []string{"kind", "agreement", "subject"} {
			if q.Get(k) != "" {
				v.Set(k, q.Get(k))
			}
		}
		v.Set("before", strconv.FormatInt(end, 10))
		data.Older = "/ui/ledger?" + v.Encode()
	}
	d.render(w, r, http.StatusOK, "ledger", page{Title: "Ledger", Party: &s.principal, CSRF: s.csrf, Data: data})
}
