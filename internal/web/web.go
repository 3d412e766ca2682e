// Package web is parley's dashboard: server-rendered pages under /ui/ where
// a party, signed in with its API token, sees its agreements (terms,
// signatures, phase), the reciprocity balance of each over time as an SVG
// chart drawn on the server, its open handovers and requests, and the
// ledger's latest checkpoint, verified against the log's public key.
//
// # Security
//
// Pages need no JavaScript and the Content-Security-Policy allows none.
// Signing in turns a token into a session cookie (HttpOnly, SameSite=Strict,
// Secure under TLS) naming a random 256-bit session id; only its SHA-256 is
// kept, in memory (see sessions). Sessions end after an hour idle or twelve
// hours in all, and when the token they came from is revoked. Every POST
// carries a per-session synchronizer token checked in constant time; the
// sign-in form itself is protected by a double-submitted cookie.
//
// This package must never decide who may see what: every page asks package
// exchange, which answers not-found for whatever the party may not see. It
// never shows internal error text, and never stores or logs a token.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/health"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/report"
	"github.com/parley-cti/parley/internal/verification"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the dashboard lives.
const Prefix = "/ui/"

// Defaults for Options.
const (
	DefaultIdleTimeout = time.Hour
	DefaultMaxLifetime = 12 * time.Hour
	DefaultMaxSessions = 10000
)

// maxForm bounds every form body: the largest field is a token.
const maxForm = 8 << 10

// Options configure a Dashboard. Exchange, Parties, Ledger and Reports are
// required: the server builds each service once and hands it over.
type Options struct {
	Exchange    *exchange.Service
	Parties     *party.Service
	Ledger      ledger.Reader // read-only: latest checkpoint, entry times
	VerifierKey string        // the log's published note verifier key
	Handovers   Handovers     // nil: the page says handovers are unavailable
	Requests    Requests      // nil: the page says requests are unavailable
	Events      Events        // nil: no notification count and no events page
	// Verifications gives a party's latest own verification of the ledger
	// (`parley verify --upload`); nil: the overview says only that the
	// party's client has not verified.
	Verifications Verifications
	// Reports builds joint reports.
	Reports     *report.Service
	Logger      *slog.Logger
	Secure      bool // served over TLS: cookies get Secure and the __Host- prefix
	IdleTimeout time.Duration
	MaxLifetime time.Duration
	MaxSessions int
}

// Verifications gives a party's own latest verification of the ledger
// (*verification.Service).
type Verifications interface {
	Latest(ctx context.Context, partyID string) (v verification.View, ok bool, err error)
}

// myVerification is the party's latest own verification, nil if none.
func (d *Dashboard) myVerification(ctx context.Context, partyID string) (*verification.View, error) {
	if d.o.Verifications == nil {
		return nil, nil
	}
	v, ok, err := d.o.Verifications.Latest(ctx, partyID)
	if err != nil || !ok {
		return nil, err
	}
	return &v, nil
}

// Dashboard serves the pages.
type Dashboard struct {
	o        Options
	log      *slog.Logger
	pages    map[string]*template.Template
	sessions *sessions
	clock    atomic.Pointer[func() time.Time]
	cookie   string // session cookie name
}

