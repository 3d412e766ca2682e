package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
)

func init() {
	register(command{"completion", "print a shell completion script: completion bash|zsh|fish", cmdCompletion})
}

// subcommands lists the second words the completion offers.
var subcommands = map[string][]string{
	"party":      {"add", "list"},
	"token":      {"add", "revoke", "list"},
	"collection": {"add", "list"},
	"agreement":  {"propose", "sign", "show", "list", "amend", "suspend", "resume", "terminate"},
	"handover":   {"propose", "accept", "decline", "deposit", "withdraw", "show", "fetch", "dispute", "list"},
	"request":    {"file", "ack", "fulfil", "refuse", "list", "show"},
	"witness":    {"keygen", "cosign", "add"},
	"bench":      {"taxii", "load"},
	"completion": {"bash", "zsh", "fish"},
}

func cmdCompletion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: completion bash|zsh|fish", errUsage)
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
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
		fmt.Fprintf(stdout, `# parley completion; load with: source <(parley completion %s)
_parley() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W %q -- "$cur")); return
  fi
  if [ "$COMP_CWORD" -eq 2 ]; then
    case "${COMP_WORDS[1]}" in
%s    esac
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
		}
	default:
		return fmt.Errorf("%w: completion for %q is not available; use bash, zsh or fish", errUsage, args[0])
	}
	return nil
}
