#!/usr/bin/env bash
# Writes bash completion for assetmv from the binary's own --help: the
# subcommands, each one's options, and the choices CLI11 prints for an
# option ("--log-format TEXT:{auto,text,json}"). Options that take a path
# complete file names. Needs no bash-completion helpers.
#   packaging/completion.sh BINARY > assetmv.bash
set -euo pipefail
bin=$1

subs=$("$bin" --help | awk '/^Subcommands:/ {on = 1; next} on && NF {print $1}')
options_of() { "$1" "${@:2}" --help | grep -E '^  -' | grep -oE '(^  |,)--?[A-Za-z0-9-]+' | sed 's/^[ ,]*//'; }
# "--progress TEXT:{auto,always,never}=auto" -> "--progress) words='auto always never';;"
choices_of() {
  "$bin" "$1" --help | sed -nE 's/^  (-[A-Za-z],)?(--[a-z0-9-]+) [A-Z]+:\{([^}]*)\}.*/\2) words="\3";;/p' | tr ',' ' '
}

cat <<HEAD
# bash completion for assetmv, generated from its --help by packaging/completion.sh.
_assetmv() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} sub= w words=
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case \$w in $(echo $subs | tr ' ' '|')) sub=\$w; break ;; esac
  done
  case \$prev in
    --report | --control-file | --pause-file | --ca-file)
      COMPREPLY=(\$(compgen -f -- "\$cur")); return ;;
  esac
  case \$sub in
    '') words="$(echo $subs) $(options_of "$bin" | tr '\n' ' ')" ;;
HEAD
for s in $subs; do
  echo "    $s)"
  echo "      case \$prev in"
  choices_of "$s" | sed 's/^/        /'
  echo "        *) words=\"$(options_of "$bin" "$s" | tr '\n' ' ' | sed 's/ $//')\" ;;"
  echo "      esac ;;"
done
cat <<'TAIL'
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _assetmv assetmv
TAIL
