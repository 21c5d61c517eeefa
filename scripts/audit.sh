#!/usr/bin/env bash
# Supply-chain checks: known vulnerabilities in the locked dependencies (pip-audit), a CycloneDX
# SBOM of the environment, and a secret scan of the tracked files (detect-secrets).
#
#   bash scripts/audit.sh            # what CI runs (.ci/run), from the repository root
#
# Outputs (git-ignored, not committed): build/audit/requirements.txt (the lock, exported),
# build/audit/pip-audit.json, build/sbom.cdx.json (CycloneDX 1.6 JSON), build/audit/secrets.json.
#
# Policy (docs/threat-model.md, "Supply chain"):
#   - a known vulnerability in a locked package                 -> FAIL (exit 1)
#   - a new secret candidate not in .secrets.baseline           -> FAIL (exit 1)
#   - the SBOM cannot be produced                               -> FAIL (exit 1)
#   - no vulnerability service answers (offline sandbox, flaky  -> WARNING (exit 0); nothing was
#     network), so no package could be audited                     audited, and the log says so.
#     FACEPROOF_AUDIT_STRICT=1 turns this into a failure (for release pipelines).
# pip-audit asks OSV first (api.osv.dev), then PyPI's JSON API (`/pypi/<name>/<version>/json`).
# A package either service does not know (a skip) is counted and reported, never silently passed.
#
# The SBOM alone, by hand:
#   uv run cyclonedx-py environment --pyproject pyproject.toml --output-reproducible \
#       --of JSON -o build/sbom.cdx.json .venv
# Accepting a secret-scan finding that is not a secret: the failing run prints the entry as
# JSON; add it under its file in .secrets.baseline with "is_secret": false and a "why" (review
# it like code). Do not regenerate the baseline with `detect-secrets scan --baseline`: that
# drops every "why" (and the entries of files not tracked yet).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=build/audit
mkdir -p "$out"
status=0
say() { printf 'audit: %s\n' "$*" >&2; }

# --- 1. pip-audit against uv.lock ---------------------------------------------------------------
# Every dependency group of the lock (runtime, dev, bench), exact pins; packages behind
# `sys_platform == 'never'` overrides are never installed and pip-audit skips them by marker.
uv export --frozen --format requirements-txt --all-groups --no-emit-project --no-hashes \
  --no-header --no-annotate --quiet -o "$out/requirements.txt"

# Is the service there at all? One request, 10 s, so an offline run costs seconds, not minutes
# of retries. PyPI is probed at the per-version JSON endpoint pip-audit uses (a mirror may serve
# only the per-project one).
probe() {
  uv run --quiet python - "$1" "$out/requirements.txt" <<'PROBE'
import re
import sys
import urllib.request

service, requirements = sys.argv[1], sys.argv[2]
text = open(requirements, encoding="utf-8").read()
pin = re.search(r"^([A-Za-z0-9_.-]+)==([^ ;]+)", text, re.M)
assert pin is not None, "no pinned requirement"
if service == "osv":
    body = '{"package": {"name": "%s", "ecosystem": "PyPI"}, "version": "%s"}' % (pin[1], pin[2])
    request = urllib.request.Request(
        "https://api.osv.dev/v1/query", data=body.encode(), method="POST"
    )
else:
    request = urllib.request.Request(f"https://pypi.org/pypi/{pin[1]}/{pin[2]}/json")
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # DNS, TLS, HTTP errors: the service is not usable from here
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(1)
PROBE
}

