// Package ledgerhttp serves parley's ledger over HTTP: the C2SP
// tlog-tiles read API (checkpoint, hash tiles, entry bundles), JSON entry
// and proof endpoints, the endpoint where witnesses hand in cosignatures,
// and the witness side of C2SP tlog-witness. The matching ledger.Remote
// for `parley verify` is audit.LedgerClient, on the party's side.
//
// It owns no state and makes no decisions about what is true: it reads
// through a ledger.Reader and checks cosignatures with package ledger. It
// must never send internal error text to a client, never accept an
// unbounded body, and never write to the log except cosignatures.
package ledgerhttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/parley-cti/parley/internal/health"
	"github.com/parley-cti/parley/internal/ledger"
	"github.com/parley-cti/parley/internal/store"
)

// Source is what the handlers read from and write cosignatures to.
type Source struct {
	// Log is read access to the ledger (a ledger.Store bound to the
	// database, not to a transaction, is fine: the log only grows).
	Log ledger.Reader
	// AddCosignature stores a verified cosignature, usually by opening a
	// transaction and calling ledger.Store.AddCosignature. Nil disables
	// POST {prefix}/cosign.
	AddCosignature func(ctx context.Context, size int64, witness string, line []byte) error
	// WitnessKey returns the registered tlog-cosignature/v1 vkey of a
	// witness by name, or an error wrapping ledger.ErrNotFound.
	WitnessKey func(ctx context.Context, name string) (string, error)
	// Logger receives details of server errors; nil means slog.Default().
	Logger *slog.Logger
}

// MaxEntriesPerPage is the most entries GET {prefix}/entries returns.
const MaxEntriesPerPage = 256

// Register adds every ledger route under prefix (e.g. "/ledger", no
// trailing slash) to mux:
//
//	GET  {prefix}/checkpoint                   signed note + cosignatures (text/plain)
//	GET  {prefix}/tile/{L}/{N}[.p/{W}]         C2SP hash tile
//	GET  {prefix}/tile/entries/{N}[.p/{W}]     C2SP entry bundle
//	GET  {prefix}/entries/{index}              {"index","leaf_hash","entry","data"}
//	GET  {prefix}/proof/inclusion?index=&size= ledger.InclusionProofJSON
//	GET  {prefix}/proof/consistency?from=&to=  ledger.ConsistencyProofJSON
//	POST {prefix}/cosign[?size=]               body: one cosignature line
//
// size defaults to the latest checkpoint's size.
func Register(mux *http.ServeMux, prefix string, src Source) {
	h := &handler{src: src, log: src.Logger}
	if h.log == nil {
		h.log = slog.Default()
	}
	prefix = strings.TrimSuffix(prefix, "/")
	mux.HandleFunc("GET "+prefix+"/checkpoint", h.checkpoint)
	mux.HandleFunc("GET "+prefix+"/tile/", h.tile)
	mux.HandleFunc("GET "+prefix+"/entries/{index}", h.entry)
	mux.HandleFunc("GET "+prefix+"/proof/inclusion", h.inclusion)
	mux.HandleFunc("GET "+prefix+"/proof/consistency", h.consistency)
	mux.HandleFunc("POST "+prefix+"/cosign", h.cosign)
	h.prefix = prefix
}

type handler struct {
	src    Source
	log    *slog.Logger
	prefix string
}

// httpError is an error with a message safe to show a client.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// writeError maps errors to statuses in one place. Only messages built by
// this package reach the client; anything else is logged and replaced by
// the status text.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if health.ClientGone(r, err) {
		w.WriteHeader(health.StatusClientGone)
		return
	}
	var he *httpError
	status, msg := http.StatusInternalServerError, ""
	switch {
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case errors.Is(err, ledger.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ledger.ErrInvalid), errors.Is(err, ledger.ErrMalformed):
		status = http.StatusBadRequest
	case errors.Is(err, ledger.ErrBadSignature):
		status = http.StatusForbidden
	case errors.Is(err, ledger.ErrConflict):
		status = http.StatusConflict
	case errors.Is(err, store.ErrUnavailable):
		status, msg = http.StatusServiceUnavailable, "the database is unavailable; retry shortly"
	}
	health.Refused(w, r, h.log, status, err)
	if msg == "" {
		msg = strings.ToLower(http.StatusText(status))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

func (h *handler) write(w http.ResponseWriter, contentType, cache string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", cache)
	w.Write(body)
}

func (h *handler) writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		h.writeError(w, r, fmt.Errorf("encode response: %w", err))
		return
	}
	h.write(w, "application/json", "no-cache", buf.Bytes())
}

func (h *handler) checkpoint(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	size, note, err := h.src.Log.LatestCheckpoint(ctx)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	lines, err := h.src.Log.Cosignatures(ctx, size)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.write(w, "text/plain; charset=utf-8", "no-cache", ledger.WithCosignatures(note, lines))
}

