package api

import (
	"net/http"

	"github.com/parley-cti/parley/internal/mirror"
	"github.com/parley-cti/parley/internal/party"
)

// addMirror defines a mirror of the caller's into its own contribution
// collection; the answer shows the token redacted.
func (s *Handler) addMirror(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	var spec mirror.Spec
	if err := decode(w, r, &spec); err != nil {
		return err
	}
	v, err := s.mirrors.Add(r.Context(), p, spec)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Handler) listMirrors(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	vs, err := s.mirrors.List(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"mirrors": vs})
	return nil
}

func (s *Handler) getMirror(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	v, err := s.mirrors.Get(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Handler) removeMirror(w http.ResponseWriter, r *http.Request, p party.Principal) error {
	if err := s.mirrors.Remove(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
