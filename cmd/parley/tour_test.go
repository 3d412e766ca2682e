package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/parley-cti/parley/internal/tests/scriptcmd"
)

// TestReadmeTour runs the README's five-minute tour as it is written: it
// takes the first sh block under "## Five-minute tour", turns each line into
// a testscript command and runs them in order against a `parley serve`
// started by the tour itself, so that the README and the program cannot
// drift apart. <placeholders> are filled from the output of the command that
// prints them (a party's token, an agreement id, a handover id); a line or a
// placeholder this test does not know fails it, so a new tour step needs a
// matching rule here.
func TestReadmeTour(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block, err := tourBlock(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	script, err := tourScript(block, addr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tour.txtar"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Glob("../../docs/tour/*")
	if err != nil || len(examples) == 0 {
		t.Fatalf("no example files in docs/tour: %v", err)
	}
	testscript.Run(t, testscript.Params{
		Dir: dir,
		Setup: func(env *testscript.Env) error {
			// The tour runs from the repository root: give it the example files
			// where the README says they are.
			dst := filepath.Join(env.WorkDir, "docs", "tour")
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			for _, f := range examples {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o600); err != nil {
					return err
				}
			}
			// The README's port may be taken on this machine: serve on a free
			// one, as the README says to (PARLEY_LISTEN).
			env.Setenv("PARLEY_LISTEN", addr)
			return nil
		},
		Cmds: scriptcmd.Cmds(),
	})
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tourBlock returns the lines of the first ```sh block after the tour heading.
func tourBlock(readme string) ([]string, error) {
	i := strings.Index(readme, "## Five-minute tour")
	if i < 0 {
		return nil, fmt.Errorf("README.md has no \"## Five-minute tour\" section")
	}
	rest := readme[i:]
	j := strings.Index(rest, "```sh\n")
	if j < 0 {
		return nil, fmt.Errorf("the tour has no ```sh block")
	}
	rest = rest[j+len("```sh\n"):]
	k := strings.Index(rest, "```")
	if k < 0 {
		return nil, fmt.Errorf("the tour's sh block is not closed")
	}
	return strings.Split(rest[:k], "\n"), nil
}

var placeholder = regexp.MustCompile(`<([^<>]+)>`)

// tourScript turns the tour's shell lines into a testscript script.
func tourScript(lines []string, addr string) (string, error) {
	var out strings.Builder
	var pending []string // background commands since the last wait
	nbg := 0
	for n, line := range lines {
		words, err := shellWords(line)
		if err != nil {
			return "", fmt.Errorf("README tour line %d: %w", n+1, err)
		}
		if len(words) == 0 {
			continue
		}
		fmt.Fprintf(&out, "# README: %s\n", strings.TrimSpace(line))
		var assigns []string
		for len(words) > 0 && regexp.MustCompile(`^[A-Z_]+=`).MatchString(words[0]) {
			assigns, words = append(assigns, words[0]), words[1:]
		}
		bg := false
		if words[len(words)-1] == "&" {
			bg, words = true, words[:len(words)-1]
		}
		switch {
		case words[0] == "go" && len(words) > 1 && words[1] == "build":
			continue // the program under test is this test's own binary
		case words[0] == "wait" && len(words) == 1:
			for _, name := range pending {
				fmt.Fprintf(&out, "wait %s\n", name)
			}
			pending = nil
			continue
		case words[0] != "./parley":
			return "", fmt.Errorf("README tour line %d: the tour test does not know how to run %q", n+1, words[0])
		}
		args := []string{"exec", "parley"}
		for _, w := range words[1:] {
			w = strings.ReplaceAll(w, "http://127.0.0.1:8080", "http://"+addr)
			q, err := scriptWord(w)
			if err != nil {
				return "", fmt.Errorf("README tour line %d: %w", n+1, err)
			}
			args = append(args, q)
		}
		for _, a := range assigns {
			fmt.Fprintf(&out, "env %s\n", a)
		}
		serve := len(words) > 1 && words[1] == "serve"
		switch {
		case serve && bg:
			args = append(args, "&server&")
		case bg:
			nbg++
			name := fmt.Sprintf("bg%d", nbg)
			args = append(args, "&"+name+"&")
			pending = append(pending, name)
		}
		fmt.Fprintln(&out, strings.Join(args, " "))
		for _, a := range assigns {
			fmt.Fprintf(&out, "env %s=\n", strings.SplitN(a, "=", 2)[0])
		}
		if serve {
			fmt.Fprintf(&out, "waithttp http://%s/healthz\n", addr)
		}
		// Capture what later lines' placeholders need.
		if len(words) >= 4 && words[1] == "party" && words[2] == "add" {
			fmt.Fprintf(&out, "lastline %s\n", varName(words[3]+" token"))
		}
		if len(words) >= 3 && words[1] == "agreement" && words[2] == "propose" {
			fmt.Fprintf(&out, "grab %s '^agreement (agreement--[0-9a-f-]+)'\n", varName("agreement id"))
		}
		if len(words) >= 3 && words[1] == "agreement" && words[2] == "show" {
			fmt.Fprintf(&out, "grab %s '--hash ([0-9a-f]{64})'\n", varName("document hash"))
		}
		if len(words) >= 3 && words[1] == "handover" && words[2] == "propose" {
			fmt.Fprintf(&out, "grab %s '^handover (handover--[0-9a-f-]+)'\n", varName("handover id"))
		}
		if len(words) >= 2 && words[1] == "pull" {
			// The tour's point: south reads only the grace until it gives.
			fmt.Fprintln(&out, "stdout 'withheld under give-to-get'")
		}
		if len(words) >= 2 && words[1] == "verify" {
			fmt.Fprintln(&out, "stdout '^ledger verified at size'")
		}
	}
	if len(pending) > 0 {
		return "", fmt.Errorf("README tour: background commands %v are never waited for", pending)
	}
	return out.String(), nil
}

// varName is the script variable holding a placeholder's value.
func varName(ph string) string {
	return "TOUR_" + strings.ToUpper(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(ph, "_"))
}

// knownPlaceholder reports whether a placeholder is filled by a rule of tourScript.
func knownPlaceholder(ph string) bool {
	return ph == "agreement id" || ph == "handover id" || ph == "document hash" || strings.HasSuffix(ph, " token")
}

// scriptWord quotes a shell word for testscript, with its placeholders
// turned into variable references.
func scriptWord(w string) (string, error) {
	var b strings.Builder
	last := 0
	for _, m := range placeholder.FindAllStringSubmatchIndex(w, -1) {
		ph := w[m[2]:m[3]]
		if !knownPlaceholder(ph) {
			return "", fmt.Errorf("unknown placeholder <%s>: teach TestReadmeTour where its value comes from", ph)
		}
		b.WriteString(quoteLiteral(w[last:m[0]]))
		b.WriteString("${" + varName(ph) + "}")
		last = m[1]
	}
	b.WriteString(quoteLiteral(w[last:]))
	return b.String(), nil
}

func quoteLiteral(s string) string {
	if s == "" || regexp.MustCompile(`^[A-Za-z0-9_./:=,+-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// shellWords splits a line as sh would for the simple lines of the tour:
// words separated by blanks, single and double quotes, and a comment from
// an unquoted # that starts a word.
func shellWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		case c == '#' && !inWord:
			return words, nil
		case c == '\'' || c == '"':
			j := strings.IndexByte(line[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("unclosed %c quote", c)
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '<':
			// A <placeholder> is one word part, spaces and all.
			j := strings.IndexByte(line[i:], '>')
			if j < 0 {
				return nil, fmt.Errorf("unclosed <placeholder>")
			}
			cur.WriteString(line[i : i+j+1])
			i += j
			inWord = true
		case c == '\\' || c == '$' || c == '`' || c == '|' || c == ';' || c == '>' || c == '(':
			return nil, fmt.Errorf("%q: the tour test runs simple commands only, without %c", line, c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
