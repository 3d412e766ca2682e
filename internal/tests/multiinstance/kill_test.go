package multiinstance

import (
	"bytes"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/store/postgres"
)

// TestBackendsKilledWhileServing ends every database connection of a
// serving instance from the PostgreSQL side, again and again, while
// clients write and read, as a PostgreSQL crash or restart does to a pool
// of established connections. Every answer must be a success or 503 with
// Retry-After, never 500 (issue 15: "postgres: conn closed" reached
// clients as 500), and the instance serves again without a restart.
func TestBackendsKilledWhileServing(t *testing.T) {
	db := pgSchemaURL(t)
	var b [4]byte
	crand.Read(b[:])
	app := "parley_kill_" + hex.EncodeToString(b[:])
	st, err := postgres.Open(ctx, db+"&application_name="+app, postgres.Options{Migrate: true, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	base, srv := serveStore(t, st)
	var logBuf syncBuffer
	srv.Health.Log = slog.New(slog.NewTextHandler(&logBuf, nil))
	p, token, err := srv.Parties.Create(ctx, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	coll, err := srv.Ex.CreateCollection(ctx, "feed", "", []string{p.ID}, []string{p.ID})
	if err != nil {
		t.Fatal(err)
	}
	objects := base + "/taxii2/" + exchange.OperatorRoot + "/collections/" + coll.ID + "/objects/"
	do := func(method, u string, body []byte) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	admin, err := pgx.Connect(ctx, os.Getenv("PARLEY_TEST_POSTGRES"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var ok, unavailable atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for k := range 40 {
				var status int
				var retry string
				if k%2 == 0 {
					body, _ := json.Marshal(map[string]any{"objects": indicators(w*10_000+k*5, 5)})
					status, retry = do(http.MethodPost, objects, body)
				} else {
					status, retry = do(http.MethodGet, objects+"?limit=20", nil)
				}
				switch {
				case status == http.StatusOK || status == http.StatusAccepted:
					ok.Add(1)
				case status == http.StatusServiceUnavailable && retry != "":
					unavailable.Add(1)
				default:
					t.Errorf("writer %d request %d with connections being killed: HTTP %d (Retry-After %q); want success or 503 with Retry-After", w, k, status, retry)
				}
				if w == 0 && k%4 == 0 {
					if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d succeeded, %d answered 503", ok.Load(), unavailable.Load())
	// The pool may still hold connections the last kill ended; each is
	// found dead on its next use (that request gets 503) and replaced. With
	// a pool of 4, the instance must serve again within a few requests,
	// without a restart.
	status := 0
	for range 8 {
		if status, _ = do(http.MethodGet, objects, nil); status == http.StatusOK {
			break
		}
	}
	if status != http.StatusOK {
		t.Fatalf("after the kills, 8 requests later: HTTP %d; want the instance serving again", status)
	}
	if ok.Load() == 0 {
		t.Fatal("no request succeeded")
	}
	// Each kind of failure reaches the operator's log with its cause.
	if log := logBuf.String(); unavailable.Load() > 0 && (!strings.Contains(log, `msg="request failed"`) ||
		!strings.Contains(log, "status=503") || !strings.Contains(log, "database unavailable")) {
		t.Fatalf("%d requests answered 503, but the log does not say why:\n%s", unavailable.Load(), log)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
