package matching

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/parley-cti/parley/internal/store"
)

// memChunks keeps chunks in a map: the part of store.Matches that chunk
// storage and reading use (the backends are covered by storetest).
type memChunks struct {
	store.Matches
	chunks map[string][]byte
	fail   int // PutChunk fails at this seq (-1: never)
}

func key(id, party, upload string, seq int) string {
	return fmt.Sprint(id, "|", party, "|", upload, "|", seq)
}

func (m *memChunks) PutChunk(_ context.Context, id, party, upload string, seq int, data []byte) error {
	if seq == m.fail {
		return store.ErrUnavailable
	}
	if len(data) > store.MatchChunkSize {
		return fmt.Errorf("chunk of %d bytes", len(data))
	}
	k := key(id, party, upload, seq)
	if _, ok := m.chunks[k]; ok {
		return store.ErrConflict
	}
	m.chunks[k] = bytes.Clone(data) // the caller reuses its buffer
	return nil
}

func (m *memChunks) Chunk(_ context.Context, id, party, upload string, seq int) ([]byte, error) {
	b, ok := m.chunks[key(id, party, upload, seq)]
	if !ok {
		return nil, store.ErrNotFound
	}
	return b, nil
}

// TestChunksRoundTrip: whatever is stored in chunks reads back whole,
// through readers of any granularity, and never as one chunk over the size.
func TestChunksRoundTrip(t *testing.T) {
	const c = store.MatchChunkSize
	for _, size := range []int{0, 1, c - 1, c, c + 1, 3*c + 5} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			msg := make([]byte, size)
			rand.Read(msg)
			ms := &memChunks{chunks: map[string][]byte{}, fail: -1}
			n, err := storeChunks(context.Background(), ms, "match--1", "party--a", "up", iotest.HalfReader(bytes.NewReader(msg)))
			if err != nil || n != int64(size) {
				t.Fatalf("stored %d bytes, %v; want %d", n, err, size)
			}
			if want := (size + c - 1) / c; len(ms.chunks) != want {
				t.Fatalf("%d chunks, want %d", len(ms.chunks), want)
			}
			side := store.MatchSide{PartyID: "party--a", Upload: "up", Size: n}
			for name, wrap := range map[string]func(io.Reader) io.Reader{"whole": func(r io.Reader) io.Reader { return r }, "half": iotest.HalfReader} {
				got, err := io.ReadAll(wrap(&chunkReader{ctx: context.Background(), st: ms, id: "match--1", side: side}))
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("%s read %d bytes, %v; want the %d stored", name, len(got), err, size)
				}
			}
		})
	}
}

// TestChunksFailures: a store failure stops storing with its error, and a
// missing chunk is an error on read, never a silently short message.
func TestChunksFailures(t *testing.T) {
	msg := make([]byte, 2*store.MatchChunkSize+10)
	ms := &memChunks{chunks: map[string][]byte{}, fail: 1}
	if _, err := storeChunks(context.Background(), ms, "m", "p", "u", bytes.NewReader(msg)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("store failing at chunk 1: %v", err)
	}
	side := store.MatchSide{PartyID: "p", Upload: "u", Size: int64(len(msg))}
	if _, err := io.ReadAll(&chunkReader{ctx: context.Background(), st: ms, id: "m", side: side}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reading past the stored chunks: %v", err)
	}
	boom := errors.New("boom")
	if _, err := storeChunks(context.Background(), ms, "m", "p", "u2", iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Fatalf("a failing body: %v", err)
	}
}
