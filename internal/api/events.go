package api

import (
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
)

// events serves GET /api/v1/events as Server-Sent Events. The position to
// resume after comes from Last-Event-ID (or ?after=N). With ?follow=false
// it sends what is stored and ends, for scripts and tests.
func (s *Server) events(w http.ResponseWriter, r *http.Request, p party.Principal) error {
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
	e := s.st
	ctx := r.Context()
	// Read the first batch before committing to a 200, so a failing store
	// still gets a proper error answer.
	batch, err := e.Events().After(ctx, p.PartyID, after, eventBatch)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	poll := time.NewTicker(eventPoll)
	defer poll.Stop()
	lastWrite := time.Now()
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
		if batch, err = e.Events().After(ctx, p.PartyID, after, eventBatch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.ErrorContext(ctx, "reading events", "party", p.PartyID, "err", err)
			return nil // headers are sent; the client reconnects with Last-Event-ID
		}
	}
}
