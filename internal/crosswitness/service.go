package crosswitness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/parley-cti/parley/internal/fault"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/node"
	"github.com/parley-cti/parley/internal/store"
)

// Sentinels for what a peer did wrong, each a kind of incident.
var (
	// ErrPeerMisbehaved is what every incident wraps.
	ErrPeerMisbehaved = fault.Generic(fault.Conflict, "crosswitness: peer misbehaved")
	// ErrKeyChanged: a peer named other ledger or witness keys than those
	// this node learned from it before.
	ErrKeyChanged = fmt.Errorf("%w: key changed", ErrPeerMisbehaved)
	// ErrNoView: this node has not learned a peer's ledger key yet.
	ErrNoView = errors.New("crosswitness: no view of the peer's log yet")
)

// Incident kinds, as stored, logged and sent to parties.
const (
	KindForged       = "forged"       // a checkpoint or cosignature not signed by the key it claims
	KindFork         = "fork"         // two roots at one size, or views no proof joins
	KindRollback     = "rollback"     // a checkpoint smaller than one already cosigned
	KindInconsistent = "inconsistent" // a consistency proof that does not verify
	KindKeyChanged   = "key_changed"  // other keys than those learned
	KindReceipt      = "receipt"      // the log no longer holds an entry it gave a receipt for
)

// EventKind is the kind of the event each party of this node gets for an
// incident.
const EventKind = "node.peer_incident"

// WitnessKeySetting holds this node's witness private key.
const WitnessKeySetting = "node.witness-skey"

// Service is one node's cross-witnessing: the witness side of its peers'
// submissions, the submitter of its own checkpoints, and the checks of
// `parley verify --peers`.
type Service struct {
	st     store.Store
	id     *node.Identity
	signer *ledger.Signer
	wskey  string
	wvkey  string

	// AddWitness registers a peer's witness key as a witness of this
	// node's log (server.AddWitness); it returns the witness name.
	AddWitness func(ctx context.Context, vkey string) (string, error)
	// HTTP sends node requests (a zero client when nil).
	HTTP *http.Client
	// Interval is how often Run looks for peers to submit to besides
	// each new checkpoint (default 1 s); MinBackoff and MaxBackoff bound
	// the wait after a failed submission (defaults 1 s and 5 min).
	Interval, MinBackoff, MaxBackoff time.Duration
	Logger                           *slog.Logger
	Now                              func() time.Time

	kick  chan struct{}
	mu    sync.Mutex
	peers map[string]*submitState // by node key id
}

// New returns the service of the node id whose ledger signer is signer,
// creating its witness key on first use.
func New(ctx context.Context, st store.Store, id *node.Identity, signer *ledger.Signer) (*Service, error) {
	// The witness is named after the node key ("parley-node-…-witness").
	name, _, _ := strings.Cut(id.Public.VKey, "+")
	skey, _, err := ledger.GenerateWitnessKey(name + "-witness")
	if err != nil {
		return nil, err
	}
	v, err := st.Settings().PutIfAbsent(ctx, WitnessKeySetting, []byte(skey))
	if err != nil {
		return nil, fmt.Errorf("loading the node's witness key: %w", err)
	}
	vkey, err := ledger.WitnessVerifierKey(string(v))
	if err != nil {
		return nil, fmt.Errorf("the node's witness key: %w", err)
	}
	return &Service{st: st, id: id, signer: signer, wskey: string(v), wvkey: vkey,
		kick: make(chan struct{}, 1), peers: map[string]*submitState{}}, nil
}

// WitnessKey returns this node's witness verifier key.
func (s *Service) WitnessKey() string { return s.wvkey }

// LogKey returns this node's ledger verifier key.
func (s *Service) LogKey() string { return s.signer.VerifierKey() }

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Service) client(p store.Peer) *node.Client {
	return &node.Client{Self: s.id, Peer: p, HTTP: s.HTTP, Now: s.Now}
}

// Incident is a peer's misbehaviour, with the evidence.
type Incident struct {
	Peer    string // its pinned name
	PeerKey string // its node key
	KeyID   string
	Kind    string
	Detail  string
	Ours    []byte // the checkpoint this node (or another peer) held
	Theirs  []byte // the one the peer showed
}

func (i Incident) Error() string {
	return fmt.Sprintf("peer %q (node key %s): %s: %s", i.Peer, i.PeerKey, i.Kind, i.Detail)
}

func (i Incident) Unwrap() error {
	if i.Kind == KindKeyChanged {
		return ErrKeyChanged
	}
	return ErrPeerMisbehaved
}

func checkpointAttrs(prefix string, signed []byte, attrs map[string]string) {
	if len(signed) == 0 {
		return
	}
	text, _, _ := bytes.Cut(signed, []byte("\n\n"))
	c, err := ledger.ParseCheckpoint(append(bytes.Clone(text), '\n'))
	if err != nil {
		return
	}
	attrs[prefix+"_size"] = fmt.Sprint(c.Size)
	attrs[prefix+"_root"] = c.Hash.String()
}

