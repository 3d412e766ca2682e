package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzSignIn posts arbitrary bodies to the sign-in and sign-out forms: the
// dashboard never fails with a 5xx, never sets a session cookie without a
// valid token and matching CSRF token, and never echoes the body's token.
func FuzzSignIn(f *testing.F) {
	fx := newFixture(f)
	mux := http.NewServeMux()
	fx.dash.Register(mux)
	f.Add("application/x-www-form-urlencoded", "csrf=abc&token=parley_x", "abc")
	f.Add("application/x-www-form-urlencoded", "csrf=abc&token="+fx.tokA, "abd")
	f.Add("application/x-www-form-urlencoded", "csrf=%zz&token=%", "")
	f.Add("multipart/form-data; boundary=x", "--x\r\n", "x")
	f.Add("text/plain", strings.Repeat("a=b&", 5000), "b")
	f.Fuzz(func(t *testing.T, ctype, body, cookie string) {
		for _, path := range []string{"/ui/signin", "/ui/signout"} {
			req := httptest.NewRequest("POST", path, strings.NewReader(body))
			req.Header.Set("Content-Type", ctype)
			req.AddCookie(&http.Cookie{Name: signinCookie, Value: sanitizeCookie(cookie)})
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("%s: %d", path, w.Code)
			}
			for _, c := range w.Result().Cookies() {
				if c.Name == "parley_session" && c.MaxAge >= 0 && c.Value != "" {
					t.Fatalf("%s set a session for %q", path, body)
				}
			}
			if strings.Contains(w.Body.String(), fx.tokA) {
				t.Fatalf("%s echoed the token", path)
			}
		}
	})
}

// sanitizeCookie keeps fuzzed cookie values to bytes net/http sends.
func sanitizeCookie(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e || r == '"' || r == ';' || r == ',' || r == '\\' {
			return -1
		}
		return r
	}, s)
}
