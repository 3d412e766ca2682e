package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/request"
	"github.com/parley-cti/parley/internal/store"
)

func init() {
	register(command{"request", "requests for intelligence: request file|ack|fulfil|refuse|list|show", cmdRequest})
}

var requestUsage = `request file --agreement A --subject TEXT --reason TEXT [--urgency low|normal|high|critical] [--ref ID]...
  request ack ID | show ID
  request fulfil ID --handover H          (a handover that references the request: propose it with --request ID)
  request refuse ID --ground G [--text T] (G: ` + strings.Join(request.Grounds, ", ") + `; "other" needs --text)
  request list [--agreement A]            (with --agreement, also each side's counts)`

func cmdRequest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, requestUsage)
	}
	sub := args[0]
	fs := newFlags("request "+sub, stderr)
	cf := addClientFlags(fs)
	agreementID := fs.String("agreement", "", "agreement id (file, list)")
	subject := fs.String("subject", "", "what the request is about (file)")
	reason := fs.String("reason", "", "why it is asked (file)")
	urgency := fs.String("urgency", "normal", "low, normal, high or critical (file)")
	var refs listFlag
	fs.Var(&refs, "ref", "STIX id or identifier (alias, e-mail, wallet, hash, IP) the request concerns; repeat for several (file)")
	handover := fs.String("handover", "", "the handover that fulfils the request (fulfil)")
	ground := fs.String("ground", "", "refusal ground (refuse): "+strings.Join(request.Grounds, ", "))
	text := fs.String("text", "", "refusal text (refuse; required with --ground other)")
	onlyOwnFlags := forSubcommand(fs, "request", sub, map[string][]string{
		"agreement": {"file", "list"}, "subject": {"file"}, "reason": {"file"}, "urgency": {"file"}, "ref": {"file"},
		"handover": {"fulfil"}, "ground": {"refuse"}, "text": {"refuse"}})
	pos, err := parse(fs, args[1:])
	if err == nil {
		err = onlyOwnFlags()
	}
	if err != nil {
		return err
	}
	c, _, err := cf.client()
	if err != nil {
		return err
	}
	show := func(r *client.Request) error {
		return emit(stdout, cf.json, r, func() { printRequest(stdout, r) })
	}
	if sub != "file" && sub != "list" && len(pos) != 1 {
		return fmt.Errorf("%w: request %s needs the request ID", errUsage, sub)
	}
	// Ids may be given by a unique prefix.
	if sub != "file" && sub != "list" && slices.Contains(subcommands["request"], sub) {
		if pos[0], err = resolveID(ctx, c, "request", pos[0]); err != nil {
			return err
		}
	}
	if *agreementID, err = resolveID(ctx, c, "agreement", *agreementID); err != nil {
		return err
	}
	if *handover, err = resolveID(ctx, c, "handover", *handover); err != nil {
		return err
	}
	var r *client.Request
	switch sub {
	case "file":
		if *agreementID == "" || *subject == "" || *reason == "" {
			return fmt.Errorf("%w: request file needs --agreement, --subject and --reason", errUsage)
		}
		r, err = c.FileRequest(ctx, client.NewRequest{Agreement: *agreementID, Subject: *subject, Refs: refs, Reason: *reason, Urgency: *urgency})
	case "ack":
		r, err = c.AckRequest(ctx, pos[0])
	case "show":
		r, err = c.Request(ctx, pos[0])
	case "fulfil":
		if *handover == "" {
			return fmt.Errorf("%w: request fulfil ID --handover H", errUsage)
		}
		r, err = c.FulfilRequest(ctx, pos[0], *handover)
	case "refuse":
		if *ground == "" {
			return fmt.Errorf("%w: a refusal needs --ground: one of %s", errUsage, strings.Join(request.Grounds, ", "))
		}
		r, err = c.RefuseRequest(ctx, pos[0], *ground, *text)
	case "list":
		rs, err := c.Requests(ctx, *agreementID)
		if err != nil {
			return err
		}
		var stats []client.RequestStats
		if *agreementID != "" {
			if stats, err = c.RequestStats(ctx, *agreementID); err != nil {
				return err
			}
		}
		return emit(stdout, cf.json, map[string]any{"requests": rs, "sides": stats}, func() {
			for _, r := range rs {
				flag := ""
				if r.AckOverdue || r.AnswerOverdue {
					flag = "\tOVERDUE"
				}
				state := r.State
				switch {
				case r.AnswerPending:
					state += " (answering handover pending)"
				case r.State == store.RequestUndelivered:
					state += " (" + r.Ground + ")"
				}
				fmt.Fprintf(stdout, "%s\t%s\t%s -> %s\t%s%s\n", r.ID, state, names.name(r.Requester), names.name(r.Responder), r.Subject, flag)
			}
			for _, s := range stats {
				fmt.Fprintf(stdout, "%s: made %d; received %d, answered in time %d, fulfilled %d, refused %d, overdue %d, open %d\n",
					names.name(s.Party), s.Made, s.Received, s.AnsweredInTime, s.Fulfilled, s.Refused, s.Overdue, s.Open)
			}
		})
	default:
		return unknownSub("request", sub)
	}
	if err != nil {
		return err
	}
	return show(r)
}

func printRequest(w io.Writer, r *client.Request) {
	fmt.Fprintf(w, "request %s (%s) under %s: %s -> %s\n", r.ID, r.State, r.Agreement, names.name(r.Requester), names.name(r.Responder))
	fmt.Fprintf(w, "  subject: %s\n  reason: %s\n  urgency: %s\n", r.Subject, r.Reason, r.Urgency)
	if len(r.Refs) > 0 {
		fmt.Fprintf(w, "  refs: %s\n", strings.Join(r.Refs, ", "))
	}
	fmt.Fprintf(w, "  acknowledge by %s, answer by %s\n", r.AckBy.Format(time.RFC3339), r.FulfilBy.Format(time.RFC3339))
	switch {
	case r.State == store.RequestUndelivered:
		fmt.Fprintf(w, "  undelivered: the responder's node refused the filing for good: %s %s\n", r.Ground, r.GroundText)
	case r.Ground != "":
		fmt.Fprintf(w, "  refused: %s %s\n", r.Ground, r.GroundText)
	}
	switch {
	case r.AnswerPending:
		fmt.Fprintf(w, "  answering handover pending: %s (the request is fulfilled when it is released, reopened if it fails)\n", r.Handover)
	case r.Handover != "":
		fmt.Fprintf(w, "  fulfilled by handover %s\n", r.Handover)
	}
	if r.AckOverdue || r.AnswerOverdue {
		fmt.Fprintf(w, "  OVERDUE (acknowledgement %v, answer %v)\n", r.AckOverdue, r.AnswerOverdue)
	}
	if r.LedgerIndex != nil {
		fmt.Fprintf(w, "  ledger entry %d\n", *r.LedgerIndex)
	}
}
