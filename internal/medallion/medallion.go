// Package medallion reads the data file of medallion, the OASIS reference
// TAXII 2.1 server (its memory backend's default_data.json format), so that
// a deployment of it can move to parley with its collections, objects and
// date_added values as they were.
//
// It only parses: it validates no STIX, makes no access decision and writes
// nothing; exchange.ImportCollection does the import.
package medallion

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// ErrFormat: the file is not a medallion data file.
var ErrFormat = errors.New("medallion: not a medallion data file")

// Collection is one collection of the file with its objects, each with the
// date_added its manifest gives.
type Collection struct {
	APIRoot     string // the API root's name in the file (e.g. "trustgroup1")
	ID          string
	Title       string
	Description string
	CanRead     bool
	CanWrite    bool
	MediaTypes  []string
	Objects     []Object // in date_added order
}

// Object is one stored object version.
type Object struct {
	ID        string
	Version   string // modified, or created when it has none, as in the file
	DateAdded time.Time
	// DateAddedKnown is false when no manifest record names this version;
	// DateAdded is then zero and the importer chooses.
	DateAddedKnown bool
	MediaType      string // from the manifest; "" when unknown
	Raw            json.RawMessage
}

type fileCollection struct {
	ID          string            `json:"id"`
	Title       string            `json:"title"`
	Description string            `json:"description"`
	CanRead     bool              `json:"can_read"`
	CanWrite    bool              `json:"can_write"`
	MediaTypes  []string          `json:"media_types"`
	Objects     []json.RawMessage `json:"objects"`
	Manifest    []struct {
		ID        string `json:"id"`
		Version   string `json:"version"`
		DateAdded string `json:"date_added"`
		MediaType string `json:"media_type"`
	} `json:"manifest"`
}

// Parse reads a medallion data file: an object whose "/discovery" member is
// the discovery resource and whose every other member is an API root with
// "information", "status" and "collections". It returns the collections in
// API-root order (as named in discovery, then any others by name), each
// with its objects in date_added order.
func Parse(data []byte) ([]Collection, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	// medallion keys its discovery resource "/discovery" (older files:
	// "discovery").
	discKey := "/discovery"
	if _, ok := top[discKey]; !ok {
		discKey = "discovery"
	}
	if _, ok := top[discKey]; !ok {
		return nil, fmt.Errorf("%w: no \"/discovery\" member", ErrFormat)
	}
	var disc struct {
		APIRoots []string `json:"api_roots"`
	}
	if err := json.Unmarshal(top[discKey], &disc); err != nil {
		return nil, fmt.Errorf("%w: discovery: %v", ErrFormat, err)
	}
	var roots []string
	for _, u := range disc.APIRoots {
		name := rootName(u)
		if _, ok := top[name]; ok && !slices.Contains(roots, name) {
			roots = append(roots, name)
		}
	}
	var rest []string
	for k := range top {
		if k != discKey && !slices.Contains(roots, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	roots = append(roots, rest...)

	var out []Collection
	for _, root := range roots {
		var r struct {
			Collections []fileCollection `json:"collections"`
		}
		if err := json.Unmarshal(top[root], &r); err != nil {
			return nil, fmt.Errorf("%w: API root %q: %v", ErrFormat, root, err)
		}
		for _, fc := range r.Collections {
			c, err := collection(root, fc)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// rootName is the last path segment of an API root URL.
func rootName(u string) string {
	u = strings.TrimSuffix(u, "/")
	return u[strings.LastIndex(u, "/")+1:]
}

func collection(root string, fc fileCollection) (Collection, error) {
	if fc.ID == "" {
		return Collection{}, fmt.Errorf("%w: API root %q: a collection without an id", ErrFormat, root)
	}
	c := Collection{APIRoot: root, ID: fc.ID, Title: fc.Title, Description: fc.Description, CanRead: fc.CanRead,
		CanWrite: fc.CanWrite, MediaTypes: fc.MediaTypes}
	type key struct{ id, version string }
	added := map[key]int{}
	for i, m := range fc.Manifest {
		added[key{m.ID, m.Version}] = i
	}
	for i, raw := range fc.Objects {
		var h struct {
			ID       string `json:"id"`
			Modified string `json:"modified"`
			Created  string `json:"created"`
		}
		if err := json.Unmarshal(raw, &h); err != nil {
			return Collection{}, fmt.Errorf("%w: collection %s: objects[%d]: %v", ErrFormat, fc.ID, i, err)
		}
		o := Object{ID: h.ID, Version: h.Modified, Raw: raw}
		if o.Version == "" {
			o.Version = h.Created
		}
		if mi, ok := added[key{o.ID, o.Version}]; ok {
			m := fc.Manifest[mi]
			t, err := time.Parse(time.RFC3339Nano, m.DateAdded)
			if err != nil {
				return Collection{}, fmt.Errorf("%w: collection %s: manifest of %s: date_added %q: %v", ErrFormat, fc.ID, o.ID, m.DateAdded, err)
			}
			o.DateAdded, o.DateAddedKnown, o.MediaType = t.UTC(), true, m.MediaType
		}
		c.Objects = append(c.Objects, o)
	}
	// date_added order; objects without one go last, in file order.
	sort.SliceStable(c.Objects, func(i, j int) bool {
		a, b := c.Objects[i], c.Objects[j]
		if a.DateAddedKnown != b.DateAddedKnown {
			return a.DateAddedKnown
		}
		return a.DateAdded.Before(b.DateAdded)
	})
	return c, nil
}
