# shellcheck shell=bash
# Sourced by scripts/serve, scripts/test and bench/run: installs what they need, idempotently.
#   - Debian packages named in $DEBIAN_PACKAGES (only as root; otherwise says what is missing)
#   - uv, pinned, in .tools/uv (a tiny virtual environment of its own)
#   - the project's locked virtual environment in .venv (uv sync --frozen: exactly what uv.lock says)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UV_VERSION="0.13.9"
UV="$REPO_ROOT/.tools/uv/bin/uv"
export UV_PYTHON_DOWNLOADS=never   # use the machine's Python (3.11+), never download one
export UV_PROJECT_ENVIRONMENT="$REPO_ROOT/.venv"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_debian_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        log "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
        return 1
    fi
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_python() {
    if ! python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        ensure_debian_packages python3 python3-venv
    fi
    # Debian splits ensurepip out of python3; a venv without it cannot bootstrap pip.
    python3 -c 'import ensurepip' 2>/dev/null || ensure_debian_packages python3-venv
}

ensure_uv() {
    if [ -x "$UV" ] && [ "$("$UV" --version | cut -d' ' -f2)" = "$UV_VERSION" ]; then
        return 0
    fi
    ensure_python
    log "installing uv $UV_VERSION into .tools/uv"
    rm -rf "$REPO_ROOT/.tools/uv"
    python3 -m venv "$REPO_ROOT/.tools/uv"
    "$REPO_ROOT/.tools/uv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
}

ensure_venv() {
    # $@: extra arguments for uv sync (for example --no-group bench)
    ensure_uv
    log "syncing .venv with uv.lock"
    "$UV" sync --frozen --quiet --python python3 "$@"
}

ensure_scanners() {
    # Python tools, each locked in tools/<name>/uv.lock, in a virtual environment of its own (.tools/<name>): the
    # scanners (hadolint, trivy, checkov, argocd-source-lint) and the network analyzer (nca), whose pins conflict.
    # $@: which of them (default: both).
    ensure_uv
    local name names=("$@")
    [ ${#names[@]} -gt 0 ] || names=(scanners network-analyzer)
    for name in "${names[@]}"; do
        log "syncing .tools/$name with tools/$name/uv.lock"
        UV_PROJECT_ENVIRONMENT="$REPO_ROOT/.tools/$name" \
            "$UV" sync --frozen --quiet --python python3 --project "$REPO_ROOT/tools/$name"
    done
}

ensure_node_tools() {
    # The npm tools, each locked in its package-lock.json: the custom-resource schemas `gitops check` validates
    # with (tools/crd-schemas) and tekton-lint (tools/tekton-lint). $@: which of them (default: both).
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        ensure_debian_packages nodejs npm
    fi
    local name dir names=("$@")
    [ ${#names[@]} -gt 0 ] || names=(crd-schemas tekton-lint)
    for name in "${names[@]}"; do
        dir="$REPO_ROOT/tools/$name"
        if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
            log "installing ${dir#"$REPO_ROOT"/} from package-lock.json"
            (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        fi
    done
}

ensure_expr_eval() {
    # tools/expr-eval: Argo CD's trigger-expression engine (expr), built from Debian's Go packages, offline.
    ensure_debian_packages golang-go golang-github-antonmedv-expr-dev
    local binary="$REPO_ROOT/.tools/bin/expr-eval" source="$REPO_ROOT/tools/expr-eval/main.go"
    if [ ! -x "$binary" ] || [ "$source" -nt "$binary" ]; then
        log "building .tools/bin/expr-eval"
        mkdir -p "$REPO_ROOT/.tools/bin"
        (cd "$REPO_ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$REPO_ROOT/.cache/go-build" \
            go build -o "$binary" ./tools/expr-eval)
    fi
}

# ensure_prometheus3: Prometheus 3 and Alertmanager 0.33 from Debian sid into .tools/prometheus3, without root.
# shellcheck source=scripts/prometheus3.sh
source "$REPO_ROOT/scripts/prometheus3.sh"