// New builds a dashboard.
func New(o Options) (*Dashboard, error) {
	if o.Exchange == nil || o.Parties == nil || o.Ledger == nil || o.Reports == nil {
		return nil, errors.New("web: Exchange, Parties, Ledger and Reports are required")
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxLifetime <= 0 {
		o.MaxLifetime = DefaultMaxLifetime
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	d := &Dashboard{o: o, log: o.Logger, sessions: newSessions(o.IdleTimeout, o.MaxLifetime, o.MaxSessions), cookie: "parley_session"}
	if d.log == nil {
		d.log = slog.Default()
	}
	if o.Secure {
		// __Host- binds the cookie to this origin: Secure, Path=/, no Domain.
		d.cookie = "__Host-parley_session"
	}
	d.SetClock(func() time.Time { return time.Now().UTC() })
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"ago":   ago,
		"short": func(s string) string { return shorten(s, 20) },
	}
	d.pages = map[string]*template.Template{}
	pages := append([]string{"signin", "overview", "agreement", "error"}, actionPages...)
	pages = append(pages, intelPages...)
	pages = append(pages, reportPages...)
	for _, name := range pages {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		d.pages[name] = t
	}
	return d, nil
}

// SetClock replaces the clock sessions expire by (tests); safe while serving.
func (d *Dashboard) SetClock(now func() time.Time) { d.clock.Store(&now) }

func (d *Dashboard) now() time.Time { return (*d.clock.Load())() }

// Mux is what routes are registered on (*http.ServeMux).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the dashboard's routes to mux, and makes / lead to it.
func (d *Dashboard) Register(mux Mux) {
	static, _ := fs.Sub(staticFS, "static")
	routes := map[string]http.Handler{
		"GET /{$}":                http.RedirectHandler(Prefix, http.StatusSeeOther),
		"GET /ui/{$}":             d.authed(d.overview),
		"GET /ui/signin":          http.HandlerFunc(d.signinForm),
		"POST /ui/signin":         http.HandlerFunc(d.signin),
		"POST /ui/signout":        d.authedPost(d.signout),
		"GET /ui/agreements/{id}": d.authed(d.agreement),
		"GET /ui/static/":         http.StripPrefix("/ui/static/", http.FileServerFS(static)),
		"/ui/":                    http.HandlerFunc(d.notFound),
	}
	for pattern, h := range d.actionRoutes() {
		routes[pattern] = h
	}
	for pattern, h := range d.intelRoutes() {
		routes[pattern] = h
	}
	for pattern, h := range d.reportRoutes() {
		routes[pattern] = h
	}
	for pattern, h := range routes {
		mux.Handle(pattern, d.headers(h))
	}
}

// headers sets the security headers on every dashboard response.
func (d *Dashboard) headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		// Scripts only from this origin (static/live.js, progressive
		// enhancement): never inline, never eval; every page works without.
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
			hd.Set("Cache-Control", "no-store")
		}
		if d.o.Secure {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		h.ServeHTTP(w, r)
	})
}

// page is what every template gets.
type page struct {
	Title   string
	Party   *party.Principal // nil when signed out
	CSRF    string
	Message string // a notice for the user, e.g. why they were signed out
	Data    any
	Unseen  string // the notification count ("0", "3", "99+") when signed in
}

func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.Message == "" {
		p.Message = doneMessages[r.URL.Query().Get("done")]
	}
	if p.Party != nil && d.o.Events != nil {
		n, err := d.unseen(r, *p.Party)
		if err != nil {
			d.fail(w, r, err)
			return
		}
		p.Unseen = countLabel(n)
	}
	var b strings.Builder
	if err := d.pages[name].ExecuteTemplate(&b, "layout", p); err != nil {
		d.fail(w, r, fmt.Errorf("rendering %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(b.String()))
}

// fail logs err and shows a fixed message: internal detail never reaches
// the browser.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	health.Note(r.Context(), err)
	status, msg := http.StatusInternalServerError, "The server failed to show this page. The operator's log has the details."
	if errors.Is(err, fault.Unavailable) {
		status, msg = http.StatusServiceUnavailable, "The database is unavailable. Try again in a moment."
		w.Header().Set("Retry-After", "5")
	} else {
		d.log.ErrorContext(r.Context(), "dashboard error", slog.String("method", r.Method), slog.String("pattern", r.Pattern), slog.Any("err", err))
	}
	d.showError(w, r, status, msg)
}

func (d *Dashboard) showError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	var b strings.Builder
	if err := d.pages["error"].ExecuteTemplate(&b, "layout", page{Title: http.StatusText(status), Message: msg}); err != nil {
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(b.String()))
}

func (d *Dashboard) notFound(w http.ResponseWriter, r *http.Request) {
	d.showError(w, r, http.StatusNotFound, "There is no such page, or you do not have access to it.")
}

// authedHandler is a page for a signed-in party.
type authedHandler func(w http.ResponseWriter, r *http.Request, s session)

