//go:build cgo && drivercompare

package sqlite

// The measurement behind DriverName: the same store workload on
// modernc.org/sqlite (pure Go, what Open uses) and github.com/mattn/go-sqlite3
// (cgo). It sits behind the drivercompare tag so that ordinary builds and
// test runs never compile SQLite's C amalgamation:
//
//	go test -tags drivercompare ./internal/store/sqlite -run 'Mattn' -bench Driver -benchtime 100x
//
// Only the object workload is compared; mapErr knows modernc's error codes
// only, so a switch of driver would need mattn's codes added there too.

import (
	"net/url"
	"testing"

	_ "github.com/mattn/go-sqlite3" // registers "sqlite3"
)

// mattnDSN holds the same pragmas as dsn, in mattn's spelling.
func mattnDSN(path string, readOnly bool) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", "10000")
	q.Set("_foreign_keys", "1")
	q.Set("_cache_size", "-32000")
	if readOnly {
		q.Set("_query_only", "1")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

func openMattn(tb testing.TB, dir string) *DB { return openWith(tb, dir, "sqlite3", mattnDSN) }

var drivers = []struct {
	name string
	open opener
}{
	{"modernc", openDefault},
	{"mattn", openMattn},
}

// BenchmarkDriver runs Put, whole-collection reads and point lookups on
// each driver, interleaved so that both see the same machine load.
func BenchmarkDriver(b *testing.B) {
	for _, d := range drivers {
		b.Run("Put/"+d.name, func(b *testing.B) { benchPut(b, d.open) })
	}
	for _, d := range drivers {
		b.Run("QueryAll/"+d.name, func(b *testing.B) { benchQueryAll(b, "driver-"+d.name, d.open) })
	}
	for _, d := range drivers {
		b.Run("GetByID/"+d.name, func(b *testing.B) { benchGetByID(b, "driver-"+d.name, d.open) })
	}
}

// TestMattnPutMatchesModel checks the comparison is like for like: the
// same SQL gives the same results on the cgo driver.
func TestMattnPutMatchesModel(t *testing.T) { testPutMatchesModel(t, openMattn) }
