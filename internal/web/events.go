package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// Events is the party's event stream (store.Events): the same events the
// API's SSE stream (GET /api/v1/events) sends. After returns events with
// Seq > after, ascending; Before returns events with Seq < before (all
// when before <= 0), newest first. Both return at most limit.
type Events interface {
	After(ctx context.Context, partyID string, after int64, limit int) ([]store.Event, error)
	Before(ctx context.Context, partyID string, before int64, limit int) ([]store.Event, error)
}

// notifyCap is the most unseen events counted; more show as "99+".
const notifyCap = 99

// Stream settings for /ui/events/stream.
const (
	streamPoll     = time.Second
	streamLifetime = time.Minute // then the browser reconnects, and the session is checked anew
	streamBatch    = 100
)

// unseen counts the events of r's session after what it has seen, up to
// notifyCap+1.
func (d *Dashboard) unseen(r *http.Request, p party.Principal) (int, error) {
	if d.o.Events == nil {
		return 0, nil
	}
	var seen int64
	if c, err := r.Cookie(d.cookie); err == nil {
		seen = d.sessions.seenOf(c.Value)
	}
	evs, err := d.o.Events.After(r.Context(), p.PartyID, seen, notifyCap+1)
	return len(evs), err
}

// countLabel is the badge text for n unseen events.
func countLabel(n int) string {
	if n > notifyCap {
		return strconv.Itoa(notifyCap) + "+"
	}
	return strconv.Itoa(n)
}

// eventRow is one event as the events page shows it.
type eventRow struct {
	Seq             int64
	At              time.Time
	Kind, What, URL string
	Subject         string
	Detail          string
	New             bool
}

// eventText says what each kind of event means for the party it went to.
var eventText = map[string]string{
	"handover.proposed":        "a handover was proposed to you",
	"handover.accepted":        "your handover was accepted",
	"handover.declined":        "your handover was declined",
	"handover.deposited":       "the other side deposited in a handover",
	"handover.withdrawn":       "the other side withdrew its deposit",
	"handover.released":        "a handover was released: new intelligence for you",
	"handover.expired":         "a handover expired",
	"handover.deadline_near":   "a handover's deadline is near",
	"handover.disputed":        "your deposit was disputed",
	"request.filed":            "a request was filed with you",
	"request.acknowledged":     "your request was acknowledged",
	"request.fulfilled":        "a request was fulfilled",
	"request.refused":          "your request was refused",
	"request.overdue":          "a request is overdue",
	"request.answer_pending":   "a request's answer is pending a handover",
	"request.reopened":         "a request was reopened",
	"request.deadline_near":    "a request is due soon",
	"request.undelivered":      "the other party's node refused your request; it is closed undelivered",
	"match.started":            "a private matching session was started with you",
	"agreement.report_signed":  "a joint report was signed",
	"feed.released":            "new objects were released to you",
	"agreement.countersign":    "an agreement was countersigned",
	"agreement.proposed":       "an agreement was proposed to you",
	"request.deadline_passed":  "a request's deadline passed",
	"handover.deadline_passed": "a handover's deadline passed",
}

func eventRowOf(e store.Event, seen int64) eventRow {
	row := eventRow{Seq: e.Seq, At: e.At, Kind: e.Kind, Subject: e.Subject, New: e.Seq > seen, What: eventText[e.Kind]}
	if row.What == "" {
		row.What = strings.ReplaceAll(e.Kind, "_", " ")
	}
	switch {
	case strings.HasPrefix(e.Subject, "handover--"):
		row.URL = "/ui/handovers/" + url.PathEscape(e.Subject)
	case strings.HasPrefix(e.Subject, "request--"):
		row.URL = "/ui/requests/" + url.PathEscape(e.Subject)
	case strings.HasPrefix(e.Subject, "agreement--"):
		row.URL = "/ui/agreements/" + url.PathEscape(e.Subject)
	}
	var data map[string]any
	if json.Unmarshal(e.Data, &data) == nil {
		for _, k := range []string{"ground", "code", "cause", "deadline", "fulfil_by"} {
			if v, ok := data[k]; ok {
				row.Detail += fmt.Sprintf("%s: %v ", strings.ReplaceAll(k, "_", " "), v)
			}
		}
		row.Detail = strings.TrimSpace(row.Detail)
	}
	return row
}

type eventsData struct {
	Available bool
	Waiting   work // open handovers and requests that wait for the caller
	Rows      []eventRow
	Older     string // link to the page before
	Newest    bool   // this page starts at the newest event
}

