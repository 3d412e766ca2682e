package wire

import "time"

// MirrorSpec is the body of POST /api/v1/mirrors: what a party gives to
// add a mirror.
type MirrorSpec struct {
	Agreement  string `json:"agreement"`         // the agreement to feed
	SourceURL  string `json:"source_url"`        // the source's API root URL
	Collection string `json:"source_collection"` // the collection id at the source
	User       string `json:"source_user,omitempty"`
	Token      string `json:"source_token,omitempty"`
	PageLimit  int    `json:"page_limit,omitempty"`
}

// Mirror is a mirror as its party sees it (the management API's answer):
// everything but the source's token, which shows as "[redacted]" when set.
type Mirror struct {
	ID               string     `json:"id"`
	Agreement        string     `json:"agreement"`
	Collection       string     `json:"collection"` // the party's contribution collection it feeds
	SourceURL        string     `json:"source_url"`
	SourceCollection string     `json:"source_collection"`
	SourceUser       string     `json:"source_user,omitempty"`
	SourceToken      string     `json:"source_token,omitempty"` // "[redacted]" when one is set, never the token
	PageLimit        int        `json:"page_limit"`
	CreatedAt        time.Time  `json:"created_at"`
	AddedAfter       string     `json:"added_after,omitempty"` // the source's date_added the next pull starts after
	Paging           bool       `json:"paging"`                // a paging session is under way
	Accepted         int64      `json:"accepted"`
	Refused          int64      `json:"refused"`
	LastRefusal      string     `json:"last_refusal,omitempty"`
	Pages            int64      `json:"pages"`
	LastSuccess      *time.Time `json:"last_success,omitempty"`
	LastError        string     `json:"last_error,omitempty"`
	LastErrorAt      *time.Time `json:"last_error_at,omitempty"`
	Failures         int        `json:"failures"`
	NextAttempt      time.Time  `json:"next_attempt"`
}
