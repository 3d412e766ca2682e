package ledgerhttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/parley-cti/parley/internal/ledger"
)

// WitnessHandler serves POST add-checkpoint of C2SP tlog-witness for w,
// with the status codes the protocol prescribes (see
// ledger.Witness.AddCheckpoint). Mount it at "<submission prefix>/add-checkpoint".
func WitnessHandler(w *ledger.Witness, now func() time.Time, logger *slog.Logger) http.Handler {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	h := &handler{log: logger}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			rw.Header().Set("Allow", http.MethodPost)
			h.writeError(rw, r, &httpError{http.StatusMethodNotAllowed, "use POST"})
			return
		}
		body, err := readBody(rw, r, ledger.MaxAddCheckpointBody)
		if err != nil {
			h.writeError(rw, r, err)
			return
		}
		req, err := ledger.ParseAddCheckpoint(body)
		if err != nil {
			h.writeError(rw, r, badRequest("malformed add-checkpoint body"))
			return
		}
		line, err := w.AddCheckpoint(req, now())
		var sc *ledger.SizeConflictError
		switch {
		case errors.As(err, &sc):
			rw.Header().Set("Content-Type", "text/x.tlog.size")
			rw.WriteHeader(http.StatusConflict)
			fmt.Fprintf(rw, "%d\n", sc.Size)
			return
		case errors.Is(err, ledger.ErrFork):
			h.writeError(rw, r, &httpError{http.StatusConflict, "checkpoint conflicts with the cosigned one at that size"})
			return
		case errors.Is(err, ledger.ErrInconsistent), errors.Is(err, ledger.ErrTruncatedProof):
			h.writeError(rw, r, &httpError{http.StatusUnprocessableEntity, "consistency proof does not verify"})
			return
		case errors.Is(err, ledger.ErrNotFound):
			h.writeError(rw, r, &httpError{http.StatusNotFound, "unknown log"})
			return
		case errors.Is(err, ledger.ErrBadSignature):
			h.writeError(rw, r, &httpError{http.StatusForbidden, "checkpoint signature does not verify"})
			return
		case err != nil:
			h.writeError(rw, r, err)
			return
		}
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Write(line)
	})
}

// errUnexpected marks a witness response the protocol does not allow.
var errUnexpected = errors.New("ledgerhttp: unexpected response")

// AddCheckpoint asks the witness at url (its add-checkpoint endpoint) to
// cosign req. A 409 with a size returns *ledger.SizeConflictError so the
// caller can retry with a proof from that size.
func AddCheckpoint(ctx context.Context, hc *http.Client, url string, req ledger.AddCheckpointRequest) ([]byte, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(req.Marshal()))
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return body, nil
	case resp.StatusCode == http.StatusConflict && resp.Header.Get("Content-Type") == "text/x.tlog.size":
		size, err := strconv.ParseInt(string(bytes.TrimSuffix(body, []byte("\n"))), 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("witness conflict with bad size %.30q: %w", body, errUnexpected)
		}
		return nil, &ledger.SizeConflictError{Size: size}
	case resp.StatusCode == http.StatusConflict:
		return nil, fmt.Errorf("witness: %w", ledger.ErrFork)
	case resp.StatusCode == http.StatusUnprocessableEntity:
		return nil, fmt.Errorf("witness: %w", ledger.ErrInconsistent)
	case resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("witness: %w", ledger.ErrBadSignature)
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("witness does not know this log: %w", ledger.ErrNotFound)
	}
	return nil, fmt.Errorf("witness: %s: %w", resp.Status, errUnexpected)
}
