package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/party"
)

// Event stream settings. Events live in the database with a per-party
// sequence, so any instance serves any party's stream and a reconnecting
// client resumes exactly after the Last-Event-ID it saw; the handler polls
// the store rather than relying on in-process signals, which would miss
// events written by other instances.
const (
	eventPoll      = 250 * time.Millisecond
	eventHeartbeat = 15 * time.Second
	eventBatch     = 500
	// tokenRecheck is how often an idle stream checks in the database that
	// its token is still valid (it also checks before every delivery): a
	// revocation on any instance ends the stream within about this long.
	tokenRecheck = time.Second
)

// events serves GET /api/v1/events as Server-Sent Events. The position to
// resume after comes from Last-Event-ID (or ?after=N). With ?follow=false
// it sends what is stored and ends, for scripts and tests.
func (s *Handler) events(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	after := int64(0)
	from := r.Header.Get("Last-Event-ID")
	if from == "" {
		from = r.URL.Query().Get("after")
	}
	if from != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(from), 10, 64)
		if err != nil || n < 0 {
			return apiErr(http.StatusBadRequest, "invalid", "Last-Event-ID (or after=) must be a non-negative event number, not "+strconv.Quote(from))
		}
		after = n
	}
	follow := r.URL.Query().Get("follow") != "false"
	e := s.eventLog
	ctx := r.Context()
	// Read the first batch before committing to a 200, so a failing store
	// still gets a proper error answer.
	batch, err := e.After(ctx, p.PartyID, after, eventBatch)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	// The headers go out now, not with the first event or heartbeat, so
	// a client knows at once that its stream is open.
	if err := rc.Flush(); err != nil {
		return nil
	}
	poll := time.NewTicker(eventPoll)
	defer poll.Stop()
	lastWrite, lastCheck := time.Now(), time.Now()
	for {
		for _, ev := range batch {
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: {\"kind\":%q,\"subject\":%q,\"at\":%q,\"data\":%s}\n\n",
				ev.Seq, ev.Kind, ev.Kind, ev.Subject, ev.At.Format(time.RFC3339Nano), ev.Data)
			after = ev.Seq
		}
		if len(batch) > 0 || time.Since(lastWrite) > eventHeartbeat {
			if len(batch) == 0 {
				fmt.Fprint(w, ": keep-alive\n\n")
			}
			if err := rc.Flush(); err != nil {
				return nil // the client went away
			}
			lastWrite = time.Now()
		}
		if len(batch) == eventBatch {
			// More are waiting: no pause.
		} else if !follow {
			return nil
		} else {
			select {
			case <-ctx.Done():
				return nil
			case <-poll.C:
			}
		}
		if batch, err = e.After(ctx, p.PartyID, after, eventBatch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.ErrorContext(ctx, "reading events", "party", p.PartyID, "err", err)
			return nil // headers are sent; the client reconnects with Last-Event-ID
		}
		// Nothing goes out on a revoked token: its validity is checked
		// before each delivery and every tokenRecheck while idle.
		if len(batch) > 0 || time.Since(lastCheck) >= tokenRecheck {
			if err := s.parties.CheckLive(ctx, p); err != nil {
				if !errors.Is(err, party.ErrUnauthenticated) && ctx.Err() == nil {
					s.log.ErrorContext(ctx, "checking an event stream's token", "party", p.PartyID, "err", err)
				}
				// The stream ends; the client's reconnect gets the 401
				// of any revoked token.
				return nil
			}
			lastCheck = time.Now()
		}
	}
}
