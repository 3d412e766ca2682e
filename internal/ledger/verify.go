package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Remote is what a Verifier reads from: usually the server over HTTP
// (audit.LedgerClient), or a local Reader (NewLocalRemote) in tests and in
// `parley verify --data-dir`. Nothing it returns is trusted.
type Remote interface {
	// Checkpoint returns the latest signed checkpoint note (cosignatures may follow).
	Checkpoint(ctx context.Context) ([]byte, error)
	ConsistencyProof(ctx context.Context, from, to int64) (tlog.TreeProof, error)
	InclusionProof(ctx context.Context, index, size int64) (tlog.RecordProof, error)
	// Entries returns entries [start, end); it may return fewer than asked
	// (but at least one), as servers page.
	Entries(ctx context.Context, start, end int64) ([][]byte, error)
}

// localRemote serves a Verifier from a Reader.
type localRemote struct{ r Reader }

// NewLocalRemote returns a Remote reading directly from r.
func NewLocalRemote(r Reader) Remote { return localRemote{r} }

func (l localRemote) Checkpoint(ctx context.Context) ([]byte, error) {
	size, n, err := l.r.LatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	lines, err := l.r.Cosignatures(ctx, size)
	if err != nil {
		return nil, err
	}
	return WithCosignatures(n, lines), nil
}

func (l localRemote) ConsistencyProof(ctx context.Context, from, to int64) (tlog.TreeProof, error) {
	return ConsistencyProof(ctx, l.r, from, to)
}

func (l localRemote) InclusionProof(ctx context.Context, index, size int64) (tlog.RecordProof, error) {
	return InclusionProof(ctx, l.r, index, size)
}

func (l localRemote) Entries(ctx context.Context, start, end int64) ([][]byte, error) {
	return l.r.ReadEntries(ctx, start, end)
}

// VerifierState is the state file of a Verifier: the last checkpoint it
// accepted. Its signature is re-checked on load.
type VerifierState struct {
	Checkpoint []byte `json:"checkpoint"`
}

// Verifier runs the client-side checks of `parley verify`. It remembers the
// last checkpoint it accepted in a state file and refuses to go back.
// Not safe for concurrent use.
type Verifier struct {
	log       note.Verifier
	statePath string
	last      *Checkpoint
	lastNote  []byte
	witnesses []*CosignatureVerifier
	quorum    int
}

// RequireCosignatures makes Accept (and Update) refuse, with
// ErrBadSignature, any checkpoint not cosigned by at least quorum of the
// witnesses whose tlog-cosignature/v1 vkeys are given. This is what stops
// a log from showing different histories to different parties.
func (v *Verifier) RequireCosignatures(witnessVKeys []string, quorum int) error {
	if quorum < 0 || quorum > len(witnessVKeys) {
		return fmt.Errorf("quorum %d of %d witnesses: %w", quorum, len(witnessVKeys), ErrInvalid)
	}
	ws := make([]*CosignatureVerifier, 0, len(witnessVKeys))
	for _, k := range witnessVKeys {
		w, err := NewCosignatureVerifier(k)
		if err != nil {
			return err
		}
		ws = append(ws, w)
	}
	v.witnesses, v.quorum = ws, quorum
	return nil
}

// checkQuorum counts distinct configured witnesses with a valid cosignature.
func (v *Verifier) checkQuorum(signed []byte, c Checkpoint) error {
	if v.quorum == 0 {
		return nil
	}
	_, sigs, _ := bytes.Cut(signed, []byte("\n\n"))
	body := c.Marshal()
	valid := map[string]bool{}
	for _, line := range bytes.SplitAfter(sigs, []byte("\n")) {
		cs, err := ParseSignatureLine(line)
		if err != nil {
			continue
		}
		for _, w := range v.witnesses {
			if cs.Name == w.Name() && cs.KeyHash == w.KeyHash() && w.Verify(body, cs.Sig) {
				valid[w.Name()+"\x00"+fmt.Sprint(w.KeyHash())] = true
			}
		}
	}
	if len(valid) < v.quorum {
		return fmt.Errorf("checkpoint %d has %d valid cosignatures, need %d: %w", c.Size, len(valid), v.quorum, ErrBadSignature)
	}
	return nil
}

// NewVerifier returns a verifier for the log with note verifier key vkey.
// statePath is the state file ("" keeps state in memory only); a missing
// file means nothing was seen yet. A state file whose checkpoint does not
// verify fails with ErrBadSignature or ErrMalformed.
func NewVerifier(vkey, statePath string) (*Verifier, error) {
	nv, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("log verifier key: %w: %w", ErrInvalid, err)
	}
	v := &Verifier{log: nv, statePath: statePath}
	if statePath == "" {
		return v, nil
	}
	data, err := os.ReadFile(statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return v, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verifier state: %w", err)
	}
	var st VerifierState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("verifier state %s: %w", statePath, ErrMalformed)
	}
	c, err := OpenCheckpoint(st.Checkpoint, nv)
	if err != nil {
		return nil, fmt.Errorf("verifier state %s: %w", statePath, err)
	}
	v.last, v.lastNote = &c, st.Checkpoint
	return v, nil
}

