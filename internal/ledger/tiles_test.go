package ledger

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

func TestTilePaths(t *testing.T) {
	tests := []struct {
		path string
		ref  TileRef
	}{
		{"tile/0/000", TileRef{0, 0, 256}},
		{"tile/0/x001/234", TileRef{0, 1234, 256}},
		{"tile/2/x001/x234/067.p/8", TileRef{2, 1234067, 8}},
		{"tile/entries/999.p/255", TileRef{EntriesLevel, 999, 255}},
		{"tile/entries/x001/000", TileRef{EntriesLevel, 1000, 256}},
	}
	for _, tt := range tests {
		got, err := ParseTilePath(tt.path)
		if err != nil || got != tt.ref {
			t.Errorf("ParseTilePath(%q) = %+v, %v; want %+v", tt.path, got, err, tt.ref)
		}
		if p := tt.ref.Path(); p != tt.path {
			t.Errorf("%+v.Path() = %q, want %q", tt.ref, p, tt.path)
		}
	}
	for _, bad := range []string{
		"", "tile/", "tile/0", "tile/0/1", "tile/0/0001", "tile/0/x000/001", "tile/0/001/002",
		"tile/8/000", "tile/-1/000", "tile/00/000", "tile/0/000.p/0", "tile/0/000.p/256",
		"tile/0/000.p/08", "tile/0/000.p/", "tile/data/000", "tile/0/x1/000", "tile/0/+01",
		"tile/0/x009/x223/x372/x036/x854/x775/808",
	} {
		if _, err := ParseTilePath(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseTilePath(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func FuzzParseTilePath(f *testing.F) {
	f.Add("tile/2/x001/x234/067.p/8")
	f.Add("tile/entries/000")
	f.Fuzz(func(t *testing.T, p string) {
		ref, err := ParseTilePath(p)
		if err != nil {
			return
		}
		if ref.Path() != p {
			t.Fatalf("%q parsed to %+v which formats as %q", p, ref, ref.Path())
		}
	})
}

func FuzzParseEntryBundle(f *testing.F) {
	b, _ := MarshalEntryBundle([][]byte{[]byte("a"), {}, []byte("ccc")})
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		es, err := ParseEntryBundle(in)
		if err != nil {
			return
		}
		out, err := MarshalEntryBundle(es)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("bundle round trip: %v", err)
		}
	})
}

func TestReadTiles(t *testing.T) {
	ctx := context.Background()
	st := NewMemStore()
	const size = 256*3 + 17
	records := appendN(t, st, 0, size, 1000)

	// Hash tiles: a client rebuilds the root from tiles alone with tlog's
	// tile reader, which also checks each tile against the tree hash.
	root, _ := TreeHash(ctx, st, size)
	tr := tileFetcher{t: t, st: st, size: size}
	hr := tlog.TileHashReader(tlog.Tree{N: size, Hash: root}, tr)
	for _, idx := range []int64{0, 255, 256, size - 1} {
		p, err := tlog.ProveRecord(size, idx, hr)
		if err != nil {
			t.Fatalf("prove %d from tiles: %v", idx, err)
		}
		if err := CheckInclusion(p, size, root, idx, tlog.RecordHash(records[idx])); err != nil {
			t.Fatal(err)
		}
	}

	// Entry bundles.
	for _, ref := range []TileRef{{EntriesLevel, 1, 256}, {EntriesLevel, 3, 17}, {EntriesLevel, 3, 5}} {
		data, err := ReadTile(ctx, st, ref, size)
		if err != nil {
			t.Fatalf("%s: %v", ref.Path(), err)
		}
		es, err := ParseEntryBundle(data)
		if err != nil || len(es) != ref.Width {
			t.Fatalf("%s: %d entries, %v", ref.Path(), len(es), err)
		}
		for i, e := range es {
			if !bytes.Equal(e, records[ref.N*256+int64(i)]) {
				t.Fatalf("%s entry %d differs", ref.Path(), i)
			}
		}
	}
	for _, ref := range []TileRef{{EntriesLevel, 3, 256}, {EntriesLevel, 3, 18}, {0, 4, 1}, {1, 0, 4}, {1, 0, 256}, {2, 0, 1}} {
		if _, err := ReadTile(ctx, st, ref, size); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s at size %d: %v, want ErrNotFound", ref.Path(), size, err)
		}
	}
}

// tileFetcher serves tlog.TileReader from ReadTile, converting tlog's tile
// names (which include the height) to ours.
type tileFetcher struct {
	t    *testing.T
	st   *MemStore
	size int64
}

func (f tileFetcher) Height() int { return TileHeight }

func (f tileFetcher) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tl := range tiles {
		data, err := ReadTile(context.Background(), f.st, TileRef{Level: tl.L, N: tl.N, Width: tl.W}, f.size)
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (f tileFetcher) SaveTiles([]tlog.Tile, [][]byte) {}
