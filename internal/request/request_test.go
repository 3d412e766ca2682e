package request

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-cti/parley/internal/store"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      FileInput
		want    FileInput
		problem string
	}{
		{"defaults and dedup", FileInput{Subject: " crew X ", Reason: "case 1", Refs: []string{" a ", "a", "b"}},
			FileInput{Subject: "crew X", Reason: "case 1", Urgency: "normal", Refs: []string{"a", "b"}}, ""},
		{"no subject", FileInput{Subject: "  ", Reason: "r"}, FileInput{}, "subject is empty"},
		{"no reason", FileInput{Subject: "s"}, FileInput{}, "reason is empty"},
		{"bad urgency", FileInput{Subject: "s", Reason: "r", Urgency: "yesterday"}, FileInput{}, "urgency"},
		{"empty ref", FileInput{Subject: "s", Reason: "r", Refs: []string{""}}, FileInput{}, "refs[0] is empty"},
		{"control ref", FileInput{Subject: "s", Reason: "r", Refs: []string{"a\nb"}}, FileInput{}, "control"},
		{"long subject", FileInput{Subject: strings.Repeat("x", MaxText+1), Reason: "r"}, FileInput{}, "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Normalize(tc.in)
			if tc.problem != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("Normalize error = %v; want ErrInvalid naming %q", err, tc.problem)
				}
				return
			}
			if err != nil || got.Subject != tc.want.Subject || got.Reason != tc.want.Reason || got.Urgency != tc.want.Urgency || !slices.Equal(got.Refs, tc.want.Refs) {
				t.Fatalf("Normalize = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// FuzzNormalize: never panics; accepted input is a fixed point.
func FuzzNormalize(f *testing.F) {
	f.Add("crew X", "case 1", "high", "threat-actor--1", " alias ")
	f.Add("", "", "", "", "")
	f.Fuzz(func(t *testing.T, subject, reason, urgency, ref1, ref2 string) {
		in := FileInput{Subject: subject, Reason: reason, Urgency: urgency, Refs: []string{ref1, ref2}}
		n, err := Normalize(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		n2, err := Normalize(n)
		if err != nil || n2.Subject != n.Subject || n2.Reason != n.Reason || n2.Urgency != n.Urgency || !slices.Equal(n2.Refs, n.Refs) {
			t.Fatalf("not idempotent: %+v -> %+v, %v", n, n2, err)
		}
	})
}

func TestCount(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := []store.Request{
		{Requester: "a", Responder: "b", State: store.RequestFulfilled, FulfilBy: t0, AnsweredAt: t0},
		{Requester: "a", Responder: "b", State: store.RequestRefused, FulfilBy: t0, AnsweredAt: t0.Add(time.Second), AnswerOverdue: true},
		{Requester: "b", Responder: "a", State: store.RequestFiled, FulfilBy: t0, AckOverdue: true},
	}
	got := Count(rs, "a", "b")
	want := []SideStats{
		{Party: "a", Made: 2, Received: 1, Overdue: 1, Open: 1},
		{Party: "b", Made: 1, Received: 2, AnsweredInTime: 1, Fulfilled: 1, Refused: 1, Overdue: 1},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Count = %+v\nwant %+v", got, want)
	}
}