// events lists what happened to the party, newest first, and what waits
// for it; viewing the newest page marks every event on it as seen.
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request, s session) {
	data := eventsData{Available: d.o.Events != nil}
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	data.Newest = before <= 0
	wk, err := d.openWork(r.Context(), s.principal, "", nil)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	now := d.now()
	for _, h := range wk.Handovers {
		if h.CanDecide || d.depositDue(r.Context(), h, s.principal, now) {
			data.Waiting.Handovers = append(data.Waiting.Handovers, h)
		}
	}
	for _, q := range wk.Requests {
		if !q.ByYou {
			data.Waiting.Requests = append(data.Waiting.Requests, q)
		}
	}
	data.Waiting.HandoversAvailable, data.Waiting.RequestsAvailable = wk.HandoversAvailable, wk.RequestsAvailable
	if data.Available {
		evs, err := d.o.Events.Before(r.Context(), s.principal.PartyID, before, pageSize)
		if err != nil {
			d.fail(w, r, err)
			return
		}
		for _, e := range evs {
			data.Rows = append(data.Rows, eventRowOf(e, s.seenEvents))
		}
		if n := len(evs); n == pageSize && evs[n-1].Seq > 1 {
			data.Older = "/ui/events?before=" + strconv.FormatInt(evs[n-1].Seq, 10)
		}
		if data.Newest && len(evs) > 0 {
			d.markSeen(r, evs[0].Seq)
		}
	}
	d.render(w, r, http.StatusOK, "events", page{Title: "Events", Party: &s.principal, CSRF: s.csrf, Data: data})
}

// depositDue reports whether an accepted case still waits for the
// caller's deposit.
func (d *Dashboard) depositDue(ctx context.Context, h handoverRow, p party.Principal, now time.Time) bool {
	if h.State != store.HandoverAccepted || !now.Before(h.Deadline) {
		return false
	}
	v, err := d.o.Handovers.Show(ctx, p, h.ID)
	if err != nil {
		return false
	}
	for _, dep := range v.Deposits {
		if dep.Party == p.PartyID {
			return false
		}
	}
	return true
}

// markSeen records that the request's session has seen events up to seq.
func (d *Dashboard) markSeen(r *http.Request, seq int64) {
	if c, err := r.Cookie(d.cookie); err == nil {
		d.sessions.seen(c.Value, seq)
	}
}

// stream sends the party's new events as Server-Sent Events to the
// dashboard's script (static/live.js), which updates the notification
// count and the events page. It reads the same store events as the API's
// stream, authenticated by the session instead of a token. Each stream
// ends after streamLifetime and the browser reconnects with Last-Event-ID,
// so an expired session or revoked token ends it within that time (both
// are checked before every delivery too).
func (d *Dashboard) stream(w http.ResponseWriter, r *http.Request, s session) {
	if d.o.Events == nil {
		d.notFound(w, r)
		return
	}
	after := s.seenEvents
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			after = n
		}
	}
	ctx := r.Context()
	batch, err := d.o.Events.After(ctx, s.principal.PartyID, after, streamBatch)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	// The stream outlives a page's write deadline by design; it ends
	// itself after streamLifetime.
	_ = rc.SetWriteDeadline(time.Now().Add(streamLifetime + 10*time.Second))
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 3000\n\n")
	count, err := d.unseen(r, s.principal)
	if err != nil {
		return
	}
	fmt.Fprintf(w, "event: count\ndata: {\"unseen\":%q}\n\n", countLabel(count))
	if rc.Flush() != nil {
		return
	}
	end := time.NewTimer(streamLifetime)
	defer end.Stop()
	poll := time.NewTicker(streamPoll)
	defer poll.Stop()
	for {
		if len(batch) > 0 {
			if _, err := d.current(r); err != nil {
				return // signed out, expired or revoked: nothing more goes out
			}
			for _, e := range batch {
				row := eventRowOf(e, s.seenEvents)
				b, _ := json.Marshal(map[string]any{"seq": e.Seq, "kind": e.Kind, "what": row.What, "url": row.URL,
					"at": e.At.UTC().Format("2006-01-02 15:04:05 UTC"), "subject": e.Subject, "detail": row.Detail})
				fmt.Fprintf(w, "id: %d\nevent: parley\ndata: %s\n\n", e.Seq, b)
				after = e.Seq
			}
			if count, err = d.unseen(r, s.principal); err != nil {
				return
			}
			fmt.Fprintf(w, "event: count\ndata: {\"unseen\":%q}\n\n", countLabel(count))
			if rc.Flush() != nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-poll.C:
		}
		if batch, err = d.o.Events.After(ctx, s.principal.PartyID, after, streamBatch); err != nil {
			return
		}
	}
}
