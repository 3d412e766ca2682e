package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
)

// TestHugeDeclaredBodyAnsweredAtOnce: every endpoint that takes a body
// answers 413 as soon as the headers announce more than it accepts,
// without waiting for the body (issue 15: deposit, handover and agreement
// proposals and /ledger/cosign waited out a 2 GB Content-Length for the
// server's 5-minute read timeout). The client sends the headers and
// nothing else; the answer must come while it still sends nothing.
func TestHugeDeclaredBodyAnsweredAtOnce(t *testing.T) {
	s := Start(t)
	a, b := s.NewParty(t, "alpha"), s.NewParty(t, "bravo")
	d := Document(t, a, b, nil)
	Activate(t, a, b, d)
	own, _ := Collections(t, a, d.ID)
	h := OpenCase(t, a, b, d.ID, time.Time{})
	req, err := a.C.FileRequest(ctx, client.NewRequest{Agreement: d.ID, Subject: "s", Reason: "r"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.C.StartMatch(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(s.URL, "http://")
	for _, tc := range []struct{ method, path, ct string }{
		{"POST", "/api/v1/keys", "application/json"},
		{"POST", "/api/v1/keys/rotate", "application/json"},
		{"POST", "/api/v1/agreements", "application/json"},
		{"POST", "/api/v1/agreements/" + d.ID + "/versions", "application/json"},
		{"POST", "/api/v1/agreements/" + d.ID + "/signatures", "application/json"},
		{"POST", "/api/v1/handovers", "application/json"},
		{"PUT", "/api/v1/handovers/" + h.ID + "/deposit", "application/json"},
		{"PUT", "/api/v1/handovers/" + h.ID + "/deposit", "application/octet-stream"},
		{"POST", "/api/v1/handovers/" + h.ID + "/dispute", "application/json"},
		{"POST", "/api/v1/requests", "application/json"},
		{"POST", "/api/v1/requests/" + req.ID + "/fulfil", "application/json"},
		{"POST", "/api/v1/requests/" + req.ID + "/refuse", "application/json"},
		{"POST", "/api/v1/matches", "application/json"},
		{"PUT", "/api/v1/matches/" + m.ID + "/round1", "application/octet-stream"},
		{"POST", "/ledger/cosign", "text/plain"},
		{"POST", "/ui/signin", "application/x-www-form-urlencoded"},
		{"POST", "/taxii2/" + d.ID + "/collections/" + own + "/objects/", "application/taxii+json;version=2.1"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			status, err := announce(host, tc.method, tc.path, tc.ct, a.Token)
			if err != nil {
				t.Fatal(err)
			}
			if status != http.StatusRequestEntityTooLarge {
				t.Fatalf("2 GB announced: HTTP %d, want 413", status)
			}
		})
	}
}

// announce sends headers declaring a 2 GB body and no body, and returns
// the status the server answers with. The read deadline only keeps a
// server that waits for the body from hanging the test.
func announce(host, method, path, ct, token string) (int, error) {
	conn, err := net.Dial("tcp", host)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nAccept: application/json, application/taxii+json;version=2.1\r\nContent-Length: %d\r\n\r\n",
		method, path, host, token, ct, int64(2)<<30)
	conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, fmt.Errorf("no answer while the body was not sent: %w", err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
