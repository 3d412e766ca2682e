package agreement

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/parley-cti/parley/internal/canonjson"
	"github.com/parley-cti/parley/internal/fault"
)

// SchemaVersion is the only document schema this package understands.
const SchemaVersion = 1

// DefaultMatchCap is the largest private-set-intersection set a party may
// submit when the document does not say otherwise.
const DefaultMatchCap = 1_000_000

// MaxDocumentSize bounds ParseDocument's input; real agreements are a few KiB.
const MaxDocumentSize = 256 << 10

// Limits that keep every integer exactly representable as an IEEE-754 double,
// so a document survives canonical JSON unchanged.
const (
	maxVersion  = math.MaxInt32
	maxGrace    = 1 << 53
	maxMatchCap = 1 << 40
	maxTextLen  = 256
)

// Document is one version of an agreement between exactly two parties.
//
// Durations are written in JSON as Go duration strings ("72h", "90m",
// "1h30m"); the canonical form uses time.Duration.String ("72h0m0s"). Times
// are RFC 3339 and canonicalized to UTC.
type Document struct {
	SchemaVersion       int
	ID                  string // agreement--<uuid>, the same for every version
	Version             int    // 1, 2, ... each amendment adds one or more
	Parties             [2]Party
	Scope               Scope
	Reciprocity         Terms
	EscrowDeadline      time.Duration // longest a handover may wait for both deposits
	RequestDeadlines    RequestDeadlines
	NotBefore, NotAfter time.Time
	TerminationNotice   time.Duration // a unilateral termination takes effect this long after it is signed
	RequiresCosignature bool
	MatchCap            int64 // largest PSI set size
	Supersedes          int   // the version this one replaces; 0 when none
	// EscrowNode is the verifier key (as `parley node id` prints it) of a
	// third node both parties chose to hold handovers as escrow, in an
	// agreement between two nodes (escrow_node; docs/federation.md). Empty
	// when none is named: then absent from the canonical form, so every
	// document without one keeps its bytes and signatures.
	EscrowNode string
}

// Party names one side of the agreement and the key it signed with.
type Party struct {
	PartyID string `json:"party_id"`
	Name    string `json:"name"`
	KeyID   string `json:"key_id"`
	// Node is the verifier key of the node the party lives on (as
	// `parley node id` prints it) in an agreement between two nodes, and
	// empty in an agreement on one server: absent from the canonical
	// form, so such documents keep their bytes and signatures.
	Node string `json:"node,omitempty"`
}

// CrossNode reports whether the document is between parties on two nodes.
func (d *Document) CrossNode() bool { return d.Parties[0].Node != "" || d.Parties[1].Node != "" }

// Scope limits what may flow under the agreement.
type Scope struct {
	Types         []string // STIX object types, e.g. "indicator"
	MaxTLP        TLP      // highest TLP marking accepted
	AllowUnmarked bool     // "unmarked": "allow" | "refuse"
}

// Terms are the reciprocity terms: a party may read
// floor(Grace + Get/Give × credits) objects, where credits are the weighted
// objects it has contributed (within Window, when set).
type Terms struct {
	Give, Get float64 // the ratio: Get objects readable per Give credits
	Grace     int64
	Window    time.Duration      // 0: credits never lapse
	Weights   map[string]float64 // STIX type -> credits per object; absent types weigh 1
	// Quality is the optional floor per STIX type (reciprocity.quality):
	// objects below it earn no credit (quality.go).
	Quality map[string]QualityFloor
	// ContestWindow (reciprocity.contest_window) is how long after a
	// contribution the receiving party may contest its credit; 0: credits
	// cannot be contested (contest.go).
	ContestWindow time.Duration
}

// Ratio is Get / Give.
func (t Terms) Ratio() float64 { return t.Get / t.Give }

// RequestDeadlines bound the request workflow.
type RequestDeadlines struct {
	Acknowledge time.Duration
	Fulfil      time.Duration
}

// NewID returns a fresh agreement id (agreement--<random UUID>).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return "agreement--" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ValidationError lists every problem found in a document. It wraps
// ErrInvalidDocument, and ErrSelfAgreement when that is one of the problems.
type ValidationError struct {
	Problems []string
	self     bool
}

