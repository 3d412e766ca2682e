package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/parley-cti/parley/internal/mirror"
	"github.com/parley-cti/parley/internal/party"
)

// mirrorErr gives the package's refusals their statuses; the rest goes
// through writeError's mapping.
func mirrorErr(err error) error {
	switch {
	case errors.Is(err, mirror.ErrNotFound):
		return apiErr(http.StatusNotFound, "not_found", "the resource does not exist or you do not have access to it")
	case errors.Is(err, mirror.ErrInvalid):
		return apiErr(http.StatusBadRequest, "invalid", strings.TrimPrefix(err.Error(), "mirror: "))
	}
	return err
}

// addMirror defines a mirror of the caller's into its own contribution
// collection; the answer shows the token redacted.
func (s *Server) addMirror(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var spec mirror.Spec
	if err := decode(w, r, &spec); err != nil {
		return err
	}
	v, err := s.mirrors.Add(r.Context(), p, spec)
	if err != nil {
		return mirrorErr(err)
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) listMirrors(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	vs, err := s.mirrors.List(r.Context(), p)
	if err != nil {
		return mirrorErr(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"mirrors": vs})
	return nil
}

func (s *Server) getMirror(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	v, err := s.mirrors.Get(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return mirrorErr(err)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) removeMirror(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	if err := s.mirrors.Remove(r.Context(), p, r.PathValue("id")); err != nil {
		return mirrorErr(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
