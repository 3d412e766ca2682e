package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/parley-cti/parley/internal/ledger"
)

// State is a party's local audit state for one profile: a directory beside
// the CLI's profiles holding what the party must not take from the server
// again — the pinned log key, the last accepted checkpoint, its receipts,
// the witness keys it trusts and, when it witnesses, what it last cosigned.
//
//	log.vkey            pinned note verifier key of the log
//	checkpoint.json     ledger.VerifierState: the last accepted checkpoint
//	receipts.jsonl      one Receipt per line, appended by client commands
//	witnesses.json      {"name": "vkey"} of pinned witness keys
//	witness-state.json  ledger.WitnessState of this party's own witness
type State struct{ Dir string }

func (s State) path(name string) string { return filepath.Join(s.Dir, name) }

// CheckpointPath is the ledger.Verifier state file.
func (s State) CheckpointPath() string { return s.path("checkpoint.json") }

// LogKey returns the pinned log key; an error wrapping fs.ErrNotExist if
// none is pinned yet.
func (s State) LogKey() (string, error) {
	b, err := os.ReadFile(s.path("log.vkey"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// PinLogKey records vkey as the log's key.
func (s State) PinLogKey(vkey string) error {
	return writeFileAtomic(s.path("log.vkey"), []byte(vkey+"\n"))
}

// Receipt is a ledger index a state-changing response returned, with what
// the party expects to find there. Hash is pinned the first time the
// receipt is proven, so a later edit of that entry is caught even if the
// server rebuilt its tree around it.
type Receipt struct {
	Index   int64       `json:"index"`
	Kind    ledger.Kind `json:"kind,omitempty"`
	Subject string      `json:"subject,omitempty"`
	Party   string      `json:"party,omitempty"` // the party the entry must concern
	// Digests, if set, are the plain digests (role → "sha256:<hex>") the
	// party knows the entry binds: verify fetches the entry's opening key
	// (Options.API must be an Opener) and checks the commitments open to them.
	Digests  map[string]string `json:"digests,omitempty"`
	Hash     *tlog.Hash        `json:"leaf_hash,omitempty"`
	Recorded time.Time         `json:"recorded"`
}

// RecordReceipt appends a receipt. It is what client commands call after a
// state-changing response carrying X-Parley-Ledger-Index.
func (s State) RecordReceipt(r Receipt) error {
	if r.Index < 0 {
		return fmt.Errorf("receipt index %d: %w", r.Index, ledger.ErrInvalid)
	}
	if r.Recorded.IsZero() {
		r.Recorded = time.Now().UTC().Truncate(time.Second)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(s.path("receipts.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	// One write of a whole line: concurrent commands never interleave lines.
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Receipts returns the recorded receipts, one per index (the first
// recorded wins, a pinned hash wins over none), in index order.
func (s State) Receipts() ([]Receipt, error) {
	b, err := os.ReadFile(s.path("receipts.jsonl"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	byIndex := map[int64]Receipt{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r Receipt
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Index < 0 {
			return nil, fmt.Errorf("%s line %d: %w", s.path("receipts.jsonl"), n, ledger.ErrMalformed)
		}
		if old, ok := byIndex[r.Index]; ok && (old.Hash != nil || r.Hash == nil) {
			continue
		}
		byIndex[r.Index] = r
	}
	out := make([]Receipt, 0, len(byIndex))
	for _, r := range byIndex {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

// saveReceipts rewrites the receipts file (after pinning hashes).
func (s State) saveReceipts(rs []Receipt) error {
	var b bytes.Buffer
	for _, r := range rs {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return writeFileAtomic(s.path("receipts.jsonl"), b.Bytes())
}

// Witnesses returns the pinned witness keys by name.
func (s State) Witnesses() (map[string]string, error) {
	out := map[string]string{}
	b, err := os.ReadFile(s.path("witnesses.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", s.path("witnesses.json"), ledger.ErrMalformed)
	}
	return out, nil
}

// PinWitness records a witness's tlog-cosignature/v1 vkey under its name
// and returns the name. A different key under a pinned name is refused
// with ErrKeyChanged.
func (s State) PinWitness(vkey string) (string, error) {
	v, err := ledger.NewCosignatureVerifier(vkey)
	if err != nil {
		return "", err
	}
	ws, err := s.Witnesses()
	if err != nil {
		return "", err
	}
	if old, ok := ws[v.Name()]; ok {
		if old != vkey {
			return "", fmt.Errorf("witness %s is pinned with another key: %w", v.Name(), ErrKeyChanged)
		}
		return v.Name(), nil
	}
	ws[v.Name()] = vkey
	b, err := json.MarshalIndent(ws, "", "  ")
	if err != nil {
		return "", err
	}
	return v.Name(), writeFileAtomic(s.path("witnesses.json"), append(b, '\n'))
}

// WitnessState returns what this party's witness last cosigned (zero if
// nothing).
func (s State) WitnessState() (ledger.WitnessState, error) {
	var st ledger.WitnessState
	b, err := os.ReadFile(s.path("witness-state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Size < 0 {
		return st, fmt.Errorf("%s: %w", s.path("witness-state.json"), ledger.ErrMalformed)
	}
	return st, nil
}

// SaveWitnessState persists the witness's state; Witness calls it before
// answering, as tlog-witness requires.
func (s State) SaveWitnessState(st ledger.WitnessState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path("witness-state.json"), append(b, '\n'))
}

// writeFileAtomic writes via a temporary file and rename, so a crash never
// leaves a torn state file (losing pinned state would reopen TOFU).
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
