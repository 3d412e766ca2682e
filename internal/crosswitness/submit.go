package crosswitness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/node"
	"github.com/parley-cti/parley/internal/store"
)

// submitState is what the submitter remembers of one peer, in memory: the
// size of this node's log the peer last cosigned (a guess after a
// restart: the peer's 409 corrects it) and its backoff.
type submitState struct {
	cosigned int64
	failures int
	next     time.Time
	lastErr  string
}

// Signed tells Run a new checkpoint is signed (ledger.Checkpointer.Signed);
// it never blocks the checkpointer.
func (s *Service) Signed(context.Context, ledger.Checkpoint, []byte) {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run submits this node's latest checkpoint to every pinned peer that has
// not cosigned it, on every new checkpoint and at least every Interval,
// until ctx ends. A peer that fails waits MinBackoff, doubling up to
// MaxBackoff, before it is asked again.
func (s *Service) Run(ctx context.Context) {
	interval := s.Interval
	if interval <= 0 {
		interval = time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-tick.C:
		}
		s.SubmitAll(ctx)
	}
}

// SubmitAll submits the latest checkpoint to each peer that has not
// cosigned it and is not waiting out a backoff. Each peer's failure is
// its own.
func (s *Service) SubmitAll(ctx context.Context) {
	size, signed, err := s.st.Ledger().LatestCheckpoint(ctx)
	if err != nil {
		if !errors.Is(err, ledger.ErrNotFound) {
			s.log().WarnContext(ctx, "cross-witnessing: latest checkpoint", slog.Any("err", err))
		}
		return
	}
	peers, err := s.st.Nodes().Peers(ctx)
	if err != nil {
		s.log().WarnContext(ctx, "cross-witnessing: peers", slog.Any("err", err))
		return
	}
	for _, p := range peers {
		st := s.state(p.KeyID)
		now := s.now()
		s.mu.Lock()
		skip := st.cosigned == size || st.failures > 0 && now.Before(st.next)
		s.mu.Unlock()
		if skip {
			continue
		}
		err := s.Submit(ctx, p, size, signed)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		if err != nil {
			st.failures++
			st.lastErr = err.Error()
			st.next = now.Add(s.backoff(st.failures))
		} else {
			st.failures, st.lastErr = 0, ""
		}
		failures, next := st.failures, st.next
		s.mu.Unlock()
		if err != nil {
			s.log().WarnContext(ctx, "cross-witnessing: submission failed; will retry", slog.String("peer", p.Name),
				slog.Int64("size", size), slog.Int("failures", failures), slog.Time("next", next), slog.Any("err", err))
		} else {
			s.log().InfoContext(ctx, "cross-witnessing: checkpoint cosigned by peer", slog.String("peer", p.Name), slog.Int64("size", size))
		}
	}
}

func (s *Service) backoff(failures int) time.Duration {
	lo, hi := s.MinBackoff, s.MaxBackoff
	if lo <= 0 {
		lo = time.Second
	}
	if hi <= 0 {
		hi = 5 * time.Minute
	}
	d := lo
	for i := 1; i < failures && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

func (s *Service) state(keyID string) *submitState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.peers[keyID]
	if !ok {
		st = &submitState{}
		s.peers[keyID] = st
	}
	return st
}

// Submit asks peer p to cosign this node's checkpoint signed (of size),
// proving consistency from the size the peer last cosigned (asking again
// once if the peer names another), and stores the cosignature with the
// checkpoint.
func (s *Service) Submit(ctx context.Context, p store.Peer, size int64, signed []byte) error {
	st := s.state(p.KeyID)
	s.mu.Lock()
	old := st.cosigned
	s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if old > size {
			return fmt.Errorf("peer %q says it cosigned size %d of this node's log, larger than its latest checkpoint %d: has this node's ledger been restored from a backup?", p.Name, old, size)
		}
		var proof []string
		if old > 0 && old < size {
			hs, err := ledger.ConsistencyProof(ctx, s.st.Ledger(), old, size)
			if err != nil {
				return fmt.Errorf("consistency proof %d→%d: %w", old, size, err)
			}
			proof = encodeHashes(hs)
		}
		body, err := json.Marshal(Submission{LogKey: s.LogKey(), OldSize: old, Proof: proof, Checkpoint: string(signed)})
		if err != nil {
			return err
		}
		_, out, err := s.client(p).Do(ctx, http.MethodPost, PathAddCheckpoint, body)
		var re *node.RefusedError
		if errors.As(err, &re) && re.Signed && re.Code == "size_conflict" && attempt == 0 {
			var r Refusal
			if json.Unmarshal(out, &r) == nil && r.Size != nil && *r.Size >= 0 {
				old = *r.Size
				continue
			}
		}
		if err != nil {
			return err
		}
		var a Cosigned
		if err := json.Unmarshal(out, &a); err != nil {
			return fmt.Errorf("peer %q: the cosignature answer is not JSON: %w", p.Name, err)
		}
		if err := s.accept(ctx, p, size, signed, a); err != nil {
			return err
		}
		s.mu.Lock()
		st.cosigned = size
		s.mu.Unlock()
		return nil
	}
}

// accept checks a peer's cosignature and stores it with the checkpoint.
func (s *Service) accept(ctx context.Context, p store.Peer, size int64, signed []byte, a Cosigned) error {
	if _, err := s.learn(ctx, p, a.LogKey, a.WitnessKey); err != nil {
		return err
	}
	text, _, ok := bytes.Cut(signed, []byte("\n\n"))
	if !ok {
		return fmt.Errorf("this node's checkpoint %d is not a note", size)
	}
	c, err := ledger.VerifyCosignatureLine(append(bytes.Clone(text), '\n'), []byte(a.Cosignature), a.WitnessKey)
	if err != nil {
		return fmt.Errorf("peer %q's cosignature of checkpoint %d: %w", p.Name, size, err)
	}
	if s.AddWitness != nil {
		if _, err := s.AddWitness(ctx, a.WitnessKey); err != nil {
			return fmt.Errorf("registering peer %q's witness key: %w", p.Name, err)
		}
	}
	line := append(bytes.TrimSuffix([]byte(a.Cosignature), []byte("\n")), '\n')
	return s.st.Update(ctx, func(tx store.Handle) error { return tx.Ledger().AddCosignature(ctx, size, c.Name, line) })
}
