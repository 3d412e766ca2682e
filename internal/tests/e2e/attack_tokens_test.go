package e2e

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/party"
)

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// TestAttackTokens: on every surface (TAXII, management API, ledger) a
// revoked, unknown, malformed, truncated, padded or empty credential gets
// exactly the 401 of a request with no credential at all, and nothing
// else.
func TestAttackTokens(t *testing.T) {
	w := newAttackWorld(t)
	// This family sends hundreds of bad credentials from one address on
	// purpose; the limit on that is TestAttackBruteForce's.
	w.s.Srv.AuthLimit.SetMax(1 << 30)
	// A second token of bravo's: it works, then it is revoked.
	secret, id, err := w.s.Srv.Parties.AddToken(ctx, w.bravo.ID, "attack-suite")
	if err != nil {
		t.Fatal(err)
	}
	surfaces := map[string]string{
		"taxii-discovery": "/taxii2/",
		"taxii-object":    objectPath(w.ag, w.alphaColl, w.released[0].ID),
		"taxii-status":    "/taxii2/" + w.ag + "/status/" + w.alphaStatus + "/",
		"api-agreement":   "/api/v1/agreements/" + w.ag,
		"api-balance":     "/api/v1/agreements/" + w.ag + "/balance",
		"api-me":          "/api/v1/me",
		"ledger-entry":    "/ledger/entries/0",
		"ledger-ckpt":     "/ledger/checkpoint",
	}
	for name, path := range surfaces {
		if r := w.send(t, req{Path: path, Auth: "Bearer " + secret}); r.Status != 200 && !strings.HasPrefix(name, "taxii-status") {
			t.Fatalf("before revocation, %s: %s", name, r)
		}
	}
	if err := w.s.Srv.Parties.RevokeToken(ctx, id); err != nil {
		t.Fatal(err)
	}
	tok := w.bravo.Token
	unknown := party.TokenPrefix + strings.Repeat("A", 43)
	credentials := map[string]string{
		"revoked":              "Bearer " + secret,
		"revoked-basic":        basic("bravo", secret),
		"unknown":              "Bearer " + unknown,
		"bearer-empty":         "Bearer ",
		"bearer-only":          "Bearer",
		"bearer-blank":         "Bearer \t  ",
		"truncated":            "Bearer " + tok[:len(tok)-1],
		"extended":             "Bearer " + tok + "A",
		"over-long":            "Bearer " + tok + strings.Repeat("A", 8000),
		"space-inside":         "Bearer " + tok[:12] + " " + tok[12:],
		"tab-inside":           "Bearer " + tok[:12] + "\t" + tok[12:],
		"two-tokens":           "Bearer " + tok + " " + w.alpha.Token,
		"comma-tokens":         "Bearer " + tok + "," + w.alpha.Token,
		"no-prefix":            "Bearer " + strings.TrimPrefix(tok, party.TokenPrefix),
		"party-id":             "Bearer " + w.bravo.ID,
		"other-scheme":         "Digest " + tok,
		"revoked-token-scheme": "Token " + secret, // Token is Bearer's synonym (the OASIS Python client's TokenAuth)
		"basic-wrong-password": basic(w.bravo.Name, "parley_wrong"),
		"basic-token-as-user":  basic(tok, ""),
		"basic-empty":          "Basic ",
		"basic-garbage":        "Basic ###",
		"basic-no-colon":       "Basic " + base64.StdEncoding.EncodeToString([]byte(tok)),
	}
	var probes []probe
	for cname, auth := range credentials {
		for sname, path := range surfaces {
			probes = append(probes, probe{name: cname + "/" + sname, attack: req{Path: path, Auth: auth}, twin: req{Path: path}, status: 401})
		}
	}
	w.run(t, w.hiddenFromCharlie(), probes)

	// Control characters and line breaks in the credential, sent raw: the
	// HTTP layer refuses them or they authenticate nothing.
	for _, bad := range []string{"\x00", "\x01", "\x7f", "\r"} {
		for _, path := range []string{"/taxii2/", "/api/v1/me", "/ledger/checkpoint"} {
			r := w.sendRaw(t, "GET "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/taxii+json;version=2.1\r\nAuthorization: Bearer "+tok[:9]+bad+tok[9:]+"\r\nConnection: close\r\n\r\n")
			noLeak(t, "control character", r, w.hiddenFromCharlie())
			if r.Status != 400 && r.Status != 401 {
				t.Errorf("control character %q in the token on %s: %s", bad, path, r)
			}
		}
	}
	// A header larger than the server takes is refused before anyone
	// looks at it.
	r := w.send(t, req{Path: "/taxii2/", Auth: "Bearer " + tok + strings.Repeat("A", 70<<10)})
	noLeak(t, "huge token", r, w.hiddenFromCharlie())
	if r.Status != 431 && r.Status != 400 && r.Status != 401 {
		t.Errorf("a 70 KiB token: %s", r)
	}
}

// TestAttackBasicAuthUserName: HTTP Basic authenticates by the token alone.
// Bravo's token under alpha's name (or alpha's party id) is bravo, with
// bravo's view and nothing of alpha's.
func TestAttackBasicAuthUserName(t *testing.T) {
	w := newAttackWorld(t)
	for _, user := range []string{w.alpha.Name, w.alpha.ID, "admin", "operator", ""} {
		auth := basic(user, w.bravo.Token)
		r := w.send(t, req{Path: "/api/v1/me", Auth: auth})
		var me struct {
			PartyID string `json:"party_id"`
		}
		if r.Status != 200 || json.Unmarshal(r.Body, &me) != nil || me.PartyID != w.bravo.ID {
			t.Fatalf("user %q with bravo's token is not bravo: %s", user, r)
		}
		as := func(path string) req { return req{Path: path, Auth: auth} }
		w.run(t, w.hiddenFromBravo(), []probe{
			{name: "user-" + user + "/unreleased", attack: as(objectPath(w.ag, w.alphaColl, w.unreleased[1].ID)), twin: as(objectPath(w.ag, w.alphaColl, missingObject())), status: 404},
			{name: "user-" + user + "/alpha-operator", attack: as(objectsPath("shared", w.opAlpha)), twin: as(objectsPath("shared", missingCollection())), status: 404},
			{name: "user-" + user + "/alpha-status", attack: as("/taxii2/" + w.ag + "/status/" + w.alphaStatus + "/"), twin: as("/taxii2/" + w.ag + "/status/" + missingStatus() + "/"), status: 404},
		})
	}
}
