// `tsnet completion bash|zsh|fish`: a script that asks `tsnet _complete` for candidates, so it
// never goes stale when commands or options change (src/cli/complete.ts).
import { defineCommand } from "../cli/command.ts";
import { out } from "../cli/output.ts";
import { UsageError } from "../errors/errors.ts";

const SHELLS = ["bash", "zsh", "fish"] as const;

const SCRIPTS: Record<(typeof SHELLS)[number], string> = {
  bash: `# bash completion for tsnet. Load it with:  source <(tsnet completion bash)
# or install it:  tsnet completion bash > /etc/bash_completion.d/tsnet
_tsnet() {
    local IFS=$'\\n'
    COMPREPLY=($(command "\${COMP_WORDS[0]}" _complete bash "$COMP_WORDBREAKS" "\${COMP_LINE:0:$COMP_POINT}" 2>/dev/null))
}
complete -o default -F _tsnet tsnet
`,
  zsh: `#compdef tsnet
# zsh completion for tsnet. Load it with:  source <(tsnet completion zsh)
# (after compinit), or save it as _tsnet in a directory on $fpath.
_tsnet() {
    local -a candidates
    candidates=("\${(@f)$("\${words[1]}" _complete zsh "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
    if [[ \${#candidates} -eq 0 || -z \${candidates[1]} ]]; then
        _files
        return
    fi
    _describe -t tsnet tsnet candidates
}
if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
    _tsnet "$@"
elif (( $+functions[compdef] )); then
    compdef _tsnet tsnet
else
    print -u2 "tsnet completion: run 'autoload -U compinit && compinit' before loading this script"
fi
`,
  fish: `# fish completion for tsnet. Load it with:  tsnet completion fish | source
# or install it:  tsnet completion fish > ~/.config/fish/completions/tsnet.fish
function __tsnet_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l cmd $tokens[1]
    set -e tokens[1]
    set -l found ($cmd _complete fish $tokens "$cur" 2>/dev/null)
    if test (count $found) -eq 0
        __fish_complete_path "$cur"
        return
    end
    printf '%s\\n' $found
end
complete -c tsnet -f -a '(__tsnet_complete)'
`,
};

export default defineCommand({
  name: "completion",
  details: [
    "Commands, options, container names and --network values are completed; the script asks tsnet itself (tsnet _complete), so it stays right when tsnet is upgraded.",
  ],
  args: [{ name: "SHELL", what: "a shell: bash, zsh or fish", description: "bash, zsh or fish", complete: SHELLS }],
  options: {},
  examples: ["source <(tsnet completion bash)", "tsnet completion bash > /etc/bash_completion.d/tsnet", "tsnet completion fish | source"],
  run({ args }) {
    const shell = args[0]!;
    if (!(SHELLS as readonly string[]).includes(shell)) throw new UsageError(`unknown shell "${shell}" for tsnet completion: use bash, zsh or fish`);
    out(SCRIPTS[shell as (typeof SHELLS)[number]]);
    return 0;
  },
});