// Last returns the last accepted checkpoint; ok is false if none.
func (v *Verifier) Last() (c Checkpoint, ok bool) {
	if v.last == nil {
		return Checkpoint{}, false
	}
	return *v.last, true
}

// Accept checks a signed checkpoint against the last accepted one and, if
// it is acceptable, makes it the last one and saves the state file.
// proof is the consistency proof from the last accepted size to the new
// one (ignored when there is none). Errors: ErrBadSignature, ErrMalformed,
// ErrRollback (smaller size), ErrFork (same size, different root),
// ErrInconsistent or ErrTruncatedProof (not an extension of the last one).
func (v *Verifier) Accept(signed []byte, proof tlog.TreeProof) (Checkpoint, error) {
	c, err := OpenCheckpoint(signed, v.log)
	if err != nil {
		return Checkpoint{}, err
	}
	if err := v.checkQuorum(signed, c); err != nil {
		return Checkpoint{}, err
	}
	if last := v.last; last != nil {
		switch {
		case c.Size < last.Size:
			return Checkpoint{}, fmt.Errorf("checkpoint size %d after size %d: %w", c.Size, last.Size, ErrRollback)
		case c.Size == last.Size && c.Hash != last.Hash:
			return Checkpoint{}, fmt.Errorf("checkpoint at size %d has root %s, seen %s: %w", c.Size, c.Hash, last.Hash, ErrFork)
		case c.Size > last.Size:
			if err := CheckConsistency(proof, last.Size, last.Hash, c.Size, c.Hash); err != nil {
				return Checkpoint{}, fmt.Errorf("from last seen size %d: %w", last.Size, err)
			}
		}
	}
	if err := v.save(signed); err != nil {
		return Checkpoint{}, err
	}
	v.last, v.lastNote = &c, signed
	return c, nil
}

