package web

import (
	"net/url"
	"strconv"
)

// pageSize is how many rows a history page lists.
const pageSize = 25

// pager cuts a list into pages of pageSize and makes the links between
// them, keeping the page's filters in the query.
type pager struct {
	Page, Pages, Total int
	First, Last        int // 1-based positions of the rows shown
	Prev, Next         string
}

// pageOf returns the part of n rows that page ?page= shows (clamped to the
// pages there are) and the links around it; base is the path with the
// filters as query.
func pageOf(n int, q url.Values, base string) (from, to int, p pager) {
	p.Total = n
	p.Pages = max(1, (n+pageSize-1)/pageSize)
	p.Page, _ = strconv.Atoi(q.Get("page"))
	p.Page = min(max(p.Page, 1), p.Pages)
	from, to = (p.Page-1)*pageSize, min(p.Page*pageSize, n)
	if n > 0 {
		p.First, p.Last = from+1, to
	}
	link := func(page int) string {
		v := url.Values{}
		for k, vs := range q {
			if k != "page" && len(vs) > 0 && vs[0] != "" {
				v.Set(k, vs[0])
			}
		}
		if page > 1 {
			v.Set("page", strconv.Itoa(page))
		}
		if len(v) == 0 {
			return base
		}
		return base + "?" + v.Encode()
	}
	if p.Page > 1 {
		p.Prev = link(p.Page - 1)
	}
	if p.Page < p.Pages {
		p.Next = link(p.Page + 1)
	}
	return from, to, p
}

// option is one choice of a filter's <select>.
type option struct {
	Value, Label string
	Selected     bool
}

func options(current string, pairs ...string) []option {
	var out []option
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, option{Value: pairs[i], Label: pairs[i+1], Selected: pairs[i] == current})
	}
	return out
}

// safeReturn is where an action sends the browser back to: a dashboard
// path given by the form, or the overview. Anything else (another host, a
// scheme, "//evil") is ignored, so a form cannot be turned into an open
// redirect.
func safeReturn(path string) string {
	u, err := url.Parse(path)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || len(path) < len(Prefix) || path[:len(Prefix)] != Prefix {
		return Prefix
	}
	for i := 0; i+1 < len(path); i++ {
		if (path[i] == '/' || path[i] == '\\') && (path[i+1] == '/' || path[i+1] == '\\') {
			return Prefix
		}
	}
	return u.EscapedPath()
}

// withDone adds ?done=code to a dashboard path.
func withDone(path, code string) string {
	return path + "?done=" + url.QueryEscape(code)
}
