package web

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/party"
)

// Signing happens with the party's own key, which the server never holds:
// the page shows the version and hash under review, the exact CLI command
// that signs them, and a form taking a signed statement made elsewhere
// (the CLI, an HSM's tooling). Whatever is pasted goes through
// exchange.Sign or exchange.Contest, the API's checks: the signer must be
// the caller, with its registered key, over the document as stored.

// reviewData is what an agreement page shows of a version awaiting a
// countersignature.
type reviewData struct {
	Pending       bool // a version awaits a countersignature
	YoursToSign   bool // …and the caller is the one to give it
	Version       int
	Hash          string
	ProposedBy    string
	Terms         docView
	Previous      int // the version compared with; 0 for a first proposal
	Changes       []change
	Command       string
	SignURL, CSRF string
}

// change is one term that differs between two versions.
type change struct{ Term, Before, After string }

func (d *Dashboard) review(ctx context.Context, a exchange.Agreement, p party.Principal, csrf string) reviewData {
	doc := a.Awaiting()
	if doc == nil {
		return reviewData{}
	}
	h := doc.Hash()
	rv := reviewData{Pending: true, Version: doc.Version, Hash: hex.EncodeToString(h[:]), Terms: termsOf(doc),
		SignURL: "/ui/agreements/" + url.PathEscape(a.Record.ID) + "/signatures", CSRF: csrf}
	for _, sg := range a.Signatures {
		if sg.Version == doc.Version && (sg.Action == agreement.ActionPropose || sg.Action == agreement.ActionAmend) {
			rv.ProposedBy = d.partyName(ctx, sg.PartyID)
			rv.YoursToSign = sg.PartyID != p.PartyID
		}
	}
	var prev *agreement.Document
	for _, v := range a.Versions {
		if v.Version < doc.Version && (prev == nil || v.Version > prev.Version) {
			prev = v
		}
	}
	if prev != nil {
		rv.Previous, rv.Changes = prev.Version, diffDocuments(prev, doc)
	}
	rv.Command = fmt.Sprintf("parley agreement sign %s --version %d --hash %s", a.Record.ID, doc.Version, rv.Hash)
	return rv
}

// termsOf pre-formats a document's terms for people.
func termsOf(doc *agreement.Document) docView {
	unmarked := "refused"
	if doc.Scope.AllowUnmarked {
		unmarked = "accepted"
	}
	window := "credits never lapse"
	if doc.Reciprocity.Window > 0 {
		window = doc.Reciprocity.Window.String()
	}
	return docView{Types: doc.Scope.Types, MaxTLP: doc.Scope.MaxTLP.Label(), Unmarked: unmarked,
		Ratio: fmt.Sprintf("%g readable per %g contributed", doc.Reciprocity.Get, doc.Reciprocity.Give),
		Grace: doc.Reciprocity.Grace, Window: window, Escrow: doc.EscrowDeadline.String(),
		NotBefore: doc.NotBefore, NotAfter: doc.NotAfter, Acknowledge: doc.RequestDeadlines.Acknowledge.String(),
		Fulfil: doc.RequestDeadlines.Fulfil.String(), TerminationNotice: doc.TerminationNotice.String()}
}

// diffDocuments lists every term that differs between two versions, from
// their canonical JSON (the bytes that are signed), so nothing that changes
// what is signed can be left out of the comparison. The version number and
// the supersedes link always change and are not listed.
func diffDocuments(before, after *agreement.Document) []change {
	a, b := flatten(before.Canonical()), flatten(after.Canonical())
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []change
	for k := range keys {
		if k == "version" || k == "supersedes" || a[k] == b[k] {
			continue
		}
		out = append(out, change{Term: k, Before: orAbsent(a[k]), After: orAbsent(b[k])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Term < out[j].Term })
	return out
}

func orAbsent(s string) string {
	if s == "" {
		return "(not set)"
	}
	return s
}

// flatten maps each leaf of a JSON document to its path ("scope.max_tlp",
// "parties[1].key_id") and its JSON text.
func flatten(raw []byte) map[string]string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	out := map[string]string{}
	if dec.Decode(&v) != nil {
		return out
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, c)
			}
		case []any:
			if len(x) > 0 {
				if _, scalar := x[0].(string); scalar {
					// A list of names reads best as one value.
					b, _ := json.Marshal(x)
					out[path] = string(b)
					return
				}
			}
			for i, c := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		default:
			b, _ := json.Marshal(x)
			out[path] = string(b)
		}
	}
	walk("", v)
	return out
}