func (v *Verifier) save(signed []byte) error {
	if v.statePath == "" {
		return nil
	}
	data, err := json.Marshal(VerifierState{Checkpoint: signed})
	if err != nil {
		return err
	}
	// Write-then-rename so a crash never leaves a torn state file.
	tmp, err := os.CreateTemp(filepath.Dir(v.statePath), ".ledger-state-*")
	if err != nil {
		return fmt.Errorf("verifier state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("verifier state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("verifier state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("verifier state: %w", err)
	}
	if err := os.Rename(tmp.Name(), v.statePath); err != nil {
		return fmt.Errorf("verifier state: %w", err)
	}
	return nil
}

// Update fetches the remote's latest checkpoint and a consistency proof from
// the last accepted one, and accepts it (see Accept for the errors).
func (v *Verifier) Update(ctx context.Context, r Remote) (Checkpoint, error) {
	signed, err := r.Checkpoint(ctx)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("fetch checkpoint: %w", err)
	}
	c, err := OpenCheckpoint(signed, v.log)
	if err != nil {
		return Checkpoint{}, err
	}
	var proof tlog.TreeProof
	if last := v.last; last != nil && c.Size > last.Size {
		if proof, err = r.ConsistencyProof(ctx, last.Size, c.Size); err != nil {
			return Checkpoint{}, fmt.Errorf("fetch consistency proof %d→%d: %w", last.Size, c.Size, err)
		}
	}
	return v.Accept(signed, proof)
}

// CheckReceipts proves every receipt is in the last accepted checkpoint.
// ErrBadProof or ErrTruncatedProof name the first receipt that fails;
// ErrNotFound if no checkpoint was accepted or a receipt is beyond it.
func (v *Verifier) CheckReceipts(ctx context.Context, r Remote, receipts []Receipt) error {
	if v.last == nil {
		return fmt.Errorf("no checkpoint accepted yet: %w", ErrNotFound)
	}
	c := *v.last
	for _, rc := range receipts {
		if rc.Index < 0 || rc.Index >= c.Size {
			return fmt.Errorf("receipt for entry %d beyond checkpoint size %d: %w", rc.Index, c.Size, ErrNotFound)
		}
		p, err := r.InclusionProof(ctx, rc.Index, c.Size)
		if err != nil {
			return fmt.Errorf("fetch inclusion proof for entry %d: %w", rc.Index, err)
		}
		if err := CheckInclusion(p, c.Size, c.Hash, rc.Index, rc.Hash); err != nil {
			return fmt.Errorf("receipt for entry %d: %w", rc.Index, err)
		}
	}
	return nil
}

// ReplayFunc receives each verified entry in index order. Domain packages
// use it to recompute their state from the log.
type ReplayFunc func(index int64, raw []byte, e Entry) error

// replayChunk is how many entries Replay verifies per consistency proof.
const replayChunk = 1024

// Replay fetches every entry of the last accepted checkpoint, checks that
// together they hash to its root, and passes each to fn. Entries reach fn
// only after the prefix holding them has been proven consistent with the
// checkpoint, so fn never sees an unverified entry. ErrEntryMismatch names
// the first entry that differs from the tree; ErrMalformed an entry that
// is not a canonical statement.
func (v *Verifier) Replay(ctx context.Context, r Remote, fn ReplayFunc) error {
	if v.last == nil {
		return fmt.Errorf("no checkpoint accepted yet: %w", ErrNotFound)
	}
	c := *v.last
	var f frontier
	for start := int64(0); start < c.Size; {
		end := min(start+replayChunk, c.Size)
		chunk, err := fetchEntries(ctx, r, start, end)
		if err != nil {
			if errors.Is(err, ErrEntryMismatch) {
				// Some entries are missing: name the first one that differs.
				return locateMismatch(ctx, r, c, start, chunk, err)
			}
			return err
		}
		for _, e := range chunk {
			f.push(tlog.RecordHash(e))
		}
		root := f.root()
		if end == c.Size {
			if root != c.Hash {
				err = fmt.Errorf("entries [%d, %d) do not hash to the checkpoint root: %w", start, end, ErrEntryMismatch)
			}
		} else {
			var p tlog.TreeProof
			if p, err = r.ConsistencyProof(ctx, end, c.Size); err != nil {
				return fmt.Errorf("fetch consistency proof %d→%d: %w", end, c.Size, err)
			}
			if CheckConsistency(p, end, root, c.Size, c.Hash) != nil {
				err = fmt.Errorf("entries [%d, %d) are not a prefix of checkpoint %d: %w", 0, end, c.Size, ErrEntryMismatch)
			}
		}
		if err != nil {
			return locateMismatch(ctx, r, c, start, chunk, err)
		}
		for i, raw := range chunk {
			idx := start + int64(i)
			e, err := DecodeEntry(raw)
			if err != nil {
				return fmt.Errorf("entry %d: %w", idx, err)
			}
			if err := fn(idx, raw, e); err != nil {
				return fmt.Errorf("replay entry %d: %w", idx, err)
			}
		}
		start = end
	}
	return nil
}

// fetchEntries fetches [start, end). If the remote says some of them do not
// exist (the log lost entries its checkpoint covers), it returns those it
// could get, one by one, and an ErrEntryMismatch.
func fetchEntries(ctx context.Context, r Remote, start, end int64) ([][]byte, error) {
	var chunk [][]byte
	for at := start; at < end; {
		got, err := r.Entries(ctx, at, end)
		if errors.Is(err, ErrNotFound) {
			for ; at < end; at++ {
				one, err := r.Entries(ctx, at, at+1)
				if err != nil || len(one) != 1 {
					break
				}
				chunk = append(chunk, one[0])
			}
			return chunk, fmt.Errorf("entry %d is missing from the log: %w", at, ErrEntryMismatch)
		}
		if err != nil {
			return nil, fmt.Errorf("fetch entries [%d, %d): %w", at, end, err)
		}
		if len(got) == 0 || int64(len(got)) > end-at {
			return nil, fmt.Errorf("fetch entries [%d, %d): %d returned: %w", at, end, len(got), ErrEntryMismatch)
		}
		chunk = append(chunk, got...)
		at += int64(len(got))
	}
	return chunk, nil
}

// locateMismatch names the first entry of a failed chunk whose inclusion
// proof fails, so the error points at the edited entry rather than a range.
func locateMismatch(ctx context.Context, r Remote, c Checkpoint, start int64, chunk [][]byte, orig error) error {
	for i, raw := range chunk {
		idx := start + int64(i)
		p, err := r.InclusionProof(ctx, idx, c.Size)
		if err != nil {
			break
		}
		if CheckInclusion(p, c.Size, c.Hash, idx, tlog.RecordHash(raw)) != nil {
			return fmt.Errorf("entry %d does not match checkpoint %d: %w", idx, c.Size, ErrEntryMismatch)
		}
	}
	return orig
}

// frontier is a compact Merkle range from 0: the roots of the maximal
// complete subtrees, left to right, enough to compute the tree hash of the
// entries pushed so far in O(log n) memory.
type frontier struct {
	hashes []tlog.Hash
	size   int64
}

func (f *frontier) push(h tlog.Hash) {
	// Merge with as many left siblings as size has trailing one bits.
	for s := f.size; s&1 == 1; s >>= 1 {
		last := len(f.hashes) - 1
		h = tlog.NodeHash(f.hashes[last], h)
		f.hashes = f.hashes[:last]
	}
	f.hashes = append(f.hashes, h)
	f.size++
}

func (f *frontier) root() tlog.Hash {
	if len(f.hashes) == 0 {
		return sha256.Sum256(nil) // RFC 6962: the empty tree hashes the empty string
	}
	h := f.hashes[len(f.hashes)-1]
	for i := len(f.hashes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(f.hashes[i], h)
	}
	return h
}
