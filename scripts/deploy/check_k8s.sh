#!/usr/bin/env bash
# Validates k8s/ offline (no cluster): exits 1 on any finding, printing what it checked.
#
#   scripts/deploy/check_k8s.sh
#
# 0. scripts/deploy/dev_secrets.sh into a temporary directory: the Secrets (and the JWKS ConfigMap)
#    k8s/ references but does not hold, as a developer would apply them (k8s/dev-secrets.yaml of its
#    output). They go through steps 2 and 4 with k8s/, and step 5 checks the contract against them.
# 1. scripts/deploy/render_k8s.py --check: the generated ConfigMaps match their sources
#    (monitoring/**, dashboards/*.json).
# 2. kubernetes-validate --strict against the Kubernetes schemas of each version in
#    PIX_K8S_VERSIONS (default "1.30.0 1.37.0": the oldest release the manifests need, for the
#    StatefulSet pod-index label, and the newest the installed kubernetes-validate knows): an
#    unknown field fails, and so does a kind or apiVersion without a schema (kubernetes-validate
#    only warns about those), except KEDA's, checked in step 3.
# 3. check_keda.mjs: KEDA's ScaledObject and TriggerAuthentication documents against KEDA's CRD
#    schemas (@kubernetes-models/keda's .validate(), node), and every generated value read back
#    with a second YAML parser (js-yaml) equals its source file (render_k8s.py --sources).
# 4. render_k8s.py --lint --extra <the generated Secrets>: the project's rules (resources, probes,
#    securityContext, images, PDBs, Service selectors, NodePorts, Ingress backends, ConfigMap/Secret
#    references, no committed Secret, NetworkPolicy ports, KEDA keys and consumer groups, the
#    Prometheus jobs; the full list is printed).
# 5. secure_contract.py k8s: the secured configuration (every /run/secrets path mounted from a
#    generated Secret, Kafka SASL_SSL + SCRAM principals with credentials and ACLs, AMQPS users with
#    permissions, no plaintext listener nor amqp:// URL, the APIs on HTTPS with --auth jwt and HTTPS
#    probes, the Prometheus jobs and the Ingress over verified TLS, the saga's decision keys mounted
#    read-only (0400) only into their signer and verifier, no --allow-unsigned; its docstring lists
#    every rule).
#
# Tools: scripts/deploy/tools.sh (kubernetes-validate in .local/tools/venv, the node modules in
# .local/tools/node), promtool (Debian package prometheus).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
    pix_usage "$0"
    exit 0
fi

root="$(pix_root)"
cd "$root"
# render_k8s.py is imported below: leave no __pycache__ in scripts/deploy.
export PYTHONDONTWRITEBYTECODE=1
tools="${PIX_TOOLS:-$root/.local/tools}"
venv_python="$tools/venv/bin/python"
validator="$tools/venv/bin/kubernetes-validate"
node_modules="$tools/node/node_modules"
read -r -a k8s_versions <<<"${PIX_K8S_VERSIONS:-1.30.0 1.37.0}"

[[ -x "$validator" && -x "$venv_python" ]] || die "kubernetes-validate not found in $tools/venv: run scripts/deploy/tools.sh"
[[ -d "$node_modules/@kubernetes-models/keda" && -d "$node_modules/js-yaml" ]] \
    || die "@kubernetes-models/keda or js-yaml missing in $node_modules: run scripts/deploy/tools.sh"
command -v node >/dev/null 2>&1 || die "node not found: run scripts/deploy/tools.sh"

failures=0
fail() {
    warn "$*"
    failures=$((failures + 1))
}

mapfile -t manifests < <(find k8s -type f \( -name '*.yaml' -o -name '*.yml' \) | LC_ALL=C sort)
((${#manifests[@]} > 0)) || die "no manifests under k8s/"

# ---- 0. the development Secrets, as dev_secrets.sh makes them --------------------------------------
gen="$(mktemp -d "${TMPDIR:-/tmp}/pix-check-k8s.XXXXXX")"
trap 'rm -rf "$gen"' EXIT
step "development Secrets: scripts/deploy/dev_secrets.sh into a temporary directory"
if "$venv_python" scripts/deploy/dev_secrets.py ensure --dir "$gen/dev-secrets" --access owner --quiet; then
    generated="$gen/dev-secrets/k8s/dev-secrets.yaml"
    ok "$(grep -c '^kind:' "$generated") objects in k8s/dev-secrets.yaml of its output"
else
    die "dev_secrets.sh failed: the Secrets k8s/ references cannot be made"
fi

# ---- 1. generated manifests up to date --------------------------------------------------------------
step "generated ConfigMaps/Secrets match their sources (render_k8s.py --check)"
if python3 scripts/deploy/render_k8s.py --check; then
    ok "generated manifests are up to date"
else
    fail "stale or missing generated manifests (or a missing source file): see above"
fi

# ---- 2. Kubernetes schemas -------------------------------------------------------------------------
# KEDA's kinds are validated in step 3; any other kind without a schema is an error.
keda_kinds='keda\.sh/v1alpha1 .*kind (ScaledObject|TriggerAuthentication)|kind (ScaledObject|TriggerAuthentication) with api version keda\.sh/v1alpha1'
for version in "${k8s_versions[@]}"; do
    step "kubernetes-validate --strict -k $version on ${#manifests[@]} files and the generated Secrets"
    out="$("$validator" --strict --kubernetes-version "$version" "${manifests[@]}" "$generated" 2>&1)" && rc=0 || rc=$?
    passed="$(grep -c ' passed for resource ' <<<"$out" || true)"
    unknown="$(grep -i "couldn't find schema" <<<"$out" | grep -Ev "$keda_kinds" || true)"
    problems="$(grep -Ev ' passed for resource |^$' <<<"$out" | grep -Eiv "couldn't find schema" || true)"
    if ((rc != 0)) || [[ -n "$unknown" || -n "$problems" ]]; then
        [[ -z "$problems" ]] || printf '%s\n' "$problems" | sed 's/^/    /' >&2
        [[ -z "$unknown" ]] || printf '%s\n' "$unknown" | sed 's/^/    (no schema: a typo in kind or apiVersion?) /' >&2
        fail "kubernetes-validate -k $version: failures above (exit $rc)"
    else
        ok "$passed objects valid against Kubernetes $version (KEDA objects: next step)"
    fi
done

# ---- 3. KEDA CRDs, and a second YAML parser over the generated values --------------------------------
step "KEDA ScaledObject/TriggerAuthentication against KEDA's CRD schemas (@kubernetes-models/keda)"
sources_json="$(python3 scripts/deploy/render_k8s.py --sources)"
if PIX_NODE_MODULES="$node_modules" node scripts/deploy/check_keda.mjs "$sources_json" "${manifests[@]}"; then
    ok "KEDA objects valid; generated values parse back to their sources"
else
    fail "KEDA validation or js-yaml read-back failed: see above"
fi

# ---- 4. project rules ------------------------------------------------------------------------------
step "project rules (render_k8s.py --lint)"
if "$venv_python" scripts/deploy/render_k8s.py --lint --extra "$generated"; then
    ok "project rules hold"
else
    fail "project rules: see the problems above"
fi

# ---- 5. the secured configuration -------------------------------------------------------------------
step "secure contract (secure_contract.py k8s) against the generated Secrets"
if "$venv_python" scripts/deploy/secure_contract.py k8s --gen-dir "$gen/dev-secrets"; then
    ok "the secured configuration holds"
else
    fail "secure contract: see the FAIL lines above"
fi

if ((failures > 0)); then
    die "check_k8s: $failures check(s) failed"
fi
ok "check_k8s: all checks passed"
