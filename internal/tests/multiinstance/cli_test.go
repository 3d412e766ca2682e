package multiinstance

import (
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestServeAndMigrateRefuse checks the operator-facing failures: an
// outdated schema, an unreachable database and a schema newer than the
// binary each stop parley with a message saying what to do, exit 1.
func TestServeAndMigrateRefuse(t *testing.T) {
	db := pgSchemaURL(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"outdated schema", []string{"serve", "--listen", "127.0.0.1:0", "--db", db}, "run `parley migrate --db URL`"},
		{"operator command on an outdated schema", []string{"party", "list", "--db", db}, "older than this parley"},
		{"unreachable", []string{"serve", "--listen", "127.0.0.1:0", "--db", "postgres://parley:secret@127.0.0.1:1/parley?sslmode=disable&connect_timeout=2"}, "database unavailable"},
		{"bad --db", []string{"migrate", "--db", "mysql://x"}, "postgres:// URL or sqlite:DIR"},
	} {
		out, code := run(t, nil, tc.args...)
		if code == 0 || !strings.Contains(out, tc.want) || strings.Contains(out, "secret") {
			t.Errorf("%s: exit %d, output %q; want non-zero and %q (and no password)", tc.name, code, out, tc.want)
		}
	}
	out := mustRun(t, "migrate", "--db", db)
	if m := regexp.MustCompile(`schema at version (\d+) \(this parley knows (\d+)\)`).FindStringSubmatch(out); m == nil || m[1] != m[2] {
		t.Fatalf("migrate: %s", out)
	}
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES (99, 0)`); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"migrate", "--db", db}, {"serve", "--listen", "127.0.0.1:0", "--db", db, "--migrate"}} {
		out, code := run(t, nil, args...)
		if code != 1 || !strings.Contains(out, "newer than this parley") {
			t.Errorf("%v on a newer schema: exit %d, %q", args, code, out)
		}
	}
}
