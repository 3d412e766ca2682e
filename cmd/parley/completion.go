package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"
)

func init() {
	register(command{"completion", "print a shell completion script: completion bash|zsh|fish", cmdCompletion})
	register(command{"__complete", "", cmdComplete})
}

// subcommands lists the second words the completion offers.
var subcommands = map[string][]string{
	"party":      {"add", "list"},
	"token":      {"add", "revoke", "list"},
	"collection": {"add", "list"},
	"agreement":  {"propose", "sign", "show", "list", "amend", "suspend", "resume", "terminate"},
	"handover":   {"propose", "accept", "decline", "deposit", "withdraw", "show", "fetch", "confirm", "reject", "dispute", "list"},
	"request":    {"file", "ack", "fulfil", "refuse", "list", "show"},
	"witness":    {"keygen", "cosign", "add"},
	"bench":      {"taxii", "load"},
	"completion": {"bash", "zsh", "fish"},
	"key":        {"rotate"},
	"contest":    {"file", "withdraw", "list"},
	"match":      {"list"},
	"node":       {"id", "hello"},
	"peer":       {"add", "list", "remove"},
	"escrow":     {"cases"},
}

func cmdCompletion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: completion bash|zsh|fish", errUsage)
	}
	var names []string
	for _, c := range commands() {
		if !strings.HasPrefix(c.name, "__") {
			names = append(names, c.name)
		}
	}
	sort.Strings(names)
	switch args[0] {
	case "bash", "zsh":
		var cases strings.Builder
		for _, c := range names {
			if subs, ok := subcommands[c]; ok {
				fmt.Fprintf(&cases, "    %s) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", c, strings.Join(subs, " "))
			}
		}
		if args[0] == "zsh" {
			fmt.Fprintln(stdout, "autoload -U +X bashcompinit && bashcompinit")
		}
		// Flags come from the command itself, ids from the server (with the
		// current profile), through the hidden command __complete.
		fmt.Fprintf(stdout, `# parley completion; load with: source <(parley completion %s)
_parley() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W %q -- "$cur")); return
  fi
  local cmd=${COMP_WORDS[1]} sub=
  [ "$COMP_CWORD" -gt 2 ] && sub=${COMP_WORDS[2]}
  case "$cur" in
    -*) COMPREPLY=($(compgen -W "$(parley __complete flags "$cmd" $sub 2>/dev/null)" -- "$cur")); return ;;
  esac
  case "$prev" in
    --agreement|-agreement) COMPREPLY=($(compgen -W "$(parley __complete agreement 2>/dev/null)" -- "$cur")); return ;;
    --handover|-handover) COMPREPLY=($(compgen -W "$(parley __complete handover 2>/dev/null)" -- "$cur")); return ;;
    --request|-request) COMPREPLY=($(compgen -W "$(parley __complete request 2>/dev/null)" -- "$cur")); return ;;
    --session|-session) COMPREPLY=($(compgen -W "$(parley __complete match 2>/dev/null)" -- "$cur")); return ;;
  esac
  if [ "$COMP_CWORD" -eq 2 ]; then
    case "$cmd" in
%s    balance) COMPREPLY=($(compgen -W "$(parley __complete agreement 2>/dev/null)" -- "$cur")) ;;
    esac
    return
  fi
  if [ "$COMP_CWORD" -eq 3 ]; then
    case "$cmd $sub" in
      "agreement list"|"agreement propose"|"handover list"|"handover propose"|"request list"|"request file") ;;
      agreement\ *|handover\ *|request\ *) COMPREPLY=($(compgen -W "$(parley __complete "$cmd" 2>/dev/null)" -- "$cur")) ;;
    esac
  fi
}
complete -o default -F _parley parley
`, args[0], strings.Join(names, " "), cases.String())
	case "fish":
		fmt.Fprintf(stdout, "# parley completion; load with: parley completion fish | source\n")
		for _, c := range names {
			fmt.Fprintf(stdout, "complete -c parley -n __fish_use_subcommand -a %s\n", c)
			for _, s := range subcommands[c] {
				fmt.Fprintf(stdout, "complete -c parley -n '__fish_seen_subcommand_from %s' -a %s\n", c, s)
			}
			seen := map[string]bool{}
			for _, sub := range append([]string{""}, subcommands[c]...) {
				for _, f := range commandFlags(ctx, c, sub) {
					if !seen[f] {
						seen[f] = true
						fmt.Fprintf(stdout, "complete -c parley -n '__fish_seen_subcommand_from %s' -l %s\n", c, f)
					}
				}
			}
		}
		for _, k := range []string{"agreement", "handover", "request"} {
			fmt.Fprintf(stdout, "complete -c parley -n '__fish_seen_subcommand_from %s' -l %s -x -a '(parley __complete %s 2>/dev/null)'\n", k, k, k)
			fmt.Fprintf(stdout, "complete -c parley -n '__fish_seen_subcommand_from %s; and __fish_is_nth_token 3' -x -a '(parley __complete %s 2>/dev/null)'\n", k, k)
		}
	default:
		return fmt.Errorf("%w: completion for %q is not available; use bash, zsh or fish", errUsage, args[0])
	}
	return nil
}

