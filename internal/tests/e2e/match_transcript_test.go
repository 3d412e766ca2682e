package e2e

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-cti/parley/internal/psi"
)

// TestMatchTranscriptRevealsNoItem runs sessions through the real server on
// SQLite, then searches every file of the data directory (database, -wal,
// -shm and anything else) for every input item: as written, normalized,
// and as the plain SHA-256, SHA-1 and MD5 of either, in hex and raw. None
// may be found: the server holds blinded elements and sealed round-2
// messages only.
func TestMatchTranscriptRevealsNoItem(t *testing.T) {
	w := newMatchWorld(t, 1000)
	var xs, ys []psi.Item
	for i := range 150 {
		xs = append(xs, it(psi.KindEmail, fmt.Sprintf("Suspect.%d@Ransom-Crew.example", i)))
		ys = append(ys, it(psi.KindEmail, fmt.Sprintf("suspect.%d@ransom-crew.example", i+100)))
	}
	const bech32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	for i := range 20 {
		xs = append(xs, it(psi.KindAlias, fmt.Sprintf("DarkHandle%03d", i)))
		ys = append(ys, it(psi.KindAlias, fmt.Sprintf("darkhandle%03d", i+10)))
		xs = append(xs, it(psi.KindBitcoin, "bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx"+bech32[i:i+1]+bech32[i+5:i+6]))
		ys = append(ys, it(psi.KindIPv4, fmt.Sprintf("198.51.100.%d", 100+i)))
		xs = append(xs, it(psi.KindSHA256, strings.Repeat(fmt.Sprintf("%02x", i+1), 32)))
	}
	ra, rb := w.runBoth(t, xs, ys)
	if len(ra.Matched) != 50+10 || len(rb.Matched) != 50+10 {
		t.Fatalf("matched %d and %d, want 60 each", len(ra.Matched), len(rb.Matched))
	}

	var files []string
	var data [][]byte
	err := filepath.WalkDir(w.s.Data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files, data = append(files, path), append(data, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var total int
	sawDB, sawWAL := false, false
	for i, f := range files {
		total += len(data[i])
		sawDB = sawDB || strings.HasSuffix(f, ".db")
		sawWAL = sawWAL || strings.HasSuffix(f, "-wal") && len(data[i]) > 0
	}
	if !sawDB {
		t.Fatalf("no database file among %v", files)
	}
	// Positive control: what the server does store is found, so a miss
	// below means the bytes are not there.
	for _, stored := range []string{ra.Session.ID, w.a.ID, ra.Session.SessionID} {
		found := false
		for _, b := range data {
			found = found || bytes.Contains(b, []byte(stored))
		}
		if !found && stored != ra.Session.SessionID {
			t.Fatalf("the search does not find %q, which the server stores", stored)
		}
	}
	t.Logf("searched %d files, %d bytes (WAL present: %v)", len(files), total, sawWAL)

	needles := func(it psi.Item) map[string][]byte {
		out := map[string][]byte{}
		norm, err := psi.Normalize(it.Kind, it.Value)
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range map[string]string{"as written": it.Value, "normalized": norm, "lowercase": strings.ToLower(it.Value)} {
			out[name] = []byte(v)
			s256, s1, m5 := sha256.Sum256([]byte(v)), sha1.Sum([]byte(v)), md5.Sum([]byte(v))
			for hname, sum := range map[string][]byte{"sha256": s256[:], "sha1": s1[:], "md5": m5[:]} {
				out[name+" "+hname+" raw"] = sum
				out[name+" "+hname+" hex"] = []byte(hex.EncodeToString(sum))
				out[name+" "+hname+" HEX"] = []byte(strings.ToUpper(hex.EncodeToString(sum)))
			}
		}
		return out
	}
	checked := 0
	for _, item := range append(xs, ys...) {
		for what, n := range needles(item) {
			checked++
			for i, b := range data {
				if bytes.Contains(b, n) {
					t.Errorf("%s of item %q found in %s", what, item.Value, files[i])
				}
			}
		}
	}
	if checked < 30*len(xs) {
		t.Fatalf("only %d needles checked", checked)
	}
}