// maxStatement bounds a pasted signed statement; real ones are under 1 KiB.
const maxStatement = 4 << 10

// signAgreement takes a countersignature (or suspension, resumption,
// termination) the party made with its own key.
func (d *Dashboard) signAgreement(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	raw := strings.TrimSpace(r.PostForm.Get("signature"))
	var sig agreement.Signature
	if len(raw) > maxStatement || json.Unmarshal([]byte(raw), &sig) != nil {
		d.showError(w, r, http.StatusBadRequest, `Paste the signed statement as JSON, as "parley agreement sign … --print" or your own tooling writes it.`)
		return
	}
	if _, _, err := d.o.Exchange.Sign(r.Context(), s.principal, id, sig); err != nil {
		d.refuse(w, r, err, agreementSteps)
		return
	}
	http.Redirect(w, r, withDone("/ui/agreements/"+url.PathEscape(id), "signed"), http.StatusSeeOther)
}

// contestRow is one contest on an agreement page.
type contestRow struct {
	ID, ObjectID, Reason, By, Against string
	Weight                            float64
	Filed, Withdrawn                  time.Time
	Yours                             bool
}

type contestsData struct {
	Window  string // the agreement's contest window; "" when it sets none
	Rows    []contestRow
	Command string
	URL     string
	CSRF    string
}

func (d *Dashboard) contests(ctx context.Context, a exchange.Agreement, p party.Principal, csrf string) (contestsData, error) {
	out := contestsData{URL: "/ui/agreements/" + url.PathEscape(a.Record.ID) + "/contests", CSRF: csrf,
		Command: fmt.Sprintf(`parley contest file %s OBJECT-ID --reason "why it is worthless"`, a.Record.ID)}
	if doc := a.Status.Document; doc != nil && doc.Reciprocity.ContestWindow > 0 {
		out.Window = doc.Reciprocity.ContestWindow.String()
	}
	cs, err := d.o.Exchange.Contests(ctx, p, a.Record.ID)
	if err != nil {
		return out, err
	}
	n := d.namer(ctx, nil)
	for _, c := range cs {
		row := contestRow{ID: c.ID, ObjectID: c.ObjectID, Reason: c.Reason, By: n.name(c.Contester), Against: n.name(c.Contributor),
			Weight: c.Weight, Filed: c.FiledAt, Yours: c.Contester == p.PartyID}
		if c.WithdrawnAt != nil {
			row.Withdrawn = *c.WithdrawnAt
		}
		out.Rows = append(out.Rows, row)
	}
	return out, nil
}

// contest files a contest the party signed with its own key.
func (d *Dashboard) contest(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	raw := strings.TrimSpace(r.PostForm.Get("statement"))
	var sc agreement.SignedContest
	if len(raw) > maxStatement || json.Unmarshal([]byte(raw), &sc) != nil {
		d.showError(w, r, http.StatusBadRequest, `Paste the signed contest as JSON, as "parley contest file … --print" or your own tooling writes it.`)
		return
	}
	if _, err := d.o.Exchange.Contest(r.Context(), s.principal, id, sc); err != nil {
		d.refuse(w, r, err, agreementSteps)
		return
	}
	http.Redirect(w, r, withDone("/ui/agreements/"+url.PathEscape(id), "contested"), http.StatusSeeOther)
}