func (h *handler) tile(w http.ResponseWriter, r *http.Request) {
	ref, err := ledger.ParseTilePath(strings.TrimPrefix(r.URL.Path, h.prefix+"/"))
	if err != nil {
		h.writeError(w, r, badRequest("malformed tile path"))
		return
	}
	ctx := r.Context()
	size, err := h.src.Log.Size(ctx)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	data, err := ledger.ReadTile(ctx, h.src.Log, ref, size)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	// Tiles never change once they exist, partial ones included (a
	// partial tile's width is in its name).
	h.write(w, "application/octet-stream", "public, max-age=31536000, immutable", data)
}

// EntryJSON is the body of GET {prefix}/entries/{index}.
type EntryJSON struct {
	Index    int64           `json:"index"`
	LeafHash tlog.Hash       `json:"leaf_hash"`
	Entry    json.RawMessage `json:"entry,omitempty"` // the statement, when it is valid JSON
	Data     string          `json:"data"`            // base64 of the exact stored bytes
}

func (h *handler) entry(w http.ResponseWriter, r *http.Request) {
	idx, err := parseIndex(r.PathValue("index"), "index")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	es, err := h.src.Log.ReadEntries(r.Context(), idx, idx+1)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := EntryJSON{Index: idx, LeafHash: tlog.RecordHash(es[0]), Data: base64.StdEncoding.EncodeToString(es[0])}
	if json.Valid(es[0]) {
		out.Entry = es[0]
	}
	h.writeJSON(w, r, out)
}

// parseIndex parses a query or path number: decimal, non-negative, no sign
// or leading zeros, so that each resource has one URL.
func parseIndex(s, name string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, badRequest("%s must be a non-negative decimal integer", name)
	}
	return n, nil
}

// sizeParam reads an optional size parameter, defaulting to the latest
// checkpoint's size.
func (h *handler) sizeParam(r *http.Request, name string) (int64, error) {
	if s := r.URL.Query().Get(name); s != "" {
		return parseIndex(s, name)
	}
	size, _, err := h.src.Log.LatestCheckpoint(r.Context())
	return size, err
}

func (h *handler) inclusion(w http.ResponseWriter, r *http.Request) {
	idx, err := parseIndex(r.URL.Query().Get("index"), "index")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	size, err := h.sizeParam(r, "size")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if idx >= size {
		h.writeError(w, r, badRequest("index must be below size"))
		return
	}
	p, err := ledger.InclusionProof(r.Context(), h.src.Log, idx, size)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, r, ledger.InclusionProofJSON{Index: idx, Size: size, Hashes: p})
}

func (h *handler) consistency(w http.ResponseWriter, r *http.Request) {
	from, err := parseIndex(r.URL.Query().Get("from"), "from")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	to, err := h.sizeParam(r, "to")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if from > to {
		h.writeError(w, r, badRequest("from must not exceed to"))
		return
	}
	p, err := ledger.ConsistencyProof(r.Context(), h.src.Log, from, to)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, r, ledger.ConsistencyProofJSON{From: from, To: to, Hashes: p})
}

// readBody reads at most limit bytes; larger bodies get 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", limit)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", limit)}
	}
	if err != nil {
		return nil, badRequest("could not read body")
	}
	return body, nil
}

func (h *handler) cosign(w http.ResponseWriter, r *http.Request) {
	if h.src.AddCosignature == nil || h.src.WitnessKey == nil {
		h.writeError(w, r, &httpError{http.StatusNotFound, "cosignatures are not accepted here"})
		return
	}
	ctx := r.Context()
	body, err := readBody(w, r, ledger.MaxCosignatureLine)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	line, err := ledger.ParseSignatureLine(body)
	if err != nil || bytes.Count(body, []byte("\n")) > 1 {
		h.writeError(w, r, badRequest("body must be one note signature line"))
		return
	}
	vkey, err := h.src.WitnessKey(ctx, line.Name)
	if errors.Is(err, ledger.ErrNotFound) {
		h.writeError(w, r, &httpError{http.StatusForbidden, "unknown witness"})
		return
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	size, err := h.sizeParam(r, "size")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	note, err := h.src.Log.CheckpointAt(ctx, size)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	text, _, ok := bytes.Cut(note, []byte("\n\n"))
	if !ok {
		h.writeError(w, r, fmt.Errorf("stored checkpoint %d is not a note", size))
		return
	}
	if _, err := ledger.VerifyCosignatureLine(append(bytes.Clone(text), '\n'), body, vkey); err != nil {
		h.writeError(w, r, &httpError{http.StatusForbidden, "cosignature does not verify for this witness and checkpoint"})
		return
	}
	normalized := append(bytes.TrimSuffix(body, []byte("\n")), '\n')
	if err := h.src.AddCosignature(ctx, size, line.Name, normalized); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