audit_ok=0
for service in osv pypi; do
  rm -f "$out/pip-audit.json"
  if ! probe "$service" 2>"$out/probe-$service.log"; then
    say "pip-audit ($service): service unreachable ($(tail -n 1 "$out/probe-$service.log"))"
    continue
  fi
  # --disable-pip --no-deps: audit exactly these pins, resolve nothing, install nothing.
  # pip-audit exits 1 both for "vulnerabilities found" and for errors: the JSON decides.
  timeout 300 uv run --quiet pip-audit -r "$out/requirements.txt" --disable-pip --no-deps \
    --vulnerability-service "$service" --progress-spinner off --timeout 15 \
    --format json -o "$out/pip-audit.json" 2>"$out/pip-audit-$service.log" || true
  if [[ ! -s $out/pip-audit.json ]]; then
    say "pip-audit ($service): no result ($(tail -n 1 "$out/pip-audit-$service.log"))"
    continue
  fi
  verdict=$(uv run --quiet python - "$out/pip-audit.json" <<'EOF'
import json
import sys

deps = json.load(open(sys.argv[1], encoding="utf-8"))["dependencies"]
skipped = [d["name"] for d in deps if d.get("skip_reason")]
vulnerable = [
    f"{d['name']}=={d['version']}: " + ", ".join(v["id"] for v in d["vulns"])
    for d in deps
    if d.get("vulns")
]
for line in vulnerable:
    print(f"VULNERABLE {line}", file=sys.stderr)
audited = len(deps) - len(skipped)
print(f"{audited} {len(skipped)} {len(vulnerable)}")
EOF
)
  read -r audited skipped vulnerable <<<"$verdict"
  say "pip-audit ($service): $audited packages audited, $skipped not known to the service, $vulnerable vulnerable"
  if [[ $vulnerable -gt 0 ]]; then
    say "FAIL: known vulnerabilities in locked dependencies (see $out/pip-audit.json)"
    status=1
    audit_ok=1
    break
  fi
  if [[ $audited -gt 0 ]]; then
    audit_ok=1
    break
  fi
done
if [[ $audit_ok -eq 0 ]]; then
  say "WARNING: no vulnerability service answered (OSV and PyPI unreachable or unhelpful from here):"
  say "WARNING: the dependencies were NOT audited in this run"
  if [[ ${FACEPROOF_AUDIT_STRICT:-0} == 1 ]]; then
    status=1
  fi
fi

# --- 2. CycloneDX SBOM of the synced environment (offline) --------------------------------------
if uv run --quiet cyclonedx-py environment --pyproject pyproject.toml --output-reproducible \
  --of JSON -o build/sbom.cdx.json .venv 2>"$out/sbom.log"; then
  components=$(uv run --quiet python -c \
    'import json,sys; print(len(json.load(open(sys.argv[1]))["components"]))' build/sbom.cdx.json)
  say "SBOM: build/sbom.cdx.json ($components components, CycloneDX JSON)"
else
  say "FAIL: cyclonedx-py could not write the SBOM: $(tail -n 1 "$out/sbom.log")"
  status=1
fi

# --- 3. secret scan of the tracked files --------------------------------------------------------
# A fresh scan (line numbers change as files change) compared with the reviewed baseline by
# file, type and hashed value: anything new fails.
mapfile -t tracked < <(git ls-files -- . ':!:.secrets.baseline')
uv run --quiet detect-secrets scan "${tracked[@]}" >"$out/secrets.json"
if ! uv run --quiet python - .secrets.baseline "$out/secrets.json" <<'EOF'; then
import json
import sys

def findings(path: str) -> dict[tuple[str, str, str], dict[str, object]]:
    results = json.load(open(path, encoding="utf-8"))["results"]
    return {
        (name, s["type"], s["hashed_secret"]): s
        for name, secrets in results.items()
        for s in secrets
    }

baseline = json.load(open(sys.argv[1], encoding="utf-8"))["results"]
unexplained = [
    f"{name}:{s['line_number']}"
    for name, secrets in baseline.items()
    for s in secrets
    if s.get("is_secret") is not False or not s.get("why") or s["why"].startswith("TODO")
]
scanned = findings(sys.argv[2])
new = sorted(set(scanned) - set(findings(sys.argv[1])))
for key in new:
    entry = {**scanned[key], "is_secret": False, "why": "TODO: why this is not a secret"}
    print(f"audit: NEW secret candidate: {json.dumps(entry)}", file=sys.stderr)
for where in unexplained:
    print(f"audit: baseline entry without is_secret=false and a why: {where}", file=sys.stderr)
print(f"audit: secret scan: {len(new)} new, baseline {len(findings(sys.argv[1]))}", file=sys.stderr)
sys.exit(1 if new or unexplained else 0)
EOF
  say "FAIL: secret scan (see $out/secrets.json and .secrets.baseline)"
  status=1
fi

exit $status
