#!/usr/bin/env bash
# verify-units.sh BINARY UNIT...: checks systemd units with systemd-analyze
# verify, their edgetrack ExecStart pointed at BINARY (the one just built or
# installed). Any message fails. Without systemd-analyze it says so and
# succeeds.
set -euo pipefail
bin=$(realpath "$1"); shift
if ! command -v systemd-analyze >/dev/null; then
  echo "verify-units: no systemd-analyze here; units not verified" >&2
  exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0
for u in "$@"; do
  sed "s#^ExecStart=[^ ]*/edgetrack #ExecStart=$bin #" "$u" >"$tmp/$(basename "$u")"
  out=$(systemd-analyze verify "$tmp/$(basename "$u")" 2>&1) || status=1
  if [ -n "$out" ]; then echo "$out" >&2; status=1; fi
done
[ $status = 0 ] && echo "verify-units: $# units verified" >&2
exit $status
