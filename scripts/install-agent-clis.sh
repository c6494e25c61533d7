#!/usr/bin/env bash
# Install the pinned agent CLIs that AURA's adapters and real-CLI tests are written against.
#
# Usage: scripts/install-agent-clis.sh [DIR]   (default: <repo>/.npm-tools)
# Binaries end up in DIR/node_modules/.bin (claude, codex, gemini, qwen, opencode, copilot, droid).
# Idempotent: packages already present at the pinned version are not reinstalled.
# The versions are pinned because these CLIs change flags and output between releases; newer
# claude-code releases also need node 22 (this machine has node 20).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${1:-$here/../.npm-tools}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

pins=(
  "@anthropic-ai/claude-code@2.1.197"
  "@openai/codex@0.169.0"
  "@google/gemini-cli@0.61.0"
  "@qwen-code/qwen-code@0.24.4"
  "opencode-ai@1.18.33"
  "@github/copilot@1.0.102"
  "@factory/cli@0.225.1"
  # the platform package of @factory/cli 0.225.1 is not published; 0.225.2's is
  "@factory/cli-linux-x64@0.225.2"
)

if ! command -v npm >/dev/null 2>&1; then
  echo "install-agent-clis: npm not found (node 20+ and npm are required)" >&2
  exit 1
fi

installed_version() {
  # $1 = package name; prints the installed version or nothing
  local pj="$dir/node_modules/$1/package.json"
  [[ -f "$pj" ]] || return 0
  node -e 'try{process.stdout.write(require(process.argv[1]).version||"")}catch(e){}' "$pj"
}

todo=()
for spec in "${pins[@]}"; do
  name="${spec%@*}"
  want="${spec##*@}"
  have="$(installed_version "$name")"
  if [[ "$have" == "$want" ]]; then
    echo "ok       $name@$have"
  else
    echo "install  $name@$want${have:+ (have $have)}"
    todo+=("$spec")
  fi
done

if ((${#todo[@]})); then
  # --save-exact keeps DIR/package.json pinned, so a later plain `npm install` there cannot drift.
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error --save-exact "${todo[@]}"
fi

echo "binaries in $dir/node_modules/.bin:"
for bin in claude codex gemini qwen opencode copilot droid; do
  if [[ -x "$dir/node_modules/.bin/$bin" ]]; then
    echo "  $bin"
  else
    echo "  $bin MISSING" >&2
  fi
done