// record stores an incident once, appends it to the ledger, alerts every
// party and logs it. It returns whether it was new. Its failure is logged,
// never returned to the peer: the refusal stands either way.
func (s *Service) record(ctx context.Context, in Incident) bool {
	h := sha256.New()
	for _, b := range [][]byte{[]byte(in.Kind), in.Ours, in.Theirs, []byte(in.Detail)} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	digest := hex.EncodeToString(h.Sum(nil))
	now := s.now().UTC()
	attrs := map[string]string{"peer": in.Peer, "peer_key": in.PeerKey, "incident": in.Kind}
	checkpointAttrs("ours", in.Ours, attrs)
	checkpointAttrs("theirs", in.Theirs, attrs)
	data, _ := json.Marshal(map[string]any{"peer": in.Peer, "peer_key": in.PeerKey, "incident": in.Kind, "detail": in.Detail,
		"ours": string(in.Ours), "theirs": string(in.Theirs)})
	fresh := false
	err := s.st.Update(ctx, func(tx store.Handle) error {
		err := tx.PeerLogs().AddPeerIncident(ctx, store.PeerIncident{KeyID: in.KeyID, Peer: in.Peer, Kind: in.Kind, Detail: in.Detail,
			Ours: in.Ours, Theirs: in.Theirs, Digest: digest, At: now})
		if errors.Is(err, store.ErrConflict) {
			return nil // caught before: recorded once
		}
		if err != nil {
			return err
		}
		fresh = true
		if _, err := ledger.Append(ctx, tx.Ledger(), ledger.Entry{Kind: ledger.KindNodePeerIncident, Subject: in.KeyID, Attrs: attrs, Time: now}); err != nil {
			return err
		}
		parties, err := tx.Parties().List(ctx)
		if err != nil {
			return err
		}
		for _, p := range parties {
			if _, err := tx.Events().Append(ctx, store.Event{PartyID: p.ID, Kind: EventKind, Subject: in.Peer, Data: data, At: now}); err != nil {
				return err
			}
		}
		return nil
	})
	lvl := slog.LevelError
	if err == nil && !fresh {
		lvl = slog.LevelWarn
	}
	s.log().Log(ctx, lvl, "peer node misbehaved", slog.String("peer", in.Peer), slog.String("peer_key", in.PeerKey),
		slog.String("incident", in.Kind), slog.String("detail", in.Detail), slog.Bool("new", fresh),
		slog.String("ours", string(in.Ours)), slog.String("theirs", string(in.Theirs)), slog.Any("record_error", err))
	return fresh
}

// learn checks the keys a peer names (in a message its node key signed)
// against those this node learned before, filling in what it lacked. It
// returns the view as updated, or an incident on a changed key.
func (s *Service) learn(ctx context.Context, p store.Peer, logKey, witnessKey string) (store.PeerLog, error) {
	if logKey != "" {
		if _, err := note.NewVerifier(logKey); err != nil {
			return store.PeerLog{}, fmt.Errorf("peer %q names a ledger key that does not parse: %w", p.Name, ledger.ErrMalformed)
		}
	}
	if witnessKey != "" {
		if _, err := ledger.NewCosignatureVerifier(witnessKey); err != nil {
			return store.PeerLog{}, fmt.Errorf("peer %q names a witness key that does not parse: %w", p.Name, ledger.ErrMalformed)
		}
	}
	for range 3 {
		v, err := s.st.PeerLogs().PeerLog(ctx, p.KeyID)
		if errors.Is(err, store.ErrNotFound) {
			if logKey == "" {
				return store.PeerLog{}, fmt.Errorf("peer %q: %w", p.Name, ErrNoView)
			}
			v = store.PeerLog{KeyID: p.KeyID, Peer: p.Name, LogKey: logKey, WitnessKey: witnessKey, UpdatedAt: s.now().UTC()}
			if err := s.st.PeerLogs().CreatePeerLog(ctx, v); errors.Is(err, store.ErrConflict) {
				continue
			} else if err != nil {
				return store.PeerLog{}, err
			}
			return v, nil
		}
		if err != nil {
			return store.PeerLog{}, err
		}
		switch {
		case logKey != "" && v.LogKey != logKey:
			in := Incident{Peer: p.Name, PeerKey: p.Key, KeyID: p.KeyID, Kind: KindKeyChanged,
				Detail: fmt.Sprintf("it named ledger key %s, but this node learned %s from it", logKey, v.LogKey)}
			s.record(ctx, in)
			return v, in
		case witnessKey != "" && v.WitnessKey != "" && v.WitnessKey != witnessKey:
			in := Incident{Peer: p.Name, PeerKey: p.Key, KeyID: p.KeyID, Kind: KindKeyChanged,
				Detail: fmt.Sprintf("it named witness key %s, but this node learned %s from it", witnessKey, v.WitnessKey)}
			s.record(ctx, in)
			return v, in
		case witnessKey != "" && v.WitnessKey == "" || v.Peer != p.Name:
			prev := v.Size
			if witnessKey != "" {
				v.WitnessKey = witnessKey
			}
			v.Peer = p.Name
			if err := s.st.PeerLogs().UpdatePeerLog(ctx, v, prev); errors.Is(err, store.ErrConflict) {
				continue
			} else if err != nil {
				return store.PeerLog{}, err
			}
		}
		return v, nil
	}
	return store.PeerLog{}, fmt.Errorf("view of peer %q kept moving: %w", p.Name, store.ErrConflict)
}
