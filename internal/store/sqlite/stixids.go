package sqlite

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// How an id finds its compact key (stix_ids, migrations 24 and 38).
//
// stix_ids holds one row per STIX id, keyed by an integer given in order
// of first storage, so that the objects', owners' and credits' b-trees
// append. Until migration 38 the table also had a unique index on id:
// ids are random (UUIDs), so each commit of new ids dirtied a random leaf
// of that index per id, most of its 15,000 leaves at 1,000,000 ids, and
// that index was about a third of the server's CPU while ingesting near
// a million (docs/BENCHMARKS.md). Now an id is found by a 64-bit hash
// (idHash) in two small-entry tables, as the credits' fingerprints are
// (migration 37): a new id's (hash, key) goes into stix_id_hashes_new,
// whose few hundred leaves stay in the cache; its entries move, in key
// order, into stix_id_hashes, one part of the hash space at a time, each
// part once every idMergeAt new keys (idMergeSlices), so that a merge
// touches the leaves of its part once. The hash is a hint: every lookup also
// compares the id itself, so ids sharing a hash cost a row read each and
// nothing else. It is a prefix of SHA-256, so nobody can make many ids
// share one (a counterpart that could would make those ids' lookups walk
// them all).
//
// Only the writer creates keys, and it looks an id up before creating its
// key in the same write transaction, so an id gets one key (SQLite's
// write lock serialises this across processes too). TestStore runs the
// whole store suite with every id hashing alike.

// idHash is the hash stix_id_hashes keys an id by. A variable so that a
// test can make every id collide.
var idHash = func(id string) int64 {
	s := sha256.Sum256([]byte(id))
	return int64(binary.BigEndian.Uint64(s[:8]))
}

// idMergeAt is the number of new keys after which every entry of
// stix_id_hashes_new has moved into stix_id_hashes. A variable for tests.
var idMergeAt = 65536

// idMergeSlices is the number of parts of the hash space that move
// separately (a power of two, at most idMergeAt): every idMergeAt /
// idMergeSlices new keys the small table's entries in the next part move,
// so that each entry still moves within idMergeAt keys and each leaf of
// the large table is still written once for all of its part's entries,
// but no one transaction does the whole merge. Moved whole, 65,536
// entries into a large table of 1,400,000 took one POST's turn 85–235 ms
// and its commit up to 130 ms, every 12 seconds of the 64-client load;
// every write queued behind it, and those stalls were the writes' p99
// (docs/BENCHMARKS.md). A variable for tests.
var idMergeSlices = 16

// idSlice returns the bounds, inclusive, of part i of n of the hash
// space, in SQLite's (signed) order.
func idSlice(i, n int) (lo, hi int64) {
	if n == 1 {
		return math.MinInt64, math.MaxInt64
	}
	width := uint64(1) << (64 - bits.TrailingZeros(uint(n)))
	lo = int64(uint64(1)<<63 + uint64(i)*width)
	return lo, int64(uint64(lo) + width - 1)
}

// idMergesPassed returns the ranges of the hash space (inclusive, in
// SQLite's signed order) due to move when the new keys lo to hi were
// given: one part per multiple of the step they pass, or the whole space
// at once when they pass as many multiples as there are parts.
func idMergesPassed(lo, hi int64) [][2]int64 {
	n := max(1, idMergeSlices)
	step := max(1, int64(idMergeAt/n))
	first, last := (lo-1)/step+1, hi/step
	if last < first {
		return nil
	}
	if last-first+1 >= int64(n) {
		return [][2]int64{{math.MinInt64, math.MaxInt64}}
	}
	var ranges [][2]int64
	for j := first; j <= last; j++ {
		from, to := idSlice(int(j%int64(n)), n)
		ranges = append(ranges, [2]int64{from, to})
	}
	return ranges
}

// keysOfIDs is a subquery yielding the keys of n ids; its arguments are
// keysOfIDsArgs's.
func keysOfIDs(n int) string {
	p := placeholders(n)
	return `SELECT s.key FROM stix_ids s WHERE s.key IN (SELECT key FROM stix_id_hashes WHERE h IN (` + p +
		`) UNION ALL SELECT key FROM stix_id_hashes_new WHERE h IN (` + p + `)) AND s.id IN (` + p + `)`
}

// keysOfIDsArgs appends to args the arguments of keysOfIDs(len(ids)).
func keysOfIDsArgs(args []any, ids []string) []any {
	hs := make([]any, len(ids))
	for i, id := range ids {
		hs[i] = idHash(id)
	}
	args = append(args, hs...)
	args = append(args, hs...)
	for _, id := range ids {
		args = append(args, id)
	}
	return args
}

// keyOfID is a scalar subquery, the key of the id whose arguments
// keyOfIDArgs gives (NULL if it has none).
const keyOfID = `(SELECT s.key FROM stix_ids s WHERE s.key IN (SELECT key FROM stix_id_hashes WHERE h = ? UNION ALL SELECT key FROM stix_id_hashes_new WHERE h = ?) AND s.id = ?)`

// keyOfIDArgs returns the three arguments of keyOfID for id.
func keyOfIDArgs(id string) []any {
	h := idHash(id)
	return []any{h, h, id}
}

// creditKeyArgs returns the arguments of "ag = creditName AND key =
// keyOfID AND pa = creditName", the condition of one party's credit for
// one id.
func creditKeyArgs(agreementID, id, partyID string) []any {
	h := idHash(id)
	return []any{agreementID, h, h, id, partyID}
}