func (e *ValidationError) Error() string {
	return ErrInvalidDocument.Error() + ": " + strings.Join(e.Problems, "; ")
}

// ClientMessage is the error's text: every problem is written for the
// party that sent the document.
func (e *ValidationError) ClientMessage() (fault.Message, bool) {
	return fault.Message(e.Error()), true
}

// Unwrap lets errors.Is find the sentinels.
func (e *ValidationError) Unwrap() []error {
	if e.self {
		return []error{ErrInvalidDocument, ErrSelfAgreement}
	}
	return []error{ErrInvalidDocument}
}

type problems struct {
	list []string
	self bool
}

func (p *problems) add(format string, args ...any) {
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &ValidationError{Problems: p.list, self: p.self}
}

// ParseDocument decodes and validates an agreement document. Decoding is
// strict: duplicate or unknown fields, wrong types and missing fields are
// refused. The error (a *ValidationError wrapping ErrInvalidDocument) names
// every problem found, by field path.
func ParseDocument(raw []byte) (*Document, error) {
	if len(raw) > MaxDocumentSize {
		return nil, fault.Errorf("%w: document is %d bytes, more than %d", ErrInvalidDocument, len(raw), MaxDocumentSize)
	}
	// canonjson refuses duplicate names, invalid UTF-8 and lone surrogates,
	// which encoding/json would silently accept or repair.
	if _, err := canonjson.Canonicalize(raw); err != nil {
		return nil, fault.Errorf("%w: %v", ErrInvalidDocument, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		return nil, fault.Errorf("%w: %v", ErrInvalidDocument, err)
	}
	var p problems
	root, ok := top.(map[string]any)
	if !ok {
		return nil, fault.Errorf("%w: the document must be a JSON object", ErrInvalidDocument)
	}
	d := decodeDocument(&fields{m: root, p: &p})
	d.check(&p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return d, nil
}

// Validate checks a document built in code against the same rules
// ParseDocument applies.
func (d *Document) Validate() error {
	var p problems
	d.check(&p)
	return p.err()
}

// fields reads one JSON object, recording problems by path and remembering
// which members were used so unknown ones can be named.
type fields struct {
	path string
	m    map[string]any
	used map[string]bool
	p    *problems
}

func (f *fields) name(k string) string {
	if f.path == "" {
		return k
	}
	return f.path + "." + k
}

func (f *fields) get(k string, required bool) (any, bool) {
	if f.used == nil {
		f.used = map[string]bool{}
	}
	f.used[k] = true
	v, ok := f.m[k]
	if !ok && required {
		f.p.add("%s is required", f.name(k))
	}
	return v, ok
}

// finish names members nobody asked for, in sorted order for stable errors.
func (f *fields) finish() {
	var unknown []string
	for k := range f.m {
		if !f.used[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		f.p.add("unknown field %q", f.name(k))
	}
}

func (f *fields) str(k string, required bool) string {
	v, ok := f.get(k, required)
	if !ok {
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		f.p.add("%s must be a string", f.name(k))
	}
	return s
}

func (f *fields) boolean(k string) bool {
	v, ok := f.get(k, false)
	if !ok {
		return false
	}
	b, isBool := v.(bool)
	if !isBool {
		f.p.add("%s must be true or false", f.name(k))
	}
	return b
}

// number returns a finite JSON number.
func (f *fields) number(k string, required bool) (float64, bool) {
	v, ok := f.get(k, required)
	if !ok {
		return 0, false
	}
	return numberValue(f.p, f.name(k), v)
}

func numberValue(p *problems, name string, v any) (float64, bool) {
	n, isNum := v.(json.Number)
	if !isNum {
		p.add("%s must be a number", name)
		return 0, false
	}
	x, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(x, 0) {
		p.add("%s: number %s out of range", name, n)
		return 0, false
	}
	return x, true
}

// integer returns a JSON number holding an integer in [lo, hi].
func (f *fields) integer(k string, required bool, lo, hi int64) (int64, bool) {
	x, ok := f.number(k, required)
	if !ok {
		return 0, false
	}
	if x != math.Trunc(x) {
		f.p.add("%s must be a whole number", f.name(k))
		return 0, false
	}
	if x < float64(lo) || x > float64(hi) {
		f.p.add("%s must be between %d and %d", f.name(k), lo, hi)
		return 0, false
	}
	return int64(x), true
}

func (f *fields) object(k string, required bool) *fields {
	v, ok := f.get(k, required)
	if !ok {
		return nil
	}
	m, isObj := v.(map[string]any)
	if !isObj {
		f.p.add("%s must be an object", f.name(k))
		return nil
	}
	return &fields{path: f.name(k), m: m, p: f.p}
}

func (f *fields) duration(k string, required bool) (time.Duration, bool) {
	s := f.str(k, required)
	if s == "" {
		if _, present := f.m[k]; present {
			f.p.add("%s must not be empty", f.name(k))
		}
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		f.p.add("%s: %q is not a duration like \"72h\" or \"30m\"", f.name(k), s)
		return 0, false
	}
	return d, true
}

func (f *fields) timestamp(k string) time.Time {
	s := f.str(k, true)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		f.p.add("%s: %q is not an RFC 3339 time", f.name(k), s)
		return time.Time{}
	}
	return t.UTC()
}

func decodeDocument(f *fields) *Document {
	d := &Document{MatchCap: DefaultMatchCap}
	if v, ok := f.integer("schema_version", true, 0, math.MaxInt32); ok {
		d.SchemaVersion = int(v)
	}
	d.ID = f.str("id", true)
	if v, ok := f.integer("version", true, 1, maxVersion); ok {
		d.Version = int(v)
	}
	if v, ok := f.get("parties", true); ok {
		list, isList := v.([]any)
		switch {
		case !isList:
			f.p.add("parties must be an array")
		case len(list) != 2:
			f.p.add("parties: an agreement has exactly two parties, not %d", len(list))
		default:
			for i, item := range list {
				m, isObj := item.(map[string]any)
				if !isObj {
					f.p.add("parties[%d] must be an object", i)
					continue
				}
				pf := &fields{path: fmt.Sprintf("parties[%d]", i), m: m, p: f.p}
				d.Parties[i] = Party{PartyID: pf.str("party_id", true), Name: pf.str("name", true), KeyID: pf.str("key_id", true)}
				if _, ok := m["node"]; ok {
					d.Parties[i].Node = pf.str("node", false)
					if d.Parties[i].Node == "" {
						f.p.add("parties[%d].node must not be empty (omit it for an agreement on one server)", i)
					}
				}
				pf.finish()
			}
		}
	}
	if _, ok := f.m["escrow_node"]; ok {
		d.EscrowNode = f.str("escrow_node", false)
		if d.EscrowNode == "" {
			f.p.add("escrow_node must not be empty (omit it when no escrow node is named)")
		}
	}
	if sf := f.object("scope", true); sf != nil {
		if v, ok := sf.get("types", true); ok {
			list, isList := v.([]any)
			if !isList {
				sf.p.add("scope.types must be an array of STIX type names")
			}
			for i, item := range list {
				s, isStr := item.(string)
				if !isStr {
					sf.p.add("scope.types[%d] must be a string", i)
					continue
				}
				d.Scope.Types = append(d.Scope.Types, s)
			}
			if isList && d.Scope.Types == nil {
				d.Scope.Types = []string{}
			}
		}
		if s := sf.str("max_tlp", true); s != "" {
			t, err := ParseTLP(s)
			if err != nil {
				sf.p.add("scope.max_tlp: %v", err)
				t = TLPClear // named already; keep check from naming it twice
			}
			d.Scope.MaxTLP = t
		}
		switch s := sf.str("unmarked", true); s {
		case "allow":
			d.Scope.AllowUnmarked = true
		case "refuse", "":
		default:
			sf.p.add("scope.unmarked must be \"allow\" or \"refuse\", not %q", s)
		}
		sf.finish()
	}
	if rf := f.object("reciprocity", true); rf != nil {
		decodeRatio(rf, &d.Reciprocity)
		if v, ok := rf.integer("grace", true, 0, maxGrace); ok {
			d.Reciprocity.Grace = v
		}
		if w, ok := rf.duration("window", false); ok {
			d.Reciprocity.Window = w
		}
		// An empty weights object says what its absence says; it parses to
		// no map, as the canonical form (which omits it) does.
		if wf := rf.object("weights", false); wf != nil && len(wf.m) > 0 {
			d.Reciprocity.Weights = map[string]float64{}
			for _, k := range slices.Sorted(maps.Keys(wf.m)) {
				if x, ok := numberValue(wf.p, wf.name(k), wf.m[k]); ok {
					d.Reciprocity.Weights[k] = x
				}
			}
		}
		decodeQuality(rf, &d.Reciprocity)
		if w, ok := rf.duration("contest_window", false); ok {
			d.Reciprocity.ContestWindow = w
		}
		rf.finish()
	}
	d.EscrowDeadline, _ = f.duration("escrow_deadline", true)
	if rd := f.object("request_deadlines", true); rd != nil {
		d.RequestDeadlines.Acknowledge, _ = rd.duration("acknowledge", true)
		d.RequestDeadlines.Fulfil, _ = rd.duration("fulfil", true)
		rd.finish()
	}
	d.NotBefore = f.timestamp("not_before")
	d.NotAfter = f.timestamp("not_after")
	d.TerminationNotice, _ = f.duration("termination_notice", true)
	d.RequiresCosignature = f.boolean("requires_cosignature")
	if v, ok := f.integer("match_cap", false, 1, maxMatchCap); ok {
		d.MatchCap = v
	}
	if v, ok := f.integer("supersedes", false, 1, maxVersion); ok {
		d.Supersedes = int(v)
	}
	f.finish()
	return d
}

// decodeRatio reads "give:get" or {"give": n, "get": m}.
func decodeRatio(rf *fields, t *Terms) {
	v, ok := rf.get("ratio", true)
	if !ok {
		return
	}
	switch r := v.(type) {
	case string:
		give, get, found := strings.Cut(r, ":")
		g1, err1 := strconv.ParseFloat(strings.TrimSpace(give), 64)
		g2, err2 := strconv.ParseFloat(strings.TrimSpace(get), 64)
		if !found || err1 != nil || err2 != nil {
			rf.p.add("reciprocity.ratio: %q is not \"give:get\", e.g. \"1:2\"", r)
			t.Give, t.Get = 1, 1 // keep later checks quiet; the problem is named
			return
		}
		t.Give, t.Get = g1, g2
	case map[string]any:
		of := &fields{path: "reciprocity.ratio", m: r, p: rf.p}
		t.Give, _ = of.number("give", true)
		t.Get, _ = of.number("get", true)
		of.finish()
	default:
		rf.p.add("reciprocity.ratio must be \"give:get\" or {\"give\": n, \"get\": m}")
		t.Give, t.Get = 1, 1
	}
}

// check applies the semantic rules to a decoded or hand-built document.
func (d *Document) check(p *problems) {
	if d.SchemaVersion != SchemaVersion {
		p.add("schema_version: unsupported version %d (this parley understands %d)", d.SchemaVersion, SchemaVersion)
	}
	if !validAgreementID(d.ID) {
		p.add("id: %q is not agreement--<uuid>", d.ID)
	}
	if d.Version < 1 {
		p.add("version must be at least 1")
	}
	for i, pt := range d.Parties {
		if !validText(pt.PartyID) {
			p.add("parties[%d].party_id must be 1 to %d printable characters", i, maxTextLen)
		}
		if !validText(pt.Name) {
			p.add("parties[%d].name must be 1 to %d printable characters", i, maxTextLen)
		}
		if !validKeyID(pt.KeyID) {
			p.add("parties[%d].key_id: %q is not 16 lowercase hex digits", i, pt.KeyID)
		}
		if pt.Node != "" && !validText(pt.Node) {
			p.add("parties[%d].node must be 1 to %d printable characters", i, maxTextLen)
		}
	}
	if a, b := d.Parties[0].Node, d.Parties[1].Node; (a == "") != (b == "") {
		p.add("parties: name the node of both parties (an agreement between two nodes) or of neither (one server)")
	} else if a != "" && a == b {
		p.add("parties: both parties are on node %s; an agreement on one server names no nodes", a)
	}
	if e := d.EscrowNode; e != "" {
		switch {
		case !validText(e):
			p.add("escrow_node must be 1 to %d printable characters", maxTextLen)
		case !d.CrossNode():
			p.add("escrow_node: an agreement on one server names no escrow node (the server holds its handovers)")
		case e == d.Parties[0].Node || e == d.Parties[1].Node:
			p.add("escrow_node: %s is the node of a party; the escrow node must be a third node", e)
		}
	}
	if a, b := d.Parties[0], d.Parties[1]; a.PartyID != "" && a.PartyID == b.PartyID {
		p.add("parties: a party cannot make an agreement with itself")
		p.self = true
	} else if a.KeyID != "" && a.KeyID == b.KeyID {
		p.add("parties: both parties name the same key %s", a.KeyID)
		p.self = true
	}
	if len(d.Scope.Types) == 0 {
		p.add("scope.types must list at least one STIX type")
	}
	seen := map[string]bool{}
	for _, t := range d.Scope.Types {
		if !ValidSTIXType(t) {
			p.add("scope.types: %q is not a STIX type name", t)
		}
		if seen[t] {
			p.add("scope.types: %q is listed twice", t)
		}
		seen[t] = true
	}
	if d.Scope.MaxTLP < TLPClear || d.Scope.MaxTLP > TLPRed {
		p.add("scope.max_tlp is not a TLP level")
	}
	r := d.Reciprocity
	switch {
	case math.IsNaN(r.Give) || math.IsNaN(r.Get) || math.IsInf(r.Give, 0) || math.IsInf(r.Get, 0):
		p.add("reciprocity.ratio must be finite")
	case r.Give <= 0:
		p.add("reciprocity.ratio: give must be greater than zero")
	case r.Get <= 0:
		p.add("reciprocity.ratio must be greater than zero")
	}
	if r.Grace < 0 || r.Grace > maxGrace {
		p.add("reciprocity.grace must be between 0 and %d", int64(maxGrace))
	}
	if r.Window < 0 {
		p.add("reciprocity.window must be positive")
	}
	for _, k := range slices.Sorted(maps.Keys(r.Weights)) {
		w := r.Weights[k]
		if !(w > 0) || math.IsInf(w, 0) {
			p.add("reciprocity.weights.%s must be a positive number", k)
		}
		if !seen[k] {
			p.add("reciprocity.weights: %q is not in scope.types", k)
		}
	}
	checkQuality(p, r.Quality, seen)
	if r.ContestWindow < 0 {
		p.add("reciprocity.contest_window must be positive")
	}
	if d.EscrowDeadline <= 0 {
		p.add("escrow_deadline must be a positive duration")
	}
	if d.RequestDeadlines.Acknowledge <= 0 {
		p.add("request_deadlines.acknowledge must be a positive duration")
	}
	if d.RequestDeadlines.Fulfil <= 0 {
		p.add("request_deadlines.fulfil must be a positive duration")
	} else if d.RequestDeadlines.Fulfil < d.RequestDeadlines.Acknowledge {
		p.add("request_deadlines.fulfil is shorter than request_deadlines.acknowledge")
	}
	if d.TerminationNotice < 0 {
		p.add("termination_notice must not be negative")
	}
	if !d.NotBefore.IsZero() && !d.NotAfter.IsZero() {
		switch {
		case d.NotAfter.Before(d.NotBefore):
			p.add("not_after is before not_before")
		case d.NotAfter.Equal(d.NotBefore):
			p.add("not_after equals not_before; the agreement would never be in force")
		}
	} else {
		if d.NotBefore.IsZero() {
			p.add("not_before must be set")
		}
		if d.NotAfter.IsZero() {
			p.add("not_after must be set")
		}
	}
	if d.MatchCap < 1 || d.MatchCap > maxMatchCap {
		p.add("match_cap must be between 1 and %d", int64(maxMatchCap))
	}
	if d.Supersedes != 0 && (d.Supersedes < 1 || d.Supersedes >= d.Version) {
		p.add("supersedes must name an earlier version than %d", d.Version)
	}
}

func validAgreementID(id string) bool {
	u, ok := strings.CutPrefix(id, "agreement--")
	if !ok || len(u) != 36 {
		return false
	}
	for i, c := range u {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func validKeyID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func validText(s string) bool {
	if s == "" || len(s) > maxTextLen || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// ValidSTIXType reports whether s is a well-formed STIX 2.1 type name: 3 to
// 250 characters of a-z, 0-9 and '-', no "--", starting with a letter and not
// ending with '-'.
func ValidSTIXType(s string) bool {
	if len(s) < 3 || len(s) > 250 || strings.Contains(s, "--") || s[len(s)-1] == '-' || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// wire returns the normalized JSON form of d.
func (d *Document) wire() map[string]any {
	parties := make([]any, 0, 2)
	for _, pt := range d.Parties {
		m := map[string]any{"party_id": pt.PartyID, "name": pt.Name, "key_id": pt.KeyID}
		if pt.Node != "" {
			m["node"] = pt.Node
		}
		parties = append(parties, m)
	}
	unmarked := "refuse"
	if d.Scope.AllowUnmarked {
		unmarked = "allow"
	}
	types := d.Scope.Types
	if types == nil {
		types = []string{}
	}
	recip := map[string]any{
		"ratio": map[string]any{"give": d.Reciprocity.Give, "get": d.Reciprocity.Get},
		"grace": d.Reciprocity.Grace,
	}
	if d.Reciprocity.Window != 0 {
		recip["window"] = d.Reciprocity.Window.String()
	}
	if len(d.Reciprocity.Weights) > 0 {
		recip["weights"] = d.Reciprocity.Weights
	}
	if q := wireQuality(d.Reciprocity.Quality); q != nil {
		recip["quality"] = q
	}
	if d.Reciprocity.ContestWindow != 0 {
		recip["contest_window"] = d.Reciprocity.ContestWindow.String()
	}
	w := map[string]any{
		"schema_version":       d.SchemaVersion,
		"id":                   d.ID,
		"version":              d.Version,
		"parties":              parties,
		"scope":                map[string]any{"types": types, "max_tlp": d.Scope.MaxTLP.String(), "unmarked": unmarked},
		"reciprocity":          recip,
		"escrow_deadline":      d.EscrowDeadline.String(),
		"request_deadlines":    map[string]any{"acknowledge": d.RequestDeadlines.Acknowledge.String(), "fulfil": d.RequestDeadlines.Fulfil.String()},
		"not_before":           d.NotBefore.UTC().Format(time.RFC3339Nano),
		"not_after":            d.NotAfter.UTC().Format(time.RFC3339Nano),
		"termination_notice":   d.TerminationNotice.String(),
		"requires_cosignature": d.RequiresCosignature,
		"match_cap":            d.MatchCap,
	}
	if d.Supersedes != 0 {
		w["supersedes"] = d.Supersedes
	}
	if d.EscrowNode != "" {
		w["escrow_node"] = d.EscrowNode
	}
	return w
}

// Canonical returns the RFC 8785 encoding of the normalized document: the
// bytes Hash covers. ParseDocument(d.Canonical()) yields an equal document.
// It panics only if d holds a NaN or infinite number, which Validate and
// ParseDocument refuse.
func (d *Document) Canonical() []byte {
	b, err := canonjson.Marshal(d.wire())
	if err != nil {
		panic("agreement: Canonical on a document holding a non-finite number: " + err.Error())
	}
	return b
}

// Hash is SHA-256 of Canonical.
func (d *Document) Hash() [32]byte { return sha256.Sum256(d.Canonical()) }

// MarshalJSON writes the canonical form.
func (d *Document) MarshalJSON() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d.Canonical(), nil
}

// UnmarshalJSON parses with ParseDocument.
func (d *Document) UnmarshalJSON(raw []byte) error {
	parsed, err := ParseDocument(raw)
	if err != nil {
		return err
	}
	*d = *parsed
	return nil
}

// Party returns the party with id partyID and its index, or ErrNotParty.
func (d *Document) Party(partyID string) (Party, int, error) {
	for i, p := range d.Parties {
		if p.PartyID == partyID {
			return p, i, nil
		}
	}
	return Party{}, -1, fault.Errorf("%w: %q is not a party to %s", ErrNotParty, partyID, d.ID)
}

// Counterpart returns the other party, or ErrNotParty.
func (d *Document) Counterpart(partyID string) (Party, error) {
	_, i, err := d.Party(partyID)
	if err != nil {
		return Party{}, err
	}
	return d.Parties[1-i], nil
}
