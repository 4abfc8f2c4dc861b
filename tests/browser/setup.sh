#!/usr/bin/env bash
# Installs Debian's chromium for the real-browser WebSocket test (tests/ws_browser.test.ts), when missing.
# Idempotent and quiet when chromium is already there. Needs root (or sudo) and the Debian package mirror.
#   bash tests/browser/setup.sh          # install if missing
#   bash tests/browser/setup.sh --check  # exit 0 when installed, 1 otherwise (installs nothing)
set -euo pipefail
bin="${GETTY_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$bin" ]; then
  echo "chromium: $("$bin" --version 2>/dev/null || echo "$bin")"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "chromium: not installed at $bin" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: not installed and apt-get is not available; install chromium and set GETTY_CHROMIUM" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "chromium: not installed and not root (no sudo); run as root: apt-get install -y chromium" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "chromium: $("$bin" --version 2>/dev/null || echo installed)"