// lookupKeysSQL returns (key, id) of each of n ids that has a key.
func lookupKeysSQL(n int) string {
	return strings.Replace(keysOfIDs(n), `SELECT s.key FROM`, `SELECT s.key, s.id FROM`, 1)
}

// createKeysSQL gives n new ids a key each and returns (key, id).
//
// Both inserts say OR IGNORE though neither can meet a conflict (id is
// never NULL, key is SQLite's and new): a statement that may abort has
// SQLite copy every page it first touches to a statement journal, a fifth
// of such an insert's CPU when it was measured (issue 18). createKeys
// checks that every id got its key.
func createKeysSQL(n int) string {
	return `INSERT OR IGNORE INTO stix_ids(id) VALUES (?)` + strings.Repeat(`, (?)`, n-1) + ` RETURNING key, id`
}

// enterHashesSQL enters n (hash, key) pairs in the small table.
func enterHashesSQL(n int) string {
	return `INSERT OR IGNORE INTO stix_id_hashes_new(h, key) VALUES (?, ?)` + strings.Repeat(`, (?, ?)`, n-1)
}

// lookupKeys puts into keys the key of each of ids that has one.
func lookupKeys(ctx context.Context, q querier, ids []string, keys map[string]int64) error {
	if len(ids) == 0 {
		return nil
	}
	lookupsForTest.Add(int64(len(ids)))
	lookup := &chunked{q: q, full: headChunk, sql: lookupKeysSQL}
	defer lookup.close()
	args := make([]any, 0, 3*headChunk)
	for lo := 0; lo < len(ids); lo += headChunk {
		chunk := ids[lo:min(lo+headChunk, len(ids))]
		if err := scanKeys(ctx, lookup, keys, len(chunk), keysOfIDsArgs(args[:0], chunk)); err != nil {
			return err
		}
	}
	return nil
}

// createKeys gives each of ids, none of which has a key, the next key, in
// the order given, puts it into keys, and enters its hash; when the keys
// pass a multiple of idMergeAt it moves the small table into the large.
func createKeys(ctx context.Context, q querier, ids []string, keys map[string]int64) error {
	if len(ids) == 0 {
		return nil
	}
	insert := &chunked{q: q, full: headChunk, sql: createKeysSQL}
	defer insert.close()
	hashes := &chunked{q: q, full: headChunk, sql: enterHashesSQL}
	defer hashes.close()
	filter := idFilterOf(q)
	args := make([]any, 0, 2*headChunk)
	for lo := 0; lo < len(ids); lo += headChunk {
		chunk := ids[lo:min(lo+headChunk, len(ids))]
		args = args[:0]
		for _, id := range chunk {
			args = append(args, id)
		}
		if err := scanKeys(ctx, insert, keys, len(chunk), args); err != nil {
			return err
		}
		args = args[:0]
		for _, id := range chunk {
			k, ok := keys[id]
			if !ok {
				return fmt.Errorf("sqlite: no key returned for new id %s", id)
			}
			h := idHash(id)
			filter.gave(h)
			args = append(args, h, k)
		}
		if err := hashes.exec(ctx, len(chunk), args); err != nil {
			return mapErr(err)
		}
	}
	// Keys are given one after another and each new one enters the small
	// table. Each part of the hash space moves to the large table once
	// every idMergeAt keys, in the transaction whose keys pass its
	// multiple of the step (idMergesPassed), so the small table holds at
	// most idMergeAt plus one transaction's ids. (Counting its rows
	// instead cost a walk of its leaves at every call, a POST of 10
	// objects as much as one of 1,000.)
	lo, hi := int64(math.MaxInt64), int64(0)
	for _, id := range ids {
		lo, hi = min(lo, keys[id]), max(hi, keys[id])
	}
	for _, r := range idMergesPassed(lo, hi) {
		from, to := r[0], r[1]
		if _, err := q.ExecContext(ctx, `INSERT INTO stix_id_hashes(h, key)
			SELECT h, key FROM stix_id_hashes_new WHERE h >= ? AND h <= ? ORDER BY h, key`, from, to); err != nil {
			return mapErr(err)
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM stix_id_hashes_new WHERE h >= ? AND h <= ?`, from, to); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// fillIDHashes is migration 38's step in Go: the hash of every id
// stix_ids holds, entered in stix_id_hashes in key order.
func fillIDHashes(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT key, id FROM stix_ids`)
	if err != nil {
		return err
	}
	type entry struct{ h, key int64 }
	var all []entry
	for rows.Next() {
		var e entry
		var id string
		if err := rows.Scan(&e.key, &id); err != nil {
			rows.Close()
			return err
		}
		e.h = idHash(id)
		all = append(all, e)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.h, b.h), cmp.Compare(a.key, b.key))
	})
	const chunk = 500
	args := make([]any, 0, 2*chunk)
	for lo := 0; lo < len(all); lo += chunk {
		part := all[lo:min(lo+chunk, len(all))]
		args = args[:0]
		for _, e := range part {
			args = append(args, e.h, e.key)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO stix_id_hashes(h, key) VALUES (?, ?)`+strings.Repeat(`, (?, ?)`, len(part)-1), args...); err != nil {
			return err
		}
	}
	return nil
}
