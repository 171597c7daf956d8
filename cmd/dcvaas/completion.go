package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

const completionUsage = `usage: dcvaas completion bash|zsh|fish

Prints a shell completion script for dcvaas's commands and their flags.
  bash: source <(dcvaas completion bash)
  zsh:  dcvaas completion zsh > "${fpath[1]}/_dcvaas"
  fish: dcvaas completion fish > ~/.config/fish/completions/dcvaas.fish`

// completion is `dcvaas completion SHELL`.
func completion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		fmt.Fprintln(stderr, completionUsage)
		return fmt.Errorf("completion: name one shell: bash, zsh or fish")
	}
	flags := map[string]string{}
	var top []string
	for _, c := range commandNames {
		top = append(top, strings.Fields(c)[0])
		flags[c] = strings.Join(flagsOf(ctx, c), " ")
	}
	switch args[0] {
	case "bash":
		fmt.Fprintln(stdout, "# bash completion for dcvaas: source <(dcvaas completion bash)")
		fmt.Fprintln(stdout, "_dcvaas() {\n  local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]} sub=${COMP_WORDS[2]}\n  if [ \"$COMP_CWORD\" -eq 1 ]; then\n    COMPREPLY=($(compgen -W \""+strings.Join(top, " ")+"\" -- \"$cur\")); return\n  fi\n  local words=\n  case \"$cmd\" in")
		for _, c := range commandNames {
			f := strings.Fields(c)
			if len(f) == 2 {
				fmt.Fprintf(stdout, "    %s) if [ \"$COMP_CWORD\" -eq 2 ]; then words=%q; else words=%q; fi ;;\n", f[0], f[1], flags[c])
				continue
			}
			words := flags[c]
			if c == "help" {
				words = strings.Join(top, " ")
			} else if c == "completion" {
				words = "bash zsh fish"
			}
			fmt.Fprintf(stdout, "    %s) words=%q ;;\n", c, words)
		}
		fmt.Fprintln(stdout, "  esac\n  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\ncomplete -F _dcvaas dcvaas")
	case "zsh":
		fmt.Fprintln(stdout, "#compdef dcvaas\n_dcvaas() {\n  if (( CURRENT == 2 )); then\n    compadd -- "+strings.Join(top, " ")+"\n    return\n  fi\n  case $words[2] in")
		for _, c := range commandNames {
			f := strings.Fields(c)
			words := flags[c]
			switch {
			case len(f) == 2:
				fmt.Fprintf(stdout, "    %s) if (( CURRENT == 3 )); then compadd -- %s; else compadd -- %s; fi ;;\n", f[0], f[1], words)
				continue
			case c == "help":
				words = strings.Join(top, " ")
			case c == "completion":
				words = "bash zsh fish"
			}
			fmt.Fprintf(stdout, "    %s) compadd -- %s ;;\n", c, words)
		}
		fmt.Fprintln(stdout, "  esac\n}\ncompdef _dcvaas dcvaas")
	case "fish":
		fmt.Fprintln(stdout, "# fish completion for dcvaas")
		fmt.Fprintf(stdout, "complete -c dcvaas -f -n __fish_use_subcommand -a %q\n", strings.Join(top, " "))
		for _, c := range commandNames {
			f := strings.Fields(c)
			if len(f) == 2 {
				fmt.Fprintf(stdout, "complete -c dcvaas -f -n '__fish_seen_subcommand_from %s' -a %s\n", f[0], f[1])
			}
			for _, fl := range strings.Fields(flags[c]) {
				fmt.Fprintf(stdout, "complete -c dcvaas -n '__fish_seen_subcommand_from %s' -l %s\n", f[0], strings.TrimPrefix(fl, "--"))
			}
		}
		fmt.Fprintf(stdout, "complete -c dcvaas -f -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'\n")
		fmt.Fprintf(stdout, "complete -c dcvaas -f -n '__fish_seen_subcommand_from help' -a %q\n", strings.Join(top, " "))
	default:
		return fmt.Errorf("completion: unknown shell %q: want bash, zsh or fish", args[0])
	}
	return nil
}
