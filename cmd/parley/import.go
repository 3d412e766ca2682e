package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/parley-cti/parley/internal/exchange"
	"github.com/parley-cti/parley/internal/medallion"
	"github.com/parley-cti/parley/internal/party"
	"github.com/parley-cti/parley/internal/store"
)

func init() {
	register(command{"import", "import another TAXII server's data (operator): import --from-medallion FILE --party NAME", cmdImport})
}

// cmdImport brings a medallion deployment's collections into the operator
// API root, keeping ids, titles, descriptions, objects and date_added.
func cmdImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("import", stderr)
	loc := addDBFlags(fs)
	from := fs.String("from-medallion", "", "medallion data file (its memory backend's JSON, e.g. default_data.json)")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	var parties listFlag
	fs.Var(&parties, "party", "party (name or id) that gets what medallion gave every user: read where can_read, write where can_write; repeat for several")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *from == "" {
		return fmt.Errorf("%w: import --from-medallion FILE [--party NAME ...]", errUsage)
	}
	data, err := os.ReadFile(*from)
	if err != nil {
		return err
	}
	colls, err := medallion.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", *from, err)
	}
	st, err := openOperator(ctx, *loc)
	if err != nil {
		return err
	}
	defer st.Close()
	ps := party.New(st)
	var ids []string
	for _, n := range parties {
		p, err := ps.Lookup(ctx, n)
		if err != nil {
			return err
		}
		ids = append(ids, p.ID)
	}
	ex := exchange.New(st)
	type report struct {
		APIRoot    string   `json:"medallion_api_root"`
		ID         string   `json:"id"`
		Title      string   `json:"title"`
		Added      int      `json:"added"`
		Duplicates int      `json:"duplicates,omitempty"`
		Refused    []string `json:"refused,omitempty"`
		Readers    int      `json:"readers"`
		Writers    int      `json:"writers"`
	}
	var reports []report
	for _, c := range colls {
		var readers, writers []string
		if c.CanRead {
			readers = ids
		}
		if c.CanWrite {
			writers = ids
		}
		objs := make([]exchange.ImportedObject, len(c.Objects))
		for i, o := range c.Objects {
			objs[i] = exchange.ImportedObject{Raw: o.Raw, DateAdded: o.DateAdded}
		}
		sc := exchangeCollection(c, readers, writers)
		res, err := ex.ImportCollection(ctx, sc, objs, "medallion")
		if err != nil {
			return fmt.Errorf("importing collection %s (%q, API root %s): %w; collections before it were imported", c.ID, c.Title, c.APIRoot, err)
		}
		r := report{APIRoot: c.APIRoot, ID: c.ID, Title: c.Title, Added: res.Added, Duplicates: res.Duplicates, Readers: len(readers), Writers: len(writers)}
		for _, f := range res.Refused {
			r.Refused = append(r.Refused, f.Message)
		}
		reports = append(reports, r)
	}
	return emit(stdout, *asJSON, reports, func() {
		for _, r := range reports {
			fmt.Fprintf(stdout, "collection %s %q (from %s): %d object versions, %d readers, %d writers\n", r.ID, r.Title, r.APIRoot, r.Added, r.Readers, r.Writers)
			for _, m := range r.Refused {
				fmt.Fprintf(stdout, "  refused: %s\n", m)
			}
		}
		fmt.Fprintf(stdout, "imported %d collections into API root /taxii2/%s/\n", len(reports), exchange.OperatorRoot)
		if len(ids) == 0 {
			fmt.Fprintln(stdout, "no --party given: no party can read or write them yet")
		}
	})
}

func exchangeCollection(c medallion.Collection, readers, writers []string) store.Collection {
	title := strings.TrimSpace(c.Title)
	if title == "" {
		title = c.ID
	}
	return store.Collection{ID: c.ID, Title: title, Description: c.Description, Readers: readers, Writers: writers}
}
