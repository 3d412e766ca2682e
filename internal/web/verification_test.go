package web

import (
	"bytes"
	"context"
	"html"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/verification"
)

// TestOverviewClientVerification: the overview says the party's client has
// not verified until the party uploads a signed verification; then it
// shows that statement (entry, root, time), and never another party's,
// while the server's own check stays labelled as the server's claim.
func TestOverviewClientVerification(t *testing.T) {
	f := newFixture(t)
	svc := verification.New(f.st)
	f.dash.o.Verifications = svc
	ctx := context.Background()

	a := f.browser(t)
	a.signIn(f.tokA)
	_, page := a.do("GET", "/ui/", nil)
	for _, want := range []string{`id="client-verified">not verified by your client yet — run <code>parley verify --upload</code>`,
		`id="checkpoint-verified" class="">passed (the server checked its own signature and root: a claim, not a proof)`} {
		if !strings.Contains(page, want) {
			t.Fatalf("overview before any upload lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "Your client verified") {
		t.Fatal("the overview claims a client verification before any upload")
	}

	if _, page := a.do("GET", "/ui/ledger", nil); !strings.Contains(page, `id="client-verified">Not verified by your client yet — run <code>parley verify --upload</code>`) {
		t.Fatalf("ledger page before any upload:\n%s", page)
	}

	// A uploads a verification of the fixture's checkpoint.
	size, signed, err := f.st.Ledger().LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	body, _, _ := bytes.Cut(signed, []byte("\n\n"))
	c, err := ledger.ParseCheckpoint(append(body, '\n'))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	sv, err := agreement.SignVerification(f.keyA, agreement.VerificationStatement{PartyID: f.a.PartyID, Origin: c.Origin, Size: size,
		Root: c.Hash.String(), Result: agreement.VerificationOK, Entries: 4, VerifiedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Record(ctx, f.a, sv); err != nil {
		t.Fatal(err)
	}
	_, page = a.do("GET", "/ui/", nil)
	// The template escapes more than html.EscapeString does (a root's
	// "+" is &#43;), so the page is compared unescaped: the root failed
	// this check whenever its first 12 characters held a "+".
	want := `id="client-verified">Your client verified the ledger up to entry ` + strconv.FormatInt(size, 10) +
		` (root <code>` + c.Hash.String()[:12] + `…</code>) at ` + at.Format("2006-01-02 15:04")
	if !strings.Contains(html.UnescapeString(page), want) {
		t.Fatalf("overview after the upload lacks %q:\n%s", want, page)
	}
	if !strings.Contains(page, "checking 4 of your entries") || !strings.Contains(page, "a claim, not a proof") {
		t.Fatal("the overview lost the entry count or the server's claim label")
	}

	if _, page := a.do("GET", "/ui/ledger", nil); !strings.Contains(html.UnescapeString(page), want[len(`id="client-verified">`):]) {
		t.Fatalf("ledger page after the upload lacks %q:\n%s", want, page)
	}

	// B has uploaded nothing: A's statement is not B's.
	b := f.browser(t)
	b.signIn(f.tokB)
	_, page = b.do("GET", "/ui/", nil)
	if !strings.Contains(page, `id="client-verified">not verified by your client yet`) || strings.Contains(page, "Your client verified") {
		t.Fatalf("B's overview shows A's verification:\n%s", page)
	}
}
