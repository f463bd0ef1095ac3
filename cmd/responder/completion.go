package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// Shell completion: the scripts ask the binary itself for the words that
// can follow (urfave/cli's --generate-bash-completion), so they never go
// stale; fish gets the whole tree from urfave/cli's generator.

// bashCompletion is urfave/cli's autocomplete/bash_autocomplete, for
// responder.
const bashCompletion = `# bash completion for responder: source it, or put it in
# /etc/bash_completion.d/responder (responder completion bash > ...)
_responder_init_completion() {
  COMPREPLY=()
  _get_comp_words_by_ref "$@" cur prev words cword
}

_responder_complete() {
  if [[ "${COMP_WORDS[0]}" != "source" ]]; then
    local cur opts words cword requestComp
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    if declare -F _init_completion >/dev/null 2>&1; then
      _init_completion -n "=:" || return
    else
      _responder_init_completion -n "=:" || return
    fi
    words=("${words[@]:0:$cword}")
    if [[ "$cur" == "-"* ]]; then
      requestComp="${words[*]} ${cur} --generate-bash-completion"
    else
      requestComp="${words[*]} --generate-bash-completion"
    fi
    opts=$(eval "${requestComp}" 2>/dev/null)
    COMPREPLY=($(compgen -W "${opts}" -- ${cur}))
    return 0
  fi
}

complete -o bashdefault -o default -o nospace -F _responder_complete responder
`

// zshCompletion is urfave/cli's autocomplete/zsh_autocomplete, for
// responder.
const zshCompletion = `#compdef responder
# zsh completion for responder: put it in a folder of $fpath as _responder
# (responder completion zsh > "${fpath[1]}/_responder"), or source it

_responder() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi

  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}

compdef _responder responder
`

func completionCommand(s *streams) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		UsageText: "responder completion bash|zsh|fish",
		Description: "bash:  source <(responder completion bash)     (or save it in /etc/bash_completion.d/responder)\n" +
			"zsh:   responder completion zsh > \"${fpath[1]}/_responder\"\n" +
			"fish:  responder completion fish > ~/.config/fish/completions/responder.fish",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return exitf(exitUsage, "completion takes one shell: bash, zsh or fish")
			}
			switch sh := c.Args().First(); sh {
			case "bash":
				_, err := fmt.Fprint(s.Out, bashCompletion)
				return err
			case "zsh":
				_, err := fmt.Fprint(s.Out, zshCompletion)
				return err
			case "fish":
				script, err := c.App.ToFishCompletion()
				if err != nil {
					return exitf(exitCannotStart, "fish completion: %v", err)
				}
				_, err = fmt.Fprint(s.Out, script)
				return err
			default:
				if sug, ok := closest(sh, []string{"bash", "zsh", "fish"}); ok {
					return exitf(exitUsage, "completion for %q: did you mean %s? (bash, zsh or fish)", sh, sug)
				}
				return exitf(exitUsage, "completion for %q: bash, zsh or fish", sh)
			}
		},
	}
}
