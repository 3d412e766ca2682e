package taxii_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHostileRequestsNever500 throws requests a careless or malicious
// client might send. None may produce a 5xx or an internal error in the
// server's log, and none may change what is stored.
func TestHostileRequestsNever500(t *testing.T) {
	w := newWorld(t)
	w.mustPost(w.alpha.token, w.feed, indicator(1, "2021-01-01T00:00:00.000Z"), identity(2, "2021-01-01T00:00:00.000Z"))
	before := w.snapshot(w.alpha.token, w.feed)
	objs := w.collURL(w.feed, "objects/")
	many := func(n int, f func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = f(i)
		}
		return strings.Join(parts, ",")
	}
	ids := func(n int) string { return many(n, func(i int) string { return "indicator--" + uuid(i) }) }
	stamps := func(n int) string {
		return many(n, func(i int) string { return fmt.Sprintf("2021-01-01T00:00:%02d.%06dZ", i%60, i) })
	}
	bodies := []string{
		`{"objects":[` + many(2000, func(int) string { return "null" }) + `]}`,
		`{"objects":[` + many(2000, func(int) string { return "{}" }) + `]}`,
		`{"objects":[{"type":"identity","spec_version":"2.1","id":"identity--` + uuid(5) + `","created":1e999999,"modified":"x","name":"n"}]}`,
		`{"objects":[{"type":"identity","type":"indicator","spec_version":"2.1","id":"identity--` + uuid(6) + `"}]}`,
		`{"objects":[{"id":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}]}`,
		`{"objects":[NaN]}`,
		"\xef\xbb\xbf{\"objects\":[{}]}",
		"\xff\xfe{\x00}\x00",
		`{"objects":[{"type":"identity","id":"identity--` + uuid(7) + `","spec_version":"2.1","created":"9999-12-31T23:59:59.999999999Z","modified":"9999-12-31T23:59:59.999999999Z","name":"late"}]}`,
		`{"objects":[{"type":"identity","id":"identity--` + uuid(8) + `","spec_version":"2.1","created":"0000-01-01T00:00:00Z","modified":"0000-01-01T00:00:00Z","name":"early"}]}`,
		`{"objects":[{"type":"x-` + strings.Repeat("a", 300) + `","id":"x-` + strings.Repeat("a", 300) + `--` + uuid(9) + `","spec_version":"2.1","created":"2021-01-01T00:00:00Z","modified":"2021-01-01T00:00:00Z"}]}`,
		`{"objects":[{"type":"identity","id":"identity--` + uuid(10) + `","spec_version":"2.1","created":"2021-01-01T00:00:00Z","modified":"2021-01-01T00:00:00Z","name":"` + strings.Repeat(`\u0000`, 10000) + `"}]}`,
		`{"objects":"` + strings.Repeat("A", 100000) + `"}`,
		`{"objects":[],"more":true,"next":"` + strings.Repeat("n", 5000) + `"}`,
		strings.Repeat(`{"objects":[]}`, 1000),
		`{"objects":[{"type":"identity","id":"identity--` + uuid(11) + `","spec_version":"2.1","created":"2021-01-01T00:00:00Z","modified":"2021-01-01T00:00:00Z","name":"a","object_marking_refs":["` + strings.Repeat("marking-definition--"+uuid(1)+`","`, 2000) + `x"]}]}`,
	}
	type hostile struct {
		name   string
		method string
		url    string
		header map[string]string
		body   string
		token  string // default alpha's
	}
	cases := []hostile{
		{name: "long path", url: w.base + "/taxii2/" + strings.Repeat("a/", 5000)},
		{name: "long root", url: w.base + "/taxii2/" + strings.Repeat("r", 20000) + "/"},
		{name: "NUL in root", url: w.base + "/taxii2/sh%00ared/"},
		{name: "dot-dot", url: w.base + "/taxii2/%2e%2e/%2e%2e/etc/passwd"},
		{name: "bad UTF-8 collection", url: w.collURL("%ff%fe", "objects/")},
		{name: "SQL in collection", url: w.collURL("x'%20OR%20'1'='1", "objects/")},
		{name: "SQL in status", url: w.base + "/taxii2/shared/status/1'%20OR%201=1--/"},
		{name: "upper-case uuid", url: w.collURL(strings.ToUpper(w.feed), "objects/")},
		{name: "long object id", url: w.collURL(w.feed, "objects/x-"+strings.Repeat("a", 300)+"--"+uuid(1)+"/")},
		{name: "SQL in type", url: objs + "?match[type]=indicator')%20OR%201=1--"},
		{name: "1000 ids", url: objs + "?match[id]=" + ids(1000)},
		{name: "1001 ids", url: objs + "?match[id]=" + ids(1001)},
		{name: "1000 types", url: objs + "?match[type]=" + many(1000, func(i int) string { return fmt.Sprintf("x-t%d", i) })},
		{name: "1000 versions", url: objs + "?match[version]=" + stamps(1000)},
		{name: "all filters at the limit", url: objs + "?match[id]=" + ids(400) + "&match[version]=" + stamps(400) + "&match[type]=" + many(400, func(i int) string { return fmt.Sprintf("x-t%d", i) }) + "&match[spec_version]=" + many(400, func(i int) string { return fmt.Sprintf("2.%d", i) })},
		{name: "year 0 added_after", url: objs + "?added_after=0000-01-01T00:00:00Z"},
		{name: "year 9999 added_after", url: objs + "?added_after=9999-12-31T23:59:59.999999Z"},
		{name: "year 10000 added_after", url: objs + "?added_after=10000-01-01T00:00:00Z"},
		{name: "negative year", url: objs + "?added_after=-0001-01-01T00:00:00Z"},
		{name: "many fraction digits", url: objs + "?added_after=2021-01-01T00:00:00." + strings.Repeat("9", 40) + "Z"},
		{name: "leap second", url: objs + "?added_after=2016-12-31T23:59:60Z"},
		{name: "limit 2^63", url: objs + "?limit=9223372036854775808"},
		{name: "limit -2^63", url: objs + "?limit=-9223372036854775808"},
		{name: "limit 1e3", url: objs + "?limit=1e3"},
		{name: "long next", url: objs + "?next=" + strings.Repeat("A", 10000)},
		{name: "next 44 chars", url: objs + "?next=" + strings.Repeat("A", 44)},
		{name: "next valid base64 of zeros", url: objs + "?next=" + base64.RawURLEncoding.EncodeToString(make([]byte, 33))},
		{name: "next version 1 of zeros", url: objs + "?next=" + base64.RawURLEncoding.EncodeToString(append([]byte{1}, make([]byte, 32)...))},
		{name: "repeated parameters", url: objs + "?" + strings.Repeat("limit=1&", 1000)},
		{name: "bracket soup", url: objs + "?match[[type]]=x&match[=1&]=2"},
		{name: "percent soup", url: objs + "?%=%&%%=%%"},
		{name: "huge Accept", url: objs, header: map[string]string{"Accept": strings.Repeat("application/taxii+json;version=2.0;a=b, ", 1000)}},
		{name: "Accept params soup", url: objs, header: map[string]string{"Accept": `application/taxii+json;version="2.1;q=0";q=1;version=`}},
		{name: "bearer 10k", url: objs, header: map[string]string{"Authorization": "Bearer " + strings.Repeat("x", 10000)}, token: "-"},
		{name: "bearer with NUL-ish", url: objs, header: map[string]string{"Authorization": "Bearer parley_" + strings.Repeat("\x80", 43)}, token: "-"},
		{name: "basic not base64", url: objs, header: map[string]string{"Authorization": "Basic ***"}, token: "-"},
		{name: "basic no colon", url: objs, header: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon"))}, token: "-"},
		{name: "FOO method", method: "FOO", url: objs},
		{name: "OPTIONS", method: http.MethodOptions, url: objs},
		{name: "TRACE", method: http.MethodTrace, url: objs},
		{name: "GET with body", url: objs, body: `{"objects":[]}`},
		{name: "DELETE all-versions of missing", method: http.MethodDelete, url: w.collURL(w.feed, "objects/indicator--"+uuid(999)+"/?match[version]=all,first,last,"+stamps(10))},
		{name: "DELETE with 1000 versions", method: http.MethodDelete, url: w.collURL(w.feed, "objects/indicator--"+uuid(999)+"/?match[version]="+stamps(1000)+"&match[spec_version]=2.1")},
		{name: "POST gzip claim", method: http.MethodPost, url: objs, header: map[string]string{"Content-Encoding": "gzip"}, body: "\x1f\x8b garbage"},
		{name: "POST charset", method: http.MethodPost, url: objs, header: map[string]string{"Content-Type": "application/taxii+json;version=2.1;charset=utf-16"}, body: `{"objects":[{}]}`},
	}
	for i, b := range bodies {
		cases = append(cases, hostile{name: fmt.Sprintf("body %d", i), method: http.MethodPost, url: objs, body: b})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := req{method: tc.method, url: tc.url, header: tc.header, token: w.alpha.token}
			if tc.token == "-" {
				r.token = ""
			}
			if tc.body != "" {
				r.body = []byte(tc.body)
			}
			res := w.do(r)
			if res.status >= 500 {
				t.Errorf("status %d: %.300s", res.status, res.body)
			}
			if res.status >= 400 && res.status != http.StatusRequestHeaderFieldsTooLarge && res.header.Get("Content-Type") == mediaTAXII {
				errorResource(t, res, res.status)
			}
		})
	}
	// Malformed HTTP that a client library would not send.
	raw := []string{
		"GET /taxii2/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \x00\x01\r\n\r\n",
		"GET /taxii2/\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST " + strings.TrimPrefix(objs, w.base) + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + w.alpha.token + "\r\nContent-Type: " + mediaTAXII + "\r\nContent-Length: 100\r\n\r\n{\"objects\":[",
		"POST " + strings.TrimPrefix(objs, w.base) + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + w.alpha.token + "\r\nContent-Type: " + mediaTAXII + "\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"POST " + strings.TrimPrefix(objs, w.base) + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + w.alpha.token + "\r\nContent-Type: " + mediaTAXII + "\r\nContent-Length: -1\r\n\r\n",
		"GET /taxii2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 70<<10) + "\r\n\r\n",
	}
	for i, msg := range raw {
		status := rawRequest(t, strings.TrimPrefix(w.base, "http://"), msg)
		if status >= 500 {
			t.Errorf("raw request %d: status %d", i, status)
		}
	}
	if after := w.snapshot(w.alpha.token, w.feed); string(after) != string(before) {
		// Valid objects among the hostile bodies may have been added; the
		// two stored before must be intact and first.
		if !strings.HasPrefix(string(after), string(before)) {
			t.Errorf("stored objects were changed by hostile requests")
		}
	}
	if log := w.errLog.String(); log != "" {
		t.Errorf("the server logged errors:\n%.2000s", log)
	}
}

// rawRequest writes msg on a fresh connection and returns the status code
// of the answer, or 0 when the server closed the connection without one.
func rawRequest(t *testing.T, addr, msg string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	// The request may be refused before it is all written; half-closing
	// lets the server see the end of a truncated body at once.
	c.Write([]byte(msg))
	c.(*net.TCPConn).CloseWrite()
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}