// current returns the request's live session. A session whose token was
// revoked ends here too.
func (d *Dashboard) current(r *http.Request) (session, error) {
	c, err := r.Cookie(d.cookie)
	if err != nil || c.Value == "" {
		return session{}, errNoSession
	}
	s, err := d.sessions.get(c.Value, d.now())
	if err != nil {
		return session{}, err
	}
	err = d.o.Parties.CheckLive(r.Context(), s.principal)
	if errors.Is(err, party.ErrUnauthenticated) {
		d.sessions.end(c.Value)
		return session{}, errExpired
	}
	if err != nil {
		return session{}, err
	}
	return s, nil
}

// authed runs h for a request with a live session; a page without one
// leads to sign-in, saying so when the session expired.
func (d *Dashboard) authed(h authedHandler) http.Handler {
	return d.withSession(h, func(w http.ResponseWriter, r *http.Request, expired bool) {
		if !expired {
			http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
			return
		}
		d.clearCookie(w)
		http.Redirect(w, r, "/ui/signin?expired=1", http.StatusSeeOther)
	})
}

// authedStream is authed for the live events stream, which the page's
// script opens in the background: without a live session it answers 204
// No Content, which tells an EventSource to stop reconnecting, and leaves
// the cookie alone, so the next page the party opens is the one that says
// the session expired and clears it.
func (d *Dashboard) authedStream(h authedHandler) http.Handler {
	return d.withSession(h, func(w http.ResponseWriter, _ *http.Request, _ bool) {
		w.WriteHeader(http.StatusNoContent)
	})
}

// withSession runs h with the request's live session, or signedOut when
// there is none (expired: it timed out or its token was revoked).
func (d *Dashboard) withSession(h authedHandler, signedOut func(w http.ResponseWriter, r *http.Request, expired bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := d.current(r)
		switch {
		case errors.Is(err, errNoSession), errors.Is(err, errExpired):
			signedOut(w, r, errors.Is(err, errExpired))
			return
		case err != nil:
			d.fail(w, r, err)
			return
		}
		h(w, r, s)
	})
}

// authedPost is authed plus the CSRF check every state-changing action needs.
func (d *Dashboard) authedPost(h authedHandler) http.Handler {
	return d.authed(func(w http.ResponseWriter, r *http.Request, s session) {
		if err := parseForm(w, r); err != nil {
			d.showError(w, r, formStatus(err), clientText(err, fault.KindOf(err)))
			return
		}
		if !tokensEqual(r.PostForm.Get("csrf"), s.csrf) {
			d.showError(w, r, http.StatusForbidden, csrfFailed)
			return
		}
		h(w, r, s)
	})
}

// parseForm reads a size-limited urlencoded body; its errors are fit for
// the user.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return errFormType
	}
	if r.ContentLength > maxForm {
		return errFormTooLarge // refused before reading: no waiting for a body announced as huge
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return errFormUnreadable
	}
	return nil
}

// parseForm's refusals, written for the user.
var (
	errFormType       = fault.New(fault.Invalid, "Send the form as application/x-www-form-urlencoded.")
	errFormUnreadable = fault.New(fault.Invalid, "The form could not be read (too large or malformed).")
	errFormTooLarge   = fault.New(fault.TooLarge, "The form is too large.")
)

// formStatus is the status for a parseForm error.
func formStatus(err error) int {
	if errors.Is(err, fault.TooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

func (d *Dashboard) setCookie(w http.ResponseWriter, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: d.o.Secure, SameSite: http.SameSiteStrictMode})
}

func (d *Dashboard) clearCookie(w http.ResponseWriter) { d.setCookie(w, d.cookie, "", "/", -1) }

// signinCookie carries the sign-in form's double-submitted token.
const signinCookie = "parley_signin"

func (d *Dashboard) signinForm(w http.ResponseWriter, r *http.Request) {
	if _, err := d.current(r); err == nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	msg := ""
	if r.URL.Query().Get("expired") != "" {
		msg = "Your session expired. Sign in again."
	}
	d.showSignin(w, r, http.StatusOK, msg)
}

