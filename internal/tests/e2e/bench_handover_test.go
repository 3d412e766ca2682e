package e2e

// Handover benchmarks over real HTTP on loopback against an in-process
// server on SQLite: whole cases from propose to release with 1 MB bundles
// on both sides, and the latency of the second deposit, which validates,
// stores and releases both in one transaction.
//
//	go test ./internal/tests/e2e -run '^$' -bench Handover -benchtime 20x

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/client"
)

// bundleOfSize returns a bundle of fresh indicators (ids from first) of
// about size bytes, and the id after the last one used.
func bundleOfSize(first, size int) ([]byte, int) {
	var objs []json.RawMessage
	n := 0
	for i := first; n < size; i++ {
		o := Indicator(i, "")
		objs = append(objs, o)
		n += len(o) + 1
	}
	return Bundle(objs...), first + len(objs)
}

func benchmarkHandover(b *testing.B, sealed bool) {
	s := Start(b)
	a, c := s.NewParty(b, "alpha"), s.NewParty(b, "bravo")
	d := Document(b, a, c, nil)
	Activate(b, a, c, d)
	const size = 1 << 20
	next := 1
	type pair struct{ mine, theirs []byte }
	inputs := make([]pair, b.N)
	for i := range inputs {
		var p pair
		p.mine, next = bundleOfSize(next, size)
		p.theirs, next = bundleOfSize(next, size)
		if sealed {
			var err error
			if p.mine, _, err = client.Seal(p.mine, c.Keys.Public().SealingRecipient); err != nil {
				b.Fatal(err)
			}
			if p.theirs, _, err = client.Seal(p.theirs, a.Keys.Public().SealingRecipient); err != nil {
				b.Fatal(err)
			}
		}
		inputs[i] = p
	}
	deposit := func(p *Party, id string, body []byte) *client.DepositResult {
		var res *client.DepositResult
		var err error
		if sealed {
			sum := sha256Hex(body)
			res, err = p.C.DepositSealed(ctx, id, body, sum, client.DepositOptions{})
		} else {
			res, err = p.C.Deposit(ctx, id, body, client.DepositOptions{})
		}
		if err != nil {
			b.Fatal(err)
		}
		return res
	}
	lat := make([]time.Duration, 0, b.N)
	b.SetBytes(2 * size)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		h := OpenCase(b, a, c, d.ID, time.Time{})
		deposit(a, h.ID, inputs[i].mine)
		t0 := time.Now()
		if res := deposit(c, h.ID, inputs[i].theirs); !res.Released {
			b.Fatalf("not released: %+v", res)
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "cases/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "release-p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "release-p99-ms")
}

// BenchmarkHandoverPlain1MB: plain bundles, validated, scope-checked and
// stored into the recipients' TAXII collections on release.
func BenchmarkHandoverPlain1MB(b *testing.B) { benchmarkHandover(b, false) }

// BenchmarkHandoverSealed1MB: age ciphertexts; the server checks hashes only.
func BenchmarkHandoverSealed1MB(b *testing.B) { benchmarkHandover(b, true) }

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