var flagLine = regexp.MustCompile(`(?m)^  -([A-Za-z0-9][A-Za-z0-9-]*)`)

// commandFlags lists the flags of a command (and subcommand) by asking the
// command for its -h text, so completion never falls out of step with the
// flags a command really defines.
func commandFlags(ctx context.Context, cmd, sub string) []string {
	if strings.HasPrefix(cmd, "__") || cmd == "completion" {
		return nil
	}
	for _, c := range commands() {
		if c.name != cmd {
			continue
		}
		args := []string{"-h"}
		if sub != "" {
			args = []string{sub, "-h"}
		}
		var help bytes.Buffer
		if err := c.run(ctx, args, io.Discard, &help); !errors.Is(err, flag.ErrHelp) {
			return nil
		}
		var out []string
		for _, m := range flagLine.FindAllStringSubmatch(help.String(), -1) {
			out = append(out, m[1])
		}
		return out
	}
	return nil
}

// cmdComplete is the hidden helper the completion scripts call:
// "__complete flags CMD [SUB]" prints the flags as --name words;
// "__complete agreement|handover|request|match" prints the ids the current
// profile's party can use. It prints nothing on any failure: completion must
// never spill errors into a command line.
func cmdComplete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return nil
	}
	if args[0] == "flags" {
		if len(args) < 2 {
			return nil
		}
		sub := ""
		if len(args) > 2 && !strings.HasPrefix(args[2], "-") {
			sub = args[2]
		}
		for _, f := range commandFlags(ctx, args[1], sub) {
			fmt.Fprintf(stdout, "--%s\n", f)
		}
		return nil
	}
	fs := newFlags("__complete", io.Discard)
	cf := addClientFlags(fs)
	if _, err := parse(fs, args[1:]); err != nil {
		return nil
	}
	c, _, err := cf.client()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var ids []string
	switch args[0] {
	case "agreement":
		as, err := c.Agreements(ctx)
		if err != nil {
			return nil
		}
		for _, a := range as {
			ids = append(ids, a.ID)
		}
	case "handover":
		hs, err := c.Handovers(ctx, "")
		if err != nil {
			return nil
		}
		for _, h := range hs {
			ids = append(ids, h.ID)
		}
	case "request":
		rs, err := c.Requests(ctx, "")
		if err != nil {
			return nil
		}
		for _, r := range rs {
			ids = append(ids, r.ID)
		}
	case "match":
		ms, err := c.Matches(ctx, "")
		if err != nil {
			return nil
		}
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
	}
	for _, id := range ids {
		fmt.Fprintln(stdout, id)
	}
	return nil
}
