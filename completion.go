package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// bashCompletion completes a wattrec command line from the binary's own
// --generate-bash-completion (urfave/cli's hidden flag: the commands,
// subcommands and flags where the cursor is), falling back to file names.
// zsh runs the same function through bashcompinit.
const bashCompletion = `_wattrec() {
  local cur="${COMP_WORDS[COMP_CWORD]}" words
  if [[ "$cur" == -* ]]; then
    words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  if [[ ${#COMPREPLY[@]} -eq 0 ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o default -F _wattrec wattrec
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash, zsh or fish",
		UsageText: "wattrec completion bash > /etc/bash_completion.d/wattrec   # or: source <(wattrec completion zsh)",
		ArgsUsage: "SHELL",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("completion: name the shell: bash, zsh or fish")
			}
			return writeCompletion(c.App, c.App.Writer, c.Args().First())
		},
	}
}

func writeCompletion(app *cli.App, w io.Writer, shell string) error {
	switch shell {
	case "bash":
		_, err := io.WriteString(w, bashCompletion)
		return err
	case "zsh":
		_, err := io.WriteString(w, "autoload -U +X bashcompinit && bashcompinit\n"+bashCompletion)
		return err
	case "fish":
		script, err := app.ToFishCompletion()
		if err != nil {
			return fmt.Errorf("completion fish: %w", err)
		}
		_, err = io.WriteString(w, script)
		return err
	}
	return fmt.Errorf("completion %q: want bash, zsh or fish", shell)
}
