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
// a 400 that names it, rather than silently ignored, except a match[field]
// filter on a field TAXII 2.1 does not define: section 3.4 lets a server
// ignore filters it does not support, and clients written for servers with
// extra filters (match[relationships], match[foo]) must still work here.
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

// parseQuery parses a raw query string strictly: a malformed escape or a
// semicolon is an error, where url.URL.Query would silently drop the pair
// and so drop a filter the client asked for.
func parseQuery(raw string) (url.Values, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badParam("the query string is malformed (check %%-escapes; separate parameters with '&', not ';')")
	}
	return v, nil
}

// parseFilter reads a raw query string against the parameters allowed.
// Lists are normalised (trimmed, sorted, duplicates dropped) and timestamps
// reduced to microseconds, so that two spellings of one filter make one
// query and one canonical form; canon is itself a query string that
// parseFilter maps to the same filter.
func parseFilter(rawQuery string, allowed []string) (filter, error) {
	var f filter
	values, err := parseQuery(rawQuery)
	if err != nil {
		return f, err
	}
	canon := url.Values{}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	keys = slices.DeleteFunc(keys, unknownFilter)
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
			n, err := parseLimit(v)
			if err != nil {
				return f, err
			}
			f.q.Limit = n
			continue // the page size may change between pages
		case "next":
			if v == "" {
				return f, badParam("next is empty; give the next value of the previous page, or leave next out for the first page")
			}
			f.next = v
			continue
		case "added_after":
			t, err := parseTimestamp(v)
			if err != nil {
				return f, badParam("added_after: %v", err)
			}
			f.q.AddedAfter = t
			canon.Set(k, formatAdded(t))
		case "match[id]":
			items, err := list(k, v, idRE, "a STIX identifier such as indicator--<uuid>")
			if err != nil {
				return f, err
			}
			f.q.IDs = items
			canon.Set(k, strings.Join(items, ","))
		case "match[type]":
			items, err := list(k, v, typeRE, "a STIX type such as indicator")
			if err != nil {
				return f, err
			}
			f.q.Types = items
			canon.Set(k, strings.Join(items, ","))
		case "match[spec_version]":
			items, err := list(k, v, specRE, "a version such as 2.1")
			if err != nil {
				return f, err
			}
			f.q.SpecVersions = items
			canon.Set(k, strings.Join(items, ","))
		case "match[version]":
			vf, err := parseVersions(v)
			if err != nil {
				return f, err
			}
			f.q.Versions = vf
			canon.Set(k, versionsString(vf))
		}
	}
	f.canon = canon.Encode()
	return f, nil
}

// taxiiFilters are the match[] fields TAXII 2.1 defines.
var taxiiFilters = []string{"match[id]", "match[type]", "match[version]", "match[spec_version]"}

// unknownFilter reports whether a query parameter is a match[] filter on a
// field TAXII 2.1 does not define, which is ignored. A defined filter that an
// endpoint does not take (match[version] on versions/) is still refused.
func unknownFilter(k string) bool {
	return strings.HasPrefix(k, "match[") && strings.HasSuffix(k, "]") && !slices.Contains(taxiiFilters, k)
}

// parseLimit reads a page size. Any positive integer is accepted and a
// large one lowered to MaxLimit: TAXII 2.1 section 3.7 lets a server return
// fewer objects than asked for. Zero and negatives are refused, as asking
// for no page at all is a client mistake.
func parseLimit(v string) (int, error) {
	digits := strings.TrimPrefix(v, "+")
	if digits == "" || strings.Trim(digits, "0123456789") != "" || strings.Trim(digits, "0") == "" {
		return 0, badParam("limit must be a positive integer, got %q", v)
	}
	if digits = strings.TrimLeft(digits, "0"); len(digits) > 9 {
		return MaxLimit, nil
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return 0, badParam("limit must be a positive integer, got %q", v)
	}
	return min(n, MaxLimit), nil
}

// list splits a comma-separated filter value, checks each item and
// returns them sorted without duplicates (the filters are sets).
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
	slices.Sort(parts)
	return slices.Compact(parts), nil
}

// versionsString is the canonical form of a version filter.
func versionsString(vf store.VersionFilter) string {
	var parts []string
	if vf.All {
		parts = append(parts, "all")
	}
	if vf.First {
		parts = append(parts, "first")
	}
	if vf.Last {
		parts = append(parts, "last")
	}
	for _, t := range vf.At {
		parts = append(parts, formatAdded(t))
	}
	return strings.Join(parts, ",")
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
	slices.SortFunc(vf.At, func(a, b time.Time) int { return a.Compare(b) })
	vf.At = slices.CompactFunc(vf.At, func(a, b time.Time) bool { return a.Equal(b) })
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
