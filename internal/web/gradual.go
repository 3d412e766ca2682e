package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/escrow"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

// Gradual release (docs/federation.md): a case between two nodes without
// an escrow node moves in chunks, each side confirming the other's chunk k
// before its own node sends the next. A confirmation or rejection is a
// verdict signed with the party's own key, over the chunk's ciphertext
// hash, after the party opened the chunk with its sealing key: the server
// holds neither key, so the browser cannot make it. The page says so,
// shows the exact command that opens the chunk and signs the verdict, and
// takes the verdict that command prints (--print), which goes through
// escrow.JudgeChunk, the API's own checks (the next chunk, the same hash,
// the party's registered key).

// chunkSide is one side's chunks of a gradual case as a page shows them.
type chunkSide struct {
	Who                   string // "you" or the other party's name
	Committed             bool
	HandedOver, Confirmed int
	Rows                  []chunkRow
}

type chunkRow struct {
	Index              int
	SHA256             string
	Moved, ConfirmedAt time.Time
	Held               bool
}

// gradualData is the gradual part of a handover page.
type gradualData struct {
	Chunks        int
	Yours, Theirs chunkSide
	StoppedBy     string
	StopReason    string
	// Due is the other side's chunk that waits for the caller's verdict
	// (0 when none does: the next step is not the caller's); DueSHA256 its
	// ciphertext's hash, which the verdict must name.
	Due            int
	DueSHA256      string
	Waiting        string // whose step it is, when it is not the caller's
	ConfirmCommand string
	RejectCommand  string
	DepositCommand string
	VerdictURL     string
}

// gradualOf reads the caller's view of gradual case v; nil for a case
// released in one step.
func gradualOf(v escrow.View, p party.Principal, counterpart string, now time.Time) *gradualData {
	g := v.Gradual
	if g == nil {
		return nil
	}
	theirs := v.Proposer
	if theirs == p.PartyID {
		theirs = v.Counterpart
	}
	out := &gradualData{Chunks: g.Chunks, StoppedBy: g.StoppedBy, StopReason: g.StopReason,
		Yours: chunkSide{Who: "you"}, Theirs: chunkSide{Who: counterpart},
		VerdictURL:     "/ui/handovers/" + url.PathEscape(v.ID) + "/chunk-verdicts",
		ConfirmCommand: "parley handover confirm " + v.ID,
		DepositCommand: fmt.Sprintf("parley handover deposit %s FILE --sealed", v.ID),
		RejectCommand:  fmt.Sprintf(`parley handover reject %s --reason "what is wrong with it"`, v.ID)}
	for _, pid := range g.Committed {
		if pid == p.PartyID {
			out.Yours.Committed = true
		} else if pid == theirs {
			out.Theirs.Committed = true
		}
	}
	for _, c := range g.List {
		side := &out.Yours
		if c.Depositor == theirs {
			side = &out.Theirs
		} else if c.Depositor != p.PartyID {
			continue
		}
		side.Rows = append(side.Rows, chunkRow{Index: c.Index, SHA256: c.SHA256, Moved: c.MovedAt, ConfirmedAt: c.Confirmed, Held: c.Held})
		if !c.MovedAt.IsZero() {
			side.HandedOver++
		}
		if !c.Confirmed.IsZero() {
			side.Confirmed++
		}
	}
	// The chunk due for the caller's verdict, as escrow.JudgeChunk decides
	// it: the other side's next unconfirmed chunk, once it arrived, while
	// the case runs.
	open := v.State == store.HandoverAccepted && g.StoppedBy == "" && now.Before(v.Deadline)
	next := out.Theirs.Confirmed + 1
	for _, c := range out.Theirs.Rows {
		if open && c.Index == next && !c.Moved.IsZero() && c.ConfirmedAt.IsZero() {
			out.Due, out.DueSHA256 = next, c.SHA256
		}
	}
	switch {
	case out.Due != 0 || !open:
	case !out.Yours.Committed:
		out.Waiting = "Deposit your chunks (sealed, with your signed commitment) to start the exchange."
	case !out.Theirs.Committed:
		out.Waiting = fmt.Sprintf("Waiting for %s to deposit its chunks.", counterpart)
	case out.Yours.Confirmed < out.Yours.HandedOver:
		out.Waiting = fmt.Sprintf("Waiting for %s to open and confirm your chunk %d.", counterpart, out.Yours.Confirmed+1)
	case out.Theirs.Confirmed < g.Chunks:
		out.Waiting = fmt.Sprintf("Waiting for %s's chunk %d to arrive.", counterpart, next)
	}
	return out
}

// Sides are the caller's chunks, then the other side's.
func (g *gradualData) Sides() []chunkSide { return []chunkSide{g.Yours, g.Theirs} }

// judgeChunk records the caller's verdict on the other side's next chunk:
// the signed statement `parley handover confirm|reject ID --print` wrote.
// The button pressed must say what the statement says, so a statement
// pasted under the wrong button is refused rather than taken as the other
// verdict.
func (d *Dashboard) judgeChunk(w http.ResponseWriter, r *http.Request, s session) {
	if d.o.Handovers == nil {
		d.notFound(w, r)
		return
	}
	id := r.PathValue("id")
	action := r.PostForm.Get("action")
	index, err := strconv.Atoi(r.PostForm.Get("index"))
	if (action != agreement.ChunkConfirm && action != agreement.ChunkReject) || err != nil {
		d.showError(w, r, http.StatusBadRequest, "Choose to confirm or to reject the chunk shown on the handover's page.")
		return
	}
	raw := strings.TrimSpace(r.PostForm.Get("verdict"))
	var v agreement.ChunkVerdict
	if len(raw) > maxStatement || json.Unmarshal([]byte(raw), &v) != nil {
		d.showError(w, r, http.StatusBadRequest, fmt.Sprintf(`Paste the signed verdict as JSON, as "parley handover %s %s --print" writes it.`, action, id))
		return
	}
	if v.Action != action || v.Index != index {
		d.showError(w, r, http.StatusBadRequest, fmt.Sprintf("The pasted verdict is to %s chunk %d; this button is to %s chunk %d. Nothing was recorded.",
			v.Action, v.Index, action, index))
		return
	}
	res, err := d.o.Handovers.JudgeChunk(r.Context(), s.principal, id, []byte(raw))
	if err != nil {
		d.refuse(w, r, err, caseSteps)
		return
	}
	done := "chunk_confirmed"
	switch {
	case action == agreement.ChunkReject:
		done = "chunk_rejected"
	case res.Handover.State == store.HandoverReleased:
		done = "chunks_released"
	}
	http.Redirect(w, r, withDone("/ui/handovers/"+url.PathEscape(id), done), http.StatusSeeOther)
}
