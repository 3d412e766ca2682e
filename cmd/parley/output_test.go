package main

import (
	"errors"
	"testing"
	"time"
)

func TestHumanDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{720 * time.Hour, "30d"},
		{12 * time.Hour, "12h"},
		{36 * time.Hour, "1d12h"},
		{90 * time.Minute, "1h30m"},
		{45 * time.Second, "45s"},
		{0, "0s"},
		{-2 * time.Hour, "-2h"},
	} {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
		back, err := parseHumanDuration(tt.want)
		if tt.d >= 0 && (err != nil || back != tt.d) {
			t.Errorf("parseHumanDuration(%q) = %v, %v; want %v", tt.want, back, err, tt.d)
		}
	}
	if _, err := parseHumanDuration("soon"); err == nil {
		t.Error(`parseHumanDuration("soon") succeeded`)
	}
	if got := goDuration("30d"); got != "720h0m0s" {
		t.Errorf(`goDuration("30d") = %q`, got)
	}
}

func TestUniquePrefix(t *testing.T) {
	ids := []string{
		"agreement--3f2a0000-0000-4000-8000-000000000001",
		"agreement--3f2b0000-0000-4000-8000-000000000002",
		"agreement--9c000000-0000-4000-8000-000000000003",
	}
	for _, tt := range []struct {
		arg, want string
		err       error
	}{
		{"9c", ids[2], nil},
		{"agreement--9c", ids[2], nil},
		{"3f2a", ids[0], nil},
		{ids[1], ids[1], nil},
		{"3f2", "", errUsage},         // ambiguous
		{"agreement--", "", errUsage}, // ambiguous
		{"ff", "", errNotFound},
	} {
		got, err := uniquePrefix("agreement", tt.arg, ids)
		if got != tt.want || !errors.Is(err, tt.err) && !(err == nil && tt.err == nil) {
			t.Errorf("uniquePrefix(%q) = %q, %v; want %q, %v", tt.arg, got, err, tt.want, tt.err)
		}
	}
}

func TestSuggest(t *testing.T) {
	cmds := []string{"agreement", "handover", "request", "push", "pull", "verify"}
	for word, want := range map[string]string{"agrement": "agreement", "hanodver": "handover", "verfy": "verify", "pul": "pull", "zzzzzz": ""} {
		if got := suggest(word, cmds); got != want {
			t.Errorf("suggest(%q) = %q, want %q", word, got, want)
		}
	}
}
