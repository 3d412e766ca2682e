package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/report"
)

// The joint report on an agreement over a period (package report): the
// page, its JSON for the party's own tools, and its stylesheet. Signing
// stays with the party's key on its own machine (`parley report sign`):
// the page shows the command and who has signed.

// reportPages are the templates of these pages.
var reportPages = []string{"report"}

func (d *Dashboard) reportRoutes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /ui/agreements/{id}/report":      d.authed(d.reportPage),
		"GET /ui/agreements/{id}/report.json": d.authed(d.reportJSON),
		"GET /ui/report.css":                  http.HandlerFunc(serveReportCSS),
	}
}

func serveReportCSS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Write(report.Stylesheet())
}

type reportData struct {
	ID, From, To string // the period as the form shows it (YYYY-MM-DD)
	Body         template.HTML
	JSONURL      string
	Agreement    string // link back
	Problem      string
}

// period reads from and to, defaulting to the last 30 days up to the end
// of today (UTC).
func (d *Dashboard) period(r *http.Request) (string, string) {
	q := r.URL.Query()
	from, to := q.Get("from"), q.Get("to")
	end := d.now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	if to == "" {
		to = end.Format("2006-01-02")
	}
	if from == "" {
		from = end.AddDate(0, 0, -30).Format("2006-01-02")
	}
	return from, to
}

func (d *Dashboard) buildReport(w http.ResponseWriter, r *http.Request, s session) (*report.Report, string, string, bool) {
	id := r.PathValue("id")
	fromS, toS := d.period(r)
	from, to, err := report.ParsePeriod(fromS, toS)
	if err != nil {
		d.showError(w, r, http.StatusBadRequest, "That period cannot be reported on: "+clientText(err, fault.Invalid)+".")
		return nil, "", "", false
	}
	rep, err := d.o.Reports.Build(r.Context(), s.principal, id, from, to)
	switch {
	case errors.Is(err, exchange.ErrNotFound):
		d.notFound(w, r)
		return nil, "", "", false
	case err != nil:
		d.fail(w, r, err)
		return nil, "", "", false
	}
	return rep, fromS, toS, true
}

func (d *Dashboard) reportPage(w http.ResponseWriter, r *http.Request, s session) {
	rep, from, to, ok := d.buildReport(w, r, s)
	if !ok {
		return
	}
	var b bytes.Buffer
	if err := report.Body(&b, report.NewView(rep, d.now())); err != nil {
		d.fail(w, r, err)
		return
	}
	id := rep.Facts.Agreement
	q := url.Values{"from": {from}, "to": {to}}.Encode()
	data := reportData{ID: id, From: from, To: to, Body: template.HTML(b.String()), // rendered by html/template above
		JSONURL: "/ui/agreements/" + url.PathEscape(id) + "/report.json?" + q, Agreement: "/ui/agreements/" + url.PathEscape(id)}
	d.render(w, r, http.StatusOK, "report", page{Title: "Joint report", Party: &s.principal, CSRF: s.csrf, Data: data})
}

func (d *Dashboard) reportJSON(w http.ResponseWriter, r *http.Request, s session) {
	rep, _, _, ok := d.buildReport(w, r, s)
	if !ok {
		return
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		d.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="report.json"`)
	w.Write(append(b, '\n'))
}
