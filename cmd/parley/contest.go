package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/parley-cti/parley/internal/agreement"
	"github.com/parley-cti/parley/internal/client"
	"github.com/parley-cti/parley/internal/ledger"
)

func init() {
	register(command{"contest", "contest credits for worthless objects: contest file AGREEMENT OBJECT-ID -reason TEXT | withdraw AGREEMENT CONTEST-ID | list AGREEMENT", cmdContest})
}

func cmdContest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: contest file|withdraw|list", errUsage)
	}
	sub := args[0]
	fs := newFlags("contest "+sub, stderr)
	cf := addClientFlags(fs)
	var reason string
	var printOnly bool
	want := 2
	switch sub {
	case "file":
		fs.StringVar(&reason, "reason", "", "why the object is worthless (required; signed and shown to both sides)")
		fs.BoolVar(&printOnly, "print", false, "print the signed contest (JSON) instead of sending it, e.g. to paste into the dashboard")
	case "withdraw":
	case "list":
		want = 1
	default:
		return unknownSub("contest", sub)
	}
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != want {
		return fmt.Errorf("%w: contest %s takes %d arguments, got %d", errUsage, sub, want, len(pos))
	}
	c, prof, err := cf.client()
	if err != nil {
		return err
	}
	id, err := resolveID(ctx, c, "agreement", pos[0])
	if err != nil {
		return err
	}
	if sub == "list" {
		cs, err := c.Contests(ctx, id)
		if err != nil {
			return err
		}
		return emit(stdout, cf.json, cs, func() {
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tOBJECT\tBY\tAGAINST\tCREDIT\tFILED\tSTATE\tREASON")
			for _, x := range cs {
				state := "standing"
				if x.WithdrawnAt != nil {
					state = "withdrawn " + x.WithdrawnAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%g\t%s\t%s\t%s\n", x.ID, x.ObjectID, names.name(x.Contester), names.name(x.Contributor),
					x.Weight, x.FiledAt.Format(time.RFC3339), state, x.Reason)
			}
			tw.Flush()
		})
	}
	keys, err := prof.privateKeys()
	if err != nil {
		return err
	}
	me, err := c.Me(ctx)
	if err != nil {
		return err
	}
	st := agreement.ContestStatement{AgreementID: id, PartyID: me.PartyID, KeyID: keys.KeyID(), SignedAt: time.Now()}
	if sub == "file" {
		if reason == "" {
			return fmt.Errorf("%w: contest file needs -reason: say why the object is worthless", errUsage)
		}
		st.Action, st.ObjectID, st.Reason = agreement.ContestFile, pos[1], reason
	} else {
		st.Action, st.ContestID = agreement.ContestWithdraw, pos[1]
	}
	sc, err := agreement.SignContest(keys, st)
	if err != nil {
		return err
	}
	if printOnly {
		return json.NewEncoder(stdout).Encode(sc)
	}
	var x *client.Contest
	var idx int64
	kind := ledger.KindFeedContested
	if sub == "file" {
		x, err = c.FileContest(ctx, sc)
		if x != nil {
			idx = x.LedgerIndex
		}
	} else {
		kind = ledger.KindFeedContestWithdrawn
		x, err = c.WithdrawContest(ctx, sc)
		if x != nil {
			idx = x.WithdrawIndex
		}
	}
	if err != nil {
		return err
	}
	if err := recordReceipt(cf, prof, client.Receipt(idx), kind, x.ID); err != nil {
		fmt.Fprintf(stderr, "parley: the receipt (ledger entry %d) could not be saved: %v\n", idx, err)
	}
	return emit(stdout, cf.json, x, func() {
		if sub == "file" {
			fmt.Fprintf(stdout, "contest %s filed: the credit (%g) for %s no longer counts for the other side (ledger entry %d)\n", x.ID, x.Weight, x.ObjectID, idx)
		} else {
			fmt.Fprintf(stdout, "contest %s withdrawn: the credit (%g) for %s counts again (ledger entry %d)\n", x.ID, x.Weight, x.ObjectID, idx)
		}
	})
}