func (d *Dashboard) showSignin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	t := randomToken()
	d.setCookie(w, signinCookie, t, "/ui/", 3600)
	d.render(w, r, status, "signin", page{Title: "Sign in", CSRF: t, Message: msg})
}

func (d *Dashboard) signin(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(w, r); err != nil {
		d.showSignin(w, r, formStatus(err), clientText(err, fault.KindOf(err)))
		return
	}
	c, err := r.Cookie(signinCookie)
	if err != nil || !tokensEqual(r.PostForm.Get("csrf"), c.Value) {
		d.showSignin(w, r, http.StatusForbidden, "The sign-in form was stale or did not come from this dashboard. Try again.")
		return
	}
	p, err := d.o.Parties.Authenticate(r.Context(), strings.TrimSpace(r.PostForm.Get("token")))
	if errors.Is(err, party.ErrUnauthenticated) {
		d.showSignin(w, r, http.StatusUnauthorized, "That token is not valid or has been revoked. Paste the whole token (it starts with parley_), or ask your operator for a new one.")
		return
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	id, _ := d.sessions.create(p, d.now())
	d.setCookie(w, signinCookie, "", "/ui/", -1)
	d.setCookie(w, d.cookie, id, "/", 0)
	d.log.InfoContext(r.Context(), "dashboard sign-in", slog.String("party", p.PartyID), slog.String("token_id", p.TokenID))
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (d *Dashboard) signout(w http.ResponseWriter, r *http.Request, s session) {
	if c, err := r.Cookie(d.cookie); err == nil {
		d.sessions.delete(c.Value)
	}
	d.clearCookie(w)
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
}

// partyName is a party's registered name, or its id when the directory
// does not answer. Pages name parties from the directory, never from the
// names written into documents, so no document can make a party appear
// as another.
func (d *Dashboard) partyName(ctx context.Context, id string) string {
	if d.o.Parties != nil && strings.HasPrefix(id, "party--") {
		if p, err := d.o.Parties.Lookup(ctx, id); err == nil {
			return p.Name
		}
	}
	return id
}

// agreementRow is one line of the overview's table.
type agreementRow struct {
	ID, Counterpart, Phase string
	Version                int
	InForce                bool
	NotAfter               time.Time
	URL                    string
}

type overviewData struct {
	Agreements []agreementRow
	Ledger     ledgerStatus
	// Mine is the party's own latest signed verification, nil if none.
	Mine *verification.View
	Work work
	CSRF string
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request, s session) {
	as, err := d.o.Exchange.Agreements(r.Context(), s.principal)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	now := d.now()
	data := overviewData{CSRF: s.csrf}
	names := map[string]string{}
	for _, a := range as {
		row := agreementRow{ID: a.Record.ID, Phase: string(a.Status.Phase), Version: a.Status.Version,
			InForce: a.Status.InForce(now), URL: "/ui/agreements/" + url.PathEscape(a.Record.ID)}
		if a.Broken != nil {
			// Its history no longer verifies: shown as such, and the
			// rest of the page is unaffected.
			row.Phase, row.Counterpart = "broken", d.partyName(r.Context(), a.Counterpart(s.principal.PartyID))
		}
		if doc := a.Status.Document; doc != nil {
			row.NotAfter = doc.NotAfter
			for _, pt := range doc.Parties {
				names[pt.PartyID] = d.partyName(r.Context(), pt.PartyID)
				if pt.PartyID != s.principal.PartyID {
					row.Counterpart = names[pt.PartyID]
				}
			}
		}
		data.Agreements = append(data.Agreements, row)
	}
	if data.Work, err = d.openWork(r.Context(), s.principal, "", names); err != nil {
		d.fail(w, r, err)
		return
	}
	if data.Ledger, err = d.ledgerStatus(r.Context()); err != nil {
		d.fail(w, r, err)
		return
	}
	if data.Mine, err = d.myVerification(r.Context(), s.principal.PartyID); err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "overview", page{Title: "Overview", Party: &s.principal, CSRF: s.csrf, Data: data,
		Message: doneMessages[r.URL.Query().Get("done")]})
}

// signatureRow is one signed statement on an agreement.
type signatureRow struct {
	Party, Action, KeyID string
	Version              int
	SignedAt             time.Time
	Mine                 bool
}

type agreementData struct {
	ID, Phase, Counterpart string
	InForce                bool
	Version                int
	Doc                    docView
	Signatures             []signatureRow
	Balance                exchange.BalanceView
	Chart                  chart
	HasChart               bool
	Reason                 string
	Work                   work
	CSRF                   string
	Review                 reviewData
	Contests               contestsData
}

// docView is the part of a document the page shows, pre-formatted.
type docView struct {
	Types               []string
	MaxTLP, Unmarked    string
	Ratio               string
	Grace               int64
	Window              string
	Escrow              string
	NotBefore, NotAfter time.Time
	Acknowledge, Fulfil string
	TerminationNotice   string
}

func (d *Dashboard) agreement(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	a, err := d.o.Exchange.Agreement(r.Context(), s.principal, id)
	if errors.Is(err, exchange.ErrNotFound) {
		d.notFound(w, r)
		return
	}
	if errors.Is(err, exchange.ErrBrokenAgreement) {
		d.showError(w, r, http.StatusConflict, "This agreement's recorded history does not verify, so its state cannot be shown: "+
			clientText(err, fault.Conflict)+". Your other agreements are unaffected.")
		return
	}
	if err != nil {
		d.fail(w, r, err)
		return
	}
	bal, err := d.o.Exchange.Balance(r.Context(), s.principal, id)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	hist, err := d.o.Exchange.BalanceHistory(r.Context(), s.principal, id)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	names := map[string]string{}
	data := agreementData{ID: id, Phase: string(a.Status.Phase), InForce: a.Status.InForce(d.now()),
		Version: a.Status.Version, Balance: bal, Reason: a.Status.Reason, CSRF: s.csrf}
	if doc := a.Status.Document; doc != nil {
		for _, pt := range doc.Parties {
			names[pt.PartyID] = d.partyName(r.Context(), pt.PartyID)
			if pt.PartyID != s.principal.PartyID {
				data.Counterpart = names[pt.PartyID]
			}
		}
		unmarked := "refused"
		if doc.Scope.AllowUnmarked {
			unmarked = "accepted"
		}
		window := "credits never lapse"
		if doc.Reciprocity.Window > 0 {
			window = doc.Reciprocity.Window.String()
		}
		data.Doc = docView{Types: doc.Scope.Types, MaxTLP: doc.Scope.MaxTLP.Label(), Unmarked: unmarked,
			Ratio: fmt.Sprintf("%g readable per %g contributed", doc.Reciprocity.Get, doc.Reciprocity.Give),
			Grace: doc.Reciprocity.Grace, Window: window, Escrow: doc.EscrowDeadline.String(),
			NotBefore: doc.NotBefore, NotAfter: doc.NotAfter, Acknowledge: doc.RequestDeadlines.Acknowledge.String(),
			Fulfil: doc.RequestDeadlines.Fulfil.String(), TerminationNotice: doc.TerminationNotice.String()}
	}
	for _, sg := range a.Signatures {
		name := names[sg.PartyID]
		if name == "" {
			name = sg.PartyID
		}
		data.Signatures = append(data.Signatures, signatureRow{Party: name, Action: string(sg.Action), KeyID: sg.KeyID,
			Version: sg.Version, SignedAt: sg.SignedAt, Mine: sg.PartyID == s.principal.PartyID})
	}
	data.Chart, data.HasChart = buildChart(hist)
	data.Review = d.review(r.Context(), a, s.principal, s.csrf)
	if data.Contests, err = d.contests(r.Context(), a, s.principal, s.csrf); err != nil {
		d.fail(w, r, err)
		return
	}
	if data.Work, err = d.openWork(r.Context(), s.principal, id, names); err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "agreement", page{Title: "Agreement " + shorten(id, 24), Party: &s.principal, CSRF: s.csrf, Data: data})
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
