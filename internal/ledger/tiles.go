package ledger

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// TileHeight is the C2SP tlog-tiles height: 256 hashes or entries per tile.
const TileHeight = 8

const tileWidth = 1 << TileHeight

// maxTileLevel bounds L: 8·L must stay below 64 bits of tree.
const maxTileLevel = 63 / TileHeight

// EntriesLevel marks an entry bundle in TileRef.Level.
const EntriesLevel = -1

// TileRef names a C2SP tlog-tiles resource: a hash tile at Level ≥ 0, or an
// entry bundle at EntriesLevel. Width is 256 for a full tile, 1..255 for a
// partial one.
type TileRef struct {
	Level int
	N     int64
	Width int
}

// Path returns the path below the log prefix, e.g. "tile/0/x001/234" or
// "tile/entries/005.p/17".
func (t TileRef) Path() string {
	var b strings.Builder
	b.WriteString("tile/")
	if t.Level == EntriesLevel {
		b.WriteString("entries")
	} else {
		b.WriteString(strconv.Itoa(t.Level))
	}
	b.WriteByte('/')
	b.WriteString(formatTileIndex(t.N))
	if t.Width < tileWidth {
		fmt.Fprintf(&b, ".p/%d", t.Width)
	}
	return b.String()
}

func formatTileIndex(n int64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	return s
}

// ParseTilePath parses a path as produced by TileRef.Path, accepting only
// that canonical form (so each tile has exactly one URL).
func ParseTilePath(path string) (TileRef, error) {
	bad := func(why string) (TileRef, error) {
		return TileRef{}, fmt.Errorf("tile path %.100q: %s: %w", path, why, ErrMalformed)
	}
	rest, ok := strings.CutPrefix(path, "tile/")
	if !ok {
		return bad("no tile/ prefix")
	}
	levelText, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("no index")
	}
	t := TileRef{Width: tileWidth}
	if levelText == "entries" {
		t.Level = EntriesLevel
	} else {
		l, err := strconv.Atoi(levelText)
		if err != nil || l < 0 || l > maxTileLevel || strconv.Itoa(l) != levelText {
			return bad("bad level")
		}
		t.Level = l
	}
	if idx, w, ok := strings.Cut(rest, ".p/"); ok {
		width, err := strconv.Atoi(w)
		if err != nil || width < 1 || width >= tileWidth || strconv.Itoa(width) != w {
			return bad("bad partial width")
		}
		t.Width, rest = width, idx
	}
	elems := strings.Split(rest, "/")
	if len(elems) > 7 {
		return bad("index too long")
	}
	for i, e := range elems {
		if i < len(elems)-1 {
			var ok bool
			if e, ok = strings.CutPrefix(e, "x"); !ok {
				return bad("index element without x")
			}
		}
		if len(e) != 3 || strings.Trim(e, "0123456789") != "" {
			return bad("index element not 3 digits")
		}
		d, _ := strconv.Atoi(e)
		if t.N > (1<<63-1-int64(d))/1000 {
			return bad("index overflows")
		}
		t.N = t.N*1000 + int64(d)
	}
	if formatTileIndex(t.N) != rest {
		return bad("index not canonical")
	}
	return t, nil
}

// ReadTile returns a tile's bytes for a log of treeSize entries: 32-byte
// hashes for a hash tile, length-prefixed entries for an entry bundle.
// ErrNotFound if the tile (at that width) does not exist at treeSize.
func ReadTile(ctx context.Context, r Reader, t TileRef, treeSize int64) ([]byte, error) {
	if t.Width < 1 || t.Width > tileWidth || t.N < 0 || t.Level < EntriesLevel || t.Level > maxTileLevel {
		return nil, fmt.Errorf("tile %+v: %w", t, ErrInvalid)
	}
	level := max(t.Level, 0) * TileHeight
	nodes := treeSize >> uint(level) // complete nodes at the tile's bottom level
	if t.N > (nodes-int64(t.Width))/tileWidth || t.N*tileWidth+int64(t.Width) > nodes {
		return nil, fmt.Errorf("tile %s beyond tree size %d: %w", t.Path(), treeSize, ErrNotFound)
	}
	if t.Level == EntriesLevel {
		start := t.N * tileWidth
		entries, err := r.ReadEntries(ctx, start, start+int64(t.Width))
		if err != nil {
			return nil, fmt.Errorf("tile %s: %w", t.Path(), err)
		}
		return MarshalEntryBundle(entries)
	}
	data, err := tlog.ReadTileData(tlog.Tile{H: TileHeight, L: t.Level, N: t.N, W: t.Width}, hashReader(ctx, r))
	if err != nil {
		return nil, fmt.Errorf("tile %s: %w", t.Path(), err)
	}
	return data, nil
}

// MarshalEntryBundle encodes entries as a C2SP entry bundle: each entry
// prefixed with its length as a big-endian uint16.
func MarshalEntryBundle(entries [][]byte) ([]byte, error) {
	n := 0
	for i, e := range entries {
		if len(e) > MaxEntrySize {
			return nil, fmt.Errorf("bundle entry %d of %d bytes: %w", i, len(e), ErrInvalid)
		}
		n += 2 + len(e)
	}
	out := make([]byte, 0, n)
	for _, e := range entries {
		out = binary.BigEndian.AppendUint16(out, uint16(len(e)))
		out = append(out, e...)
	}
	return out, nil
}

// ParseEntryBundle decodes a C2SP entry bundle of at most 256 entries.
func ParseEntryBundle(data []byte) ([][]byte, error) {
	var out [][]byte
	for len(data) > 0 {
		if len(out) == tileWidth {
			return nil, fmt.Errorf("entry bundle has more than %d entries: %w", tileWidth, ErrMalformed)
		}
		if len(data) < 2 {
			return nil, fmt.Errorf("entry bundle: truncated length: %w", ErrMalformed)
		}
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			return nil, fmt.Errorf("entry bundle: entry %d truncated: %w", len(out), ErrMalformed)
		}
		out = append(out, data[2:2+n:2+n])
		data = data[2+n:]
	}
	return out, nil
}
