package taxii

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// Page sizes. A request without limit gets DefaultLimit; a larger limit
// than MaxLimit is lowered to it, as TAXII allows.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
	maxListItems = 1000
)

// Which query parameters each endpoint takes. Anything else is refused with
// a 400 that names it, rather than silently ignored.
var (
	objectsParams  = []string{"added_after", "limit", "next", "match[id]", "match[type]", "match[version]", "match[spec_version]"}
	objectParams   = []string{"added_after", "limit", "next", "match[version]", "match[spec_version]"}
	versionsParams = []string{"added_after", "limit", "next", "match[spec_version]"}
	deleteParams   = []string{"match[version]", "match[spec_version]"}
)

var (
	typeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,248}[a-z0-9]$`)
	idRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,248}[a-z0-9]--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	specRE = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)
)

// filter is the parsed query of one request.
type filter struct {
	q     store.ObjectQuery
	next  string
	canon string // the filters in canonical form, bound into cursors
}

func badParam(format string, args ...any) *apiError {
	return problem(http.StatusBadRequest, "bad-parameter", fmt.Sprintf(format, args...))
}

// parseFilter reads the query string against the parameters allowed.
func parseFilter(values url.Values, allowed []string) (filter, error) {
	var f filter
	var canon []string
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return f, badParam("unknown query parameter %q; this endpoint accepts %s", k, strings.Join(allowed, ", "))
		}
		if len(values[k]) > 1 {
			return f, badParam("query parameter %q is given %d times; give it once, with comma-separated values", k, len(values[k]))
		}
	}
	f.q.Limit = DefaultLimit
	for _, k := range keys {
		v := values.Get(k)
		switch k {
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return f, badParam("limit must be a positive integer, got %q", v)
			}
			f.q.Limit = min(n, MaxLimit)
			continue // the page size may change between pages
		case "next":
			f.next = v
			continue
		case "added_after":
			t, err := parseTimestamp(v)
			if err != nil {
				return f, badParam("added_after: %v", err)
			}
			f.q.AddedAfter = t
		case "match[id]":
			items, err := list(k, v, idRE, "a STIX identifier such as indicator--<uuid>")
			if err != nil {
				return f, err
			}
			f.q.IDs = items
		case "match[type]":
			items, err := list(k, v, typeRE, "a STIX type such as indicator")
			if err != nil {
				return f, err
			}
			f.q.Types = items
		case "match[spec_version]":
			items, err := list(k, v, specRE, "a version such as 2.1")
			if err != nil {
				return f, err
			}
			f.q.SpecVersions = items
		case "match[version]":
			vf, err := parseVersions(v)
			if err != nil {
				return f, err
			}
			f.q.Versions = vf
		}
		canon = append(canon, k+"="+v)
	}
	f.canon = strings.Join(canon, "&")
	return f, nil
}

func list(name, v string, re *regexp.Regexp, what string) ([]string, error) {
	parts := strings.Split(v, ",")
	if len(parts) > maxListItems {
		return nil, badParam("%s has %d values; at most %d are accepted", name, len(parts), maxListItems)
	}
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if !re.MatchString(p) {
			return nil, badParam("%s: %q is not %s", name, p, what)
		}
		parts[i] = p
	}
	return parts, nil
}

func parseVersions(v string) (store.VersionFilter, error) {
	var vf store.VersionFilter
	parts := strings.Split(v, ",")
	if len(parts) > maxListItems {
		return vf, badParam("match[version] has %d values; at most %d are accepted", len(parts), maxListItems)
	}
	for _, p := range parts {
		switch p = strings.TrimSpace(p); p {
		case "all":
			vf.All = true
		case "first":
			vf.First = true
		case "last":
			vf.Last = true
		default:
			t, err := parseTimestamp(p)
			if err != nil {
				return vf, badParam("match[version]: %q is not first, last, all or a timestamp: %v", p, err)
			}
			vf.At = append(vf.At, t)
		}
	}
	return vf, nil
}

// parseTimestamp accepts RFC 3339 timestamps in UTC ("Z"), as TAXII
// requires, and keeps microsecond precision (the precision parley stores).
func parseTimestamp(s string) (time.Time, error) {
	if !strings.HasSuffix(s, "Z") {
		return time.Time{}, fmt.Errorf("%q is not a UTC RFC 3339 timestamp like 2026-01-02T15:04:05.000Z", s)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("%q is not a UTC RFC 3339 timestamp like 2026-01-02T15:04:05.000Z", s)
	}
	return t.UTC().Truncate(time.Microsecond), nil
}

// formatAdded renders a date_added: microsecond precision, as TAXII shows it.
func formatAdded(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}
