package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/stix"
	"github.com/parley-cti/parley/internal/store"
	"github.com/parley-cti/parley/internal/wire"
)

// The intelligence pages: what a party received and gave under its
// agreements, filtered and searched (/ui/intel), one object with its
// versions, provenance and relationships (/ui/objects/{id}), and any
// selection as a STIX bundle (/ui/intel/export). Every read goes through
// exchange.Intelligence or exchange.Object, which read each collection as
// TAXII does: this file decides nothing about access.

// intelRoutes are the intelligence pages' routes.
func (d *Dashboard) intelRoutes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET /ui/intel":        d.authed(d.intel),
		"GET /ui/intel/export": d.authed(d.intelExport),
		"GET /ui/objects/{id}": d.authed(d.object),
	}
}

// intelPages are the templates of these pages.
var intelPages = []string{"intel", "object"}

// Bounds of the intelligence pages.
const (
	intelPageSize = 50    // objects per listing page
	exportMax     = 10000 // objects per export
	exportChunk   = 1000  // objects read per step of an export
	maxTextLen    = 256   // search text
	maxLabelLen   = 250   // a label filter
	maxExportIDs  = 1000  // ids picked for one export
	exportIDBatch = 200   // picked ids read at once
)

// tlpChoices maps the TLP filter's values to the standard marking
// definitions of that level (TLP 1.0 and 2.0).
var tlpChoices = map[string][]string{
	"clear":        {stix.TLPWhite, stix.TLP2Clear},
	"green":        {stix.TLPGreen, stix.TLP2Green},
	"amber":        {stix.TLPAmber, stix.TLP2Amber},
	"amber+strict": {stix.TLP2AmberStrict},
	"red":          {stix.TLPRed, stix.TLP2Red},
}

var tlpNames = []string{"CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"}

// stixTypes are the types the type filter offers.
var stixTypes = []string{"attack-pattern", "campaign", "course-of-action", "grouping", "identity", "indicator", "infrastructure",
	"intrusion-set", "location", "malware", "malware-analysis", "note", "observed-data", "opinion", "report", "threat-actor",
	"tool", "vulnerability", "relationship", "sighting", "artifact", "autonomous-system", "domain-name", "email-addr",
	"email-message", "file", "ipv4-addr", "ipv6-addr", "mac-addr", "network-traffic", "url", "user-account", "x509-certificate"}

var typeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,249}$`)

// intelFilter is a listing's filter as the URL carries it.
type intelFilter struct {
	Direction, Agreement, Counterpart, Type, Label, TLP, Text, From, To string
}

// errFilter is a filter the page cannot use; its text is for the user.
type errFilter string

func (e errFilter) Error() string { return string(e) }

// parseIntel reads the filter of a listing or an export from q.
func parseIntel(q url.Values) (intelFilter, exchange.IntelQuery, error) {
	f := intelFilter{Direction: q.Get("dir"), Agreement: q.Get("agreement"), Counterpart: q.Get("counterpart"), Type: q.Get("type"),
		Label: q.Get("label"), TLP: q.Get("tlp"), Text: strings.TrimSpace(q.Get("q")), From: q.Get("from"), To: q.Get("to")}
	iq := exchange.IntelQuery{Direction: f.Direction, Agreement: f.Agreement, Counterpart: f.Counterpart}
	switch f.Direction {
	case "", exchange.Received, exchange.Given:
	default:
		return f, iq, errFilter("Direction must be received or given.")
	}
	if f.Type != "" {
		if !typeRE.MatchString(f.Type) {
			return f, iq, errFilter("A STIX type is lower-case letters, digits and hyphens.")
		}
		iq.Search.Types = []string{f.Type}
	}
	if f.Label != "" {
		if len(f.Label) > maxLabelLen {
			return f, iq, errFilter(fmt.Sprintf("A label is at most %d characters.", maxLabelLen))
		}
		iq.Search.Labels = []string{f.Label}
	}
	if f.TLP != "" {
		ids, ok := tlpChoices[f.TLP]
		if !ok {
			return f, iq, errFilter("TLP must be clear, green, amber, amber+strict or red.")
		}
		iq.Search.Markings = ids
	}
	if len(f.Text) > maxTextLen {
		return f, iq, errFilter(fmt.Sprintf("The search text is at most %d characters.", maxTextLen))
	}
	iq.Search.Text = f.Text
	day := func(s, name string) (time.Time, error) {
		if s == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return t, errFilter(name + " must be a date, YYYY-MM-DD.")
		}
		return t, nil
	}
	var err error
	if iq.Search.AddedFrom, err = day(f.From, "From"); err != nil {
		return f, iq, err
	}
	to, err := day(f.To, "To")
	if err != nil {
		return f, iq, err
	}
	if !to.IsZero() {
		iq.Search.AddedBefore = to.AddDate(0, 0, 1) // the whole day
	}
	if c := q.Get("before"); c != "" {
		pos, ok := parseCursor(c)
		if !ok {
			return f, iq, errFilter("The page link is damaged; start again from the first page.")
		}
		iq.Search.Before = pos
	}
	return f, iq, nil
}

// A cursor is the position of the last object of the page before:
// date_added in microseconds and seq.
func parseCursor(s string) (store.Position, bool) {
	a, b, ok := strings.Cut(s, ".")
	if !ok {
		return store.Position{}, false
	}
	us, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || us < 0 || seq < 0 {
		return store.Position{}, false
	}
	return store.Position{DateAdded: time.UnixMicro(us).UTC(), Seq: seq}, true
}

func cursorOf(o store.Object) string {
	return strconv.FormatInt(o.DateAdded.UnixMicro(), 10) + "." + strconv.FormatInt(o.Seq, 10)
}

// summary is what a listing or a graph shows of one object, read from its
// JSON.
type summary struct {
	ID, Type, Name, TLP string
	Labels              []string
	URL                 string
}

// stixFields are the members a summary reads.
type stixFields struct {
	Name             string   `json:"name"`
	Value            any      `json:"value"`
	RelationshipType string   `json:"relationship_type"`
	SourceRef        string   `json:"source_ref"`
	TargetRef        string   `json:"target_ref"`
	Labels           []string `json:"labels"`
	Markings         []string `json:"object_marking_refs"`
	Granular         []struct {
		Ref string `json:"marking_ref"`
	} `json:"granular_markings"`
}

func summarize(o store.Object) (summary, stixFields) {
	var f stixFields
	_ = json.Unmarshal(o.Raw, &f) // stored objects were validated; a failure leaves the fields empty
	s := summary{ID: o.ID, Type: o.Type, Name: f.Name, Labels: f.Labels, URL: objectURL(o.ID)}
	if s.Name == "" && f.Value != nil {
		s.Name = fmt.Sprint(f.Value)
	}
	if s.Name == "" && f.RelationshipType != "" {
		s.Name = f.RelationshipType
	}
	if s.Name == "" {
		s.Name = o.ID
	}
	level := -1
	for _, m := range append(slices.Clone(f.Markings), granularRefs(f)...) {
		if l, ok := stix.TLPLevel(m); ok && l > level {
			level = l
		}
	}
	if level >= 0 {
		s.TLP = tlpNames[level]
	}
	return s, f
}

func granularRefs(f stixFields) []string {
	var out []string
	for _, g := range f.Granular {
		if g.Ref != "" {
			out = append(out, g.Ref)
		}
	}
	return out
}

func objectURL(id string) string { return "/ui/objects/" + url.PathEscape(id) }

type intelRow struct {
	summary
	Direction, Kind, Counterpart, Agreement, AgreementURL string
	Added                                                 time.Time
}

type intelData struct {
	Filter                       intelFilter
	Directions, Agreements       []option
	Counterparts, Types, TLPs    []option
	Rows                         []intelRow
	Next, First, Export, Problem string
	Searching, Paged             bool
	Hidden                       []property // the filter, for the export form
	PageSize, ExportMax          int
	Query                        string // the filter as a query string, for the export form
}

func (d *Dashboard) intel(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	f, iq, ferr := parseIntel(q)
	srcs, err := d.o.Exchange.IntelSources(r.Context(), s.principal)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	data := intelData{Filter: f, PageSize: intelPageSize, ExportMax: exportMax, Searching: iq.Search.Indexed()}
	names := map[string]string{}
	seenAg, seenCp := map[string]bool{}, map[string]bool{}
	data.Agreements = []option{{Value: "", Label: "every agreement", Selected: f.Agreement == ""}}
	data.Counterparts = []option{{Value: "", Label: "anyone", Selected: f.Counterpart == ""}}
	for _, src := range srcs {
		if names[src.Counterpart] == "" {
			names[src.Counterpart] = d.partyName(r.Context(), src.Counterpart)
		}
		if !seenAg[src.Agreement] {
			seenAg[src.Agreement] = true
			data.Agreements = append(data.Agreements, option{Value: src.Agreement, Label: "with " + names[src.Counterpart] + " · " + shorten(src.Agreement, 24),
				Selected: src.Agreement == f.Agreement})
		}
		if !seenCp[src.Counterpart] {
			seenCp[src.Counterpart] = true
			data.Counterparts = append(data.Counterparts, option{Value: src.Counterpart, Label: names[src.Counterpart], Selected: src.Counterpart == f.Counterpart})
		}
	}
	data.Directions = options(f.Direction, "", "received and given", exchange.Received, "received", exchange.Given, "given")
	data.Types = []option{{Value: "", Label: "any type", Selected: f.Type == ""}}
	for _, t := range stixTypes {
		data.Types = append(data.Types, option{Value: t, Label: t, Selected: t == f.Type})
	}
	if f.Type != "" && !slices.Contains(stixTypes, f.Type) {
		data.Types = append(data.Types, option{Value: f.Type, Label: f.Type, Selected: true})
	}
	data.TLPs = options(f.TLP, "", "any TLP", "clear", "TLP:CLEAR (or WHITE)", "green", "TLP:GREEN", "amber", "TLP:AMBER",
		"amber+strict", "TLP:AMBER+STRICT", "red", "TLP:RED")
	base := url.Values{}
	for k, v := range map[string]string{"dir": f.Direction, "agreement": f.Agreement, "counterpart": f.Counterpart, "type": f.Type,
		"label": f.Label, "tlp": f.TLP, "q": f.Text, "from": f.From, "to": f.To} {
		if v != "" {
			base.Set(k, v)
		}
	}
	data.Query = base.Encode()
	data.Paged = q.Get("before") != ""
	for _, k := range []string{"dir", "agreement", "counterpart", "type", "label", "tlp", "q", "from", "to"} {
		if v := base.Get(k); v != "" {
			data.Hidden = append(data.Hidden, property{Name: k, Value: v})
		}
	}
	data.First = "/ui/intel"
	if data.Query != "" {
		data.First += "?" + data.Query
	}
	data.Export = "/ui/intel/export"
	if data.Query != "" {
		data.Export += "?" + data.Query
	}
	status := http.StatusOK
	if ferr != nil {
		var fe errFilter
		if !errors.As(ferr, &fe) {
			d.fail(w, r, ferr)
			return
		}
		status, data.Problem = http.StatusBadRequest, string(fe)
	} else {
		iq.Search.Limit = intelPageSize
		pg, err := d.o.Exchange.Intelligence(r.Context(), s.principal, iq)
		if err != nil {
			d.fail(w, r, err)
			return
		}
		for _, o := range pg.Objects {
			sum, _ := summarize(o.Object)
			data.Rows = append(data.Rows, intelRow{summary: sum, Direction: o.Source.Direction, Kind: o.Source.Kind,
				Counterpart: names[o.Source.Counterpart], Agreement: o.Source.Agreement,
				AgreementURL: "/ui/agreements/" + url.PathEscape(o.Source.Agreement), Added: o.DateAdded})
		}
		if pg.More && len(pg.Objects) > 0 {
			next := url.Values{}
			for k, v := range base {
				next[k] = v
			}
			next.Set("before", cursorOf(pg.Objects[len(pg.Objects)-1].Object))
			data.Next = "/ui/intel?" + next.Encode()
		}
	}
	d.render(w, r, status, "intel", page{Title: "Intelligence", Party: &s.principal, CSRF: s.csrf, Data: data})
}

// intelExport sends the objects the filter selects, or the ids picked
// among them (id=…), as one STIX 2.1 bundle to download: the last version
// of each, at most exportMax. The bundle is written as it is read; if a
// read fails part-way the connection is cut, so that a truncated download
// never looks complete.
func (d *Dashboard) intelExport(w http.ResponseWriter, r *http.Request, s session) {
	q := r.URL.Query()
	_, iq, err := parseIntel(q)
	var fe errFilter
	if errors.As(err, &fe) {
		d.showError(w, r, http.StatusBadRequest, string(fe))
		return
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	ids := q["id"]
	if len(ids) > maxExportIDs {
		d.showError(w, r, http.StatusBadRequest, fmt.Sprintf("Pick at most %d objects to export, or export the whole filter.", maxExportIDs))
		return
	}
	// Picked ids are read a few hundred at a time, each batch by the id
	// index; a filter is read page by page.
	var batches [][]string
	for lo := 0; lo < len(ids); lo += exportIDBatch {
		batches = append(batches, ids[lo:min(lo+exportIDBatch, len(ids))])
	}
	next := func() bool {
		if len(ids) == 0 {
			return false
		}
		if len(batches) == 0 {
			return false
		}
		iq.Search.IDs, batches = batches[0], batches[1:]
		iq.Search.Before = store.Position{}
		return true
	}
	next()
	iq.Search.Before = store.Position{}
	iq.Search.Limit = exportChunk
	first, err := d.o.Exchange.Intelligence(r.Context(), s.principal, iq)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", wire.MediaSTIX)
	h.Set("Content-Disposition", `attachment; filename="parley-export-`+d.now().Format("20060102-150405")+`.json"`)
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, `{"type":"bundle","id":"bundle--%s","objects":[`, party.NewID(""))
	seen := map[string]bool{}
	n := 0
	pg := first
	for {
		for _, o := range pg.Objects {
			key := o.ID + "@" + o.Version.String()
			if seen[key] || n == exportMax {
				continue
			}
			seen[key] = true
			if n > 0 {
				w.Write([]byte(","))
			}
			w.Write(o.Raw)
			n++
		}
		if n >= exportMax {
			break
		}
		if pg.More && len(pg.Objects) > 0 {
			last := pg.Objects[len(pg.Objects)-1]
			iq.Search.Before = store.Position{DateAdded: last.DateAdded, Seq: last.Seq}
		} else if !next() {
			break
		}
		if pg, err = d.o.Exchange.Intelligence(r.Context(), s.principal, iq); err != nil {
			d.log.ErrorContext(r.Context(), "export failed part-way", "err", err)
			panic(http.ErrAbortHandler)
		}
	}
	w.Write([]byte("]}\n"))
}

// objectData is the object page.
type objectData struct {
	ID, Type, Name, TLP string
	Labels              []string
	Markings            []markingRow
	Properties          []property
	JSON                string
	Copies              []copyRow
	Graph               graph
	Related             []relatedRow
	Export              string
}

type markingRow struct{ ID, Name string }

type property struct{ Name, Value string }

type copyRow struct {
	Direction, Kind, Counterpart, Agreement, AgreementURL string
	Ord                                                   int64
	CreditedAt                                            time.Time
	LedgerIndex                                           int64
	LedgerKind                                            string
	Versions                                              []versionRow
}

type versionRow struct {
	Version, Added time.Time
	Last           bool
}

type relatedRow struct {
	summary
	How string
}

func (d *Dashboard) object(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	copies, err := d.o.Exchange.Object(r.Context(), s.principal, id)
	if errors.Is(err, exchange.ErrNotFound) {
		d.notFound(w, r)
		return
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	// The page shows the newest version any copy holds.
	var last store.Object
	for _, c := range copies {
		v := c.Versions[len(c.Versions)-1]
		if last.Raw == nil || v.Version.After(last.Version) {
			last = v
		}
	}
	sum, fields := summarize(last)
	data := objectData{ID: id, Type: last.Type, Name: sum.Name, TLP: sum.TLP, Labels: sum.Labels,
		Export: "/ui/intel/export?" + url.Values{"id": {id}}.Encode()}
	for _, m := range append(slices.Clone(fields.Markings), granularRefs(fields)...) {
		name := "marking definition"
		if l, ok := stix.TLPLevel(m); ok {
			name = "TLP:" + tlpNames[l]
		}
		data.Markings = append(data.Markings, markingRow{ID: m, Name: name})
	}
	var props map[string]json.RawMessage
	if err := json.Unmarshal(last.Raw, &props); err == nil {
		keys := make([]string, 0, len(props))
		for k := range props {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			data.Properties = append(data.Properties, property{Name: k, Value: propertyText(props[k])})
		}
	}
	var pretty strings.Builder
	if raw, err := json.MarshalIndent(json.RawMessage(last.Raw), "", "  "); err == nil {
		pretty.Write(raw)
	}
	data.JSON = pretty.String()
	for _, c := range copies {
		row := copyRow{Direction: c.Source.Direction, Kind: c.Source.Kind, Counterpart: d.partyName(r.Context(), c.Source.Counterpart),
			Agreement: c.Source.Agreement, AgreementURL: "/ui/agreements/" + url.PathEscape(c.Source.Agreement),
			Ord: c.Ord, CreditedAt: c.CreditedAt, LedgerIndex: c.LedgerIndex, LedgerKind: string(c.LedgerKind)}
		for i := len(c.Versions) - 1; i >= 0; i-- {
			v := c.Versions[i]
			row.Versions = append(row.Versions, versionRow{Version: v.Version, Added: v.DateAdded, Last: i == len(c.Versions)-1})
		}
		data.Copies = append(data.Copies, row)
	}
	if data.Graph, data.Related, err = d.relationships(r, s, last, sum); err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "object", page{Title: sum.Type + " " + shorten(sum.Name, 40), Party: &s.principal, CSRF: s.csrf, Data: data})
}

// propertyText renders one top-level property: a string as itself,
// anything else as compact JSON, both cut at 2,000 characters.
func propertyText(raw json.RawMessage) string {
	var str string
	out := string(raw)
	if json.Unmarshal(raw, &str) == nil {
		out = str
	}
	if len(out) > 2000 {
		out = out[:2000] + "…"
	}
	return out
}
