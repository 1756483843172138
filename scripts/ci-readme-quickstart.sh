#!/usr/bin/env bash
# CI step: run the README's quick start literally in this clone.
# `npm start` (first sh block after `npm ci`, which CI has already run) is started in the background until
# it prints the ready line; then the README's second sh block (verify, chat, proxy, curl, openai client)
# runs exactly as written, with `bash -e`; then Ctrl-C (SIGINT) must stop the platform with exit 0 and
# leave no plaintext model behind. Fails on any deviation.
set -euo pipefail
cd "$(dirname "$0")/.."

readme_block() { # the Nth ```sh block of the Quick start section
  awk -v want="$1" '
    /^## Quick start/ { inside = 1; next }
    /^## / && inside { exit }
    inside && /^```sh/ { n++; if (n == want) { grab = 1; next } }
    grab && /^```/ { exit }
    grab { print }
  ' README.md
}

first=$(readme_block 1)
second=$(readme_block 2)
grep -q '^npm start' <<<"$first" || { echo "README quick start: first block does not run npm start" >&2; exit 1; }
[ -n "$second" ] || { echo "README quick start: second block missing" >&2; exit 1; }

rm -rf .tresor
log=$(mktemp /tmp/tresor-readme.XXXXXX)
started=$(mktemp /tmp/tresor-readme-start.XXXXXX) # files newer than this were written by this run
# setsid: npm start and its children form one process group, as in a terminal where Ctrl-C reaches all.
setsid npm start >"$log" 2>&1 &
platform=$!
cleanup() {
  if kill -0 "$platform" 2>/dev/null; then kill -KILL -- "-$platform" 2>/dev/null || true; fi
  rm -f "$log" "$started"
}
trap cleanup EXIT

deadline=$((SECONDS + 600))
until grep -q '^Tresor is ready: ' "$log"; do
  if ! kill -0 "$platform" 2>/dev/null; then
    echo "npm start exited before it was ready:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "npm start not ready after 600 s:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  sleep 1
done
grep '^Tresor is ready: ' "$log"

echo "== README quick start, second block"
bash -euo pipefail -c "$second"

echo "== Ctrl-C"
kill -INT -- "-$platform"
status=0
wait "$platform" || status=$?
# 130 = 128 + SIGINT: npm reports the signal it was stopped by, as a terminal's Ctrl-C does; the
# platform's own clean stop is checked by its last line and by the process check below.
if [ "$status" -ne 0 ] && [ "$status" -ne 130 ]; then
  echo "npm start exited $status after SIGINT:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
if ! tail -n 3 "$log" | grep -q 'every Tresor process has exited'; then
  echo "tresor up did not report a clean stop:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
if pgrep -f 'tresor.js (trust|serving|gateway) serve' >/dev/null; then
  echo "platform processes still running after SIGINT" >&2
  exit 1
fi
if find .tresor /tmp -name '*.gguf' -newer "$started" 2>/dev/null | grep -q .; then
  echo "a plaintext model file remains:" >&2
  find .tresor /tmp -name '*.gguf' -newer "$started" >&2
  exit 1
fi
echo "== README quick start passed"
