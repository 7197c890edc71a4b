#!/usr/bin/env bash
# Sets up everything Emotekit needs on a fresh Debian machine: the virtual environment,
# the pinned Python packages, and (with --web) Chromium, the npm packages and the face detector.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
web=0
for a in "$@"; do
  case "$a" in
    --web) web=1 ;;
    *) echo "setup.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.emotekit-installed
want=$(cat setup.cfg pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi

# The npm emoji sets (emoji:google, emoji:twitter, emoji:openmoji, emoji:fluentui; emoji:twemoji comes
# with the Python packages): pinned in data_pipelines/emoji_npm, installed into its node_modules with
# the SVG sets rendered to PNG (about 32 MB kept). Skipped when installed; without npm, or when the
# registry cannot be reached, only those sets are missing (their tests skip), so setup goes on.
if command -v npm >/dev/null 2>&1; then
  .venv/bin/python -m data_pipelines emoji-sets --install --quiet \
    || echo "setup.sh: the npm emoji sets were not installed (see above); emoji:twemoji still works" >&2
else
  echo "setup.sh: npm not found: skipping the npm emoji sets (emoji:twemoji still works)" >&2
fi

if [ "$web" = 1 ]; then
  if ! command -v chromium >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
  fi
  if [ -f mobile_demo/package.json ]; then
    (cd mobile_demo && { [ -d node_modules ] && [ node_modules -nt package-lock.json ] || npm ci --no-audit --no-fund --silent; })
  fi
  if [ -f mobile_demo/setup_assets.py ]; then
    .venv/bin/python -m mobile_demo.setup_assets
  fi
fi
