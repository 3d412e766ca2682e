package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

// parseLifetime reads a token lifetime: a number of days ("90d"), weeks
// ("2w") or a Go duration ("12h", "30m"). Empty is no expiry.
func parseLifetime(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(v, suffix); ok {
			k, err := strconv.Atoi(n)
			if err != nil || k <= 0 || k > 100*365 {
				break
			}
			return time.Duration(k) * unit, nil
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: --expires %q: give a positive lifetime such as 90d, 2w or 12h", errUsage, v)
	}
	return d, nil
}

// tokenView is one row of `token list`.
type tokenView struct {
	ID         string `json:"token_id"`
	CreatedAt  string `json:"created_at"`
	State      string `json:"state"` // active, expired or revoked
	ExpiresAt  string `json:"expires_at,omitempty"`
	LastUsedAt string `json:"last_used_at,omitempty"`
	Label      string `json:"label,omitempty"`
}

func tokenViews(toks []store.Token, now time.Time) []tokenView {
	const stamp = "2006-01-02T15:04:05Z"
	format := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(stamp)
	}
	views := make([]tokenView, 0, len(toks))
	for _, t := range toks {
		state := "active"
		switch {
		case !t.RevokedAt.IsZero():
			state = "revoked " + format(t.RevokedAt)
		case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
			state = "expired"
		}
		views = append(views, tokenView{ID: t.ID, CreatedAt: format(t.CreatedAt), State: state,
			ExpiresAt: format(t.ExpiresAt), LastUsedAt: format(t.LastUsedAt), Label: t.Label})
	}
	return views
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
