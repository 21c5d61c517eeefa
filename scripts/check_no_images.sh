#!/usr/bin/env bash
# Fail if any file tracked by git (the index: what the next commit holds) is an image, a numpy
# array file, or larger than 1 MiB, so that no face image or embedding is ever committed.
# Images are caught by extension and by content (magic bytes), so a renamed JPEG fails too.
# Test images are made at run time (e.g. from scikit-image's bundled astronaut portrait);
# evaluation data stays in ../shared/data. The one exception: the README's screenshots of the
# web pages under docs/screenshots/ (small PNGs, checked to hold no face).
set -euo pipefail

cd "$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)"

MAX_BYTES=$((1024 * 1024))
BANNED_EXT_RE='\.(jpe?g|png|webp|heic|heif|gif|bmp|tiff?|npy|npz)$'
SCREENSHOT_RE='^docs/screenshots/[a-z0-9-]+\.png$'
MAX_SCREENSHOT_BYTES=$((300 * 1024))

paths=()
objects=()
while IFS= read -r -d '' entry; do
  meta=${entry%%$'\t'*}      # "<mode> <object> <stage>"
  path=${entry#*$'\t'}
  read -r mode object _ <<<"$meta"
  [[ $mode == 160000 ]] && continue   # submodule: not a file here
  paths+=("$path")
  objects+=("$object")
done < <(git ls-files --stage -z)

# Object sizes in one git call, in the same order as the paths.
sizes=()
if [[ ${#objects[@]} -gt 0 ]]; then
  mapfile -t sizes < <(printf '%s\n' "${objects[@]}" | git cat-file --batch-check='%(objectsize)')
fi

# First bytes of a tracked file's content, as hex.
# (head stops reading early, so git may die of SIGPIPE: that is expected, hence no pipefail.)
magic() (
  set +o pipefail
  git cat-file blob "$1" | head -c 16 | od -An -tx1 -v | tr -d ' \n'
)

bad=0
report() {
  printf 'check_no_images: %s: %s\n' "$1" "$2" >&2
  bad=1
}

shopt -s nocasematch
for i in "${!paths[@]}"; do
  path=${paths[$i]}
  size=${sizes[$i]}
  if [[ $path =~ $SCREENSHOT_RE ]]; then
    # README screenshots of the pages: PNG only, small, and (tests/test_docs_screenshots.py)
    # with no face in them.
    if (( size > MAX_SCREENSHOT_BYTES )); then
      report "$path" "screenshot larger than $MAX_SCREENSHOT_BYTES bytes ($size)"
    fi
    continue
  fi
  if [[ $path =~ $BANNED_EXT_RE ]]; then
    report "$path" "image or array file by extension"
    continue
  fi
  # uv.lock is text that grows with the dependency tree: it is exempt from the size cap only
  # (its content is still checked below).
  if (( size > MAX_BYTES )) && [[ $path != uv.lock ]]; then
    report "$path" "larger than 1 MiB ($size bytes)"
    continue
  fi
  (( size >= 8 )) || continue
  hex=$(magic "${objects[$i]}")
  case $hex in
    ffd8ff*) kind=JPEG ;;
    89504e470d0a1a0a*) kind=PNG ;;
    474946383?61*) kind=GIF ;;
    52494646????????57454250*) kind=WebP ;;
    49492a00* | 4d4d002a*) kind=TIFF ;;
    ????????66747970686569?*|????????667479706d6966?*|????????6674797061766966*) kind=HEIF/AVIF ;;
    934e554d5059*) kind="numpy array" ;;
    *) kind= ;;
  esac
  if [[ -n $kind ]]; then
    report "$path" "content is $kind"
  fi
done

if (( bad )); then
  echo "check_no_images: FAILED: remove these from git (git rm --cached PATH)." >&2
  exit 1
fi
echo "check_no_images: ok (${#paths[@]} tracked files, none an image, array or over 1 MiB)" >&2
