#!/usr/bin/env bash
# Writes assetmv(1) from the binary's own --help, so the man page can never
# drift from the options: help2man renders `assetmv --help` and `--version`,
# and each subcommand's --help becomes a section of COMMANDS. The exit codes,
# environment and files sections come from packaging/manpage.include.
#   packaging/manpage.sh BINARY OUT.1
set -euo pipefail
bin=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
include=$(mktemp)
trap 'rm -f "$include"' EXIT

# Each subcommand's --help, as CLI11 prints it (an option line starts with
# two spaces and a dash; its description follows after padding or on
# indented lines below), becomes .TP entries like help2man's own options.
as_roff() {
  awk '
    function esc(s) { gsub(/\\/, "\\e", s); gsub(/-/, "\\-", s); sub(/^[.'\'']/, "\\\\\\&&", s); return s }
    NR == 1 || /^Usage:/ || /^Options:/ || NF == 0 { next }
    /^  -/ {
      spec = $0; sub(/^  /, "", spec); desc = ""
      if (match(spec, /   +[^ ]/)) { desc = substr(spec, RSTART + RLENGTH - 1); spec = substr(spec, 1, RSTART - 1) }
      print ".TP"; print ".B " esc(spec); if (desc != "") print esc(desc); next
    }
    /^ +[^ ]/ { d = $0; sub(/^ +/, "", d); print esc(d); next }
    { print ".PP"; print esc($0) }
  '
}

{
  echo "[COMMANDS]"
  "$bin" --help | awk '/^Subcommands:/ {on = 1; next} on && NF {print $1}' | while read -r sub; do
    echo ".SS \"assetmv $sub\""
    "$bin" "$sub" --help | as_roff
  done
  cat "$here/manpage.include"
} >"$include"

help2man --no-info --section=1 --source="assetmv" --manual="User Commands" \
  --name="move legacy S3 objects to the production bucket/prefix and rewrite their paths in PostgreSQL" \
  --include="$include" --output="$out" "$bin"
