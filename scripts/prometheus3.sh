# shellcheck shell=bash
# Sourced by scripts/bootstrap.sh (or on its own): ensure_prometheus3 puts Prometheus 3 and a matching Alertmanager,
# Debian's own builds from the newest suite that has them (sid), into .tools/prometheus3, idempotently:
#   .tools/prometheus3/usr/bin/{prometheus,promtool,prometheus-alertmanager,amtool}
# Bookworm's packages (the machine's /usr/bin/promtool) stay Prometheus 2.42 and Alertmanager 0.25; the cluster
# runs 3.x. Nothing on the system changes: apt runs with a private configuration, source list and state of its own
# (in a temporary directory, removed afterwards), fetches only the .deb files with `apt-get download`, and
# dpkg-deb unpacks them here. Root is not needed. The archive's signature is checked as for any apt source, with
# /usr/share/keyrings/debian-archive-keyring.gpg (bookworm's keyring has the keys that sign sid: the 12/bookworm
# and 13/trixie automatic signing keys).
# Knobs: PROMETHEUS3_SUITES (default "sid"; apt takes the newest version among them), PROMETHEUS3_MIRROR.
set -euo pipefail

: "${REPO_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
declare -F log >/dev/null || log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

PROMETHEUS3_MAJOR=3
PROMETHEUS3_DIR="$REPO_ROOT/.tools/prometheus3"
PROMETHEUS3_BIN="$PROMETHEUS3_DIR/usr/bin"
PROMETHEUS3_TEMPLATES="$PROMETHEUS3_DIR/usr/share/prometheus/alertmanager"   # Alertmanager's own default.tmpl
PROMETHEUS3_SUITES="${PROMETHEUS3_SUITES:-sid}"
PROMETHEUS3_MIRROR="${PROMETHEUS3_MIRROR:-http://deb.debian.org/debian}"
PROMETHEUS3_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

_prometheus3_installed() {
    # True when all four binaries are there and promtool reports the expected major version.
    local tool
    for tool in prometheus promtool prometheus-alertmanager amtool; do
        [ -x "$PROMETHEUS3_BIN/$tool" ] || return 1
    done
    local version
    version="$("$PROMETHEUS3_BIN/promtool" --version 2>/dev/null)" || return 1
    [[ "$version" == "promtool, version $PROMETHEUS3_MAJOR."* ]]
}

_prometheus3_where() {
    local prometheus alertmanager
    read -r _ _ prometheus _ < <("$PROMETHEUS3_BIN/prometheus" --version 2>&1) || true
    read -r _ _ alertmanager _ < <("$PROMETHEUS3_BIN/prometheus-alertmanager" --version 2>&1) || true
    log "Prometheus $prometheus and Alertmanager $alertmanager in $PROMETHEUS3_BIN:" \
        "prometheus promtool prometheus-alertmanager amtool"
    # Debian's Alertmanager reads its default notification templates from a path compiled in, not from beside the
    # binary: /usr/share/prometheus/alertmanager/default.tmpl, which here is bookworm's 0.25 one (or missing).
    # With 0.25's, templates added since (slack.default.color, ...) are undefined and every field rendered after the
    # first failing one comes out empty: Slack messages lose channel, username and color. Without the file,
    # Alertmanager refuses every config. promtool, amtool and prometheus are not affected.
    local system_templates=/usr/share/prometheus/alertmanager/default.tmpl
    if ! cmp -s "$PROMETHEUS3_TEMPLATES/default.tmpl" "$system_templates"; then
        if [ -e "$system_templates" ]; then
            log "note: prometheus-alertmanager $alertmanager loads the older $system_templates; for its own, add to" \
                "its config: templates: [\"$PROMETHEUS3_TEMPLATES/*.tmpl\"]"
        else
            log "note: prometheus-alertmanager $alertmanager loads no config without $system_templates" \
                "(Debian's prometheus-alertmanager package provides it)"
        fi
    fi
}

ensure_prometheus3() {
    if _prometheus3_installed; then
        _prometheus3_where
        return 0
    fi
    local tool
    for tool in apt-get apt-cache apt-config dpkg-deb; do
        command -v "$tool" >/dev/null 2>&1 || { log "ensure_prometheus3 needs $tool (Debian's apt and dpkg)"; return 1; }
    done
    if [ ! -r "$PROMETHEUS3_KEYRING" ]; then
        if ! declare -F ensure_debian_packages >/dev/null; then
            log "missing $PROMETHEUS3_KEYRING (Debian's debian-archive-keyring package)"
            return 1
        fi
        ensure_debian_packages debian-archive-keyring
    fi

    log "fetching Prometheus $PROMETHEUS3_MAJOR.x and Alertmanager from Debian $PROMETHEUS3_SUITES into .tools/prometheus3"
    # Under the system's temporary directory, not the repository: as root, apt fetches as its unprivileged _apt
    # user, which must be able to reach the lists and archives directories, and a checkout can sit below a
    # directory only its owner may enter (a CI workspace made by mktemp -d, for one).
    local state
    state="$(mktemp -d "${TMPDIR:-/tmp}/prometheus3-apt.XXXXXX")"
    chmod 755 "$state"
    mkdir -p "$state/etc/apt/apt.conf.d" "$state/etc/apt/preferences.d" "$state/etc/apt/sources.list.d" \
        "$state/var/lib/apt/lists/partial" \
        "$state/var/cache/apt/archives/partial" "$state/debs"
    : >"$state/status"   # an empty dpkg database: apt here knows nothing of what the system has installed
    cat >"$state/etc/apt/sources.list.d/prometheus3.sources" <<EOF
Types: deb
URIs: $PROMETHEUS3_MIRROR
Suites: $PROMETHEUS3_SUITES
Components: main
Signed-By: $PROMETHEUS3_KEYRING
EOF
    # APT_CONFIG is read before anything else: with Dir moved, apt reads none of /etc/apt (no apt.conf.d, no
    # sources, no preferences, no hooks such as APT::Update::Post-Invoke) and writes only under $state. From the
    # machine's own configuration only how it reaches the archive is kept: proxies, retries, and whether Release
    # files must be fresh (a machine served a frozen snapshot of the archive turns Check-Valid-Until off; the
    # signature is checked all the same).
    {
        printf 'Dir "%s/";\n' "$state"
        printf 'Dir::State::status "%s/status";\n' "$state"
        printf 'Acquire::Languages "none";\n'
        printf 'Acquire::GzipIndexes "true";\n'
        local key
        for key in Acquire::Check-Valid-Until Acquire::Check-Date Acquire::Max-ValidTime Acquire::Retries \
            Acquire::ForceIPv4 Acquire::ForceIPv6 Acquire::http::Proxy Acquire::https::Proxy \
            Acquire::http::Proxy-Auto-Detect; do
            env -u APT_CONFIG apt-config dump --no-empty --format '%f "%v";%n' "$key"
        done
    } >"$state/apt.conf"
    if [ "$(id -u)" -eq 0 ] && id -u _apt >/dev/null 2>&1; then
        chown -R _apt "$state/var" "$state/debs"   # so that apt's downloads as root stay sandboxed as its _apt user
    fi

    local apt_output
    if ! apt_output="$(APT_CONFIG="$state/apt.conf" apt-get -q update 2>&1)" \
        || grep -q '^[EW]:' <<<"$apt_output"; then
        printf '%s\n' "$apt_output" >&2
        log "apt-get update of Debian $PROMETHEUS3_SUITES failed (state kept in $state)"
        return 1
    fi
    local candidate
    candidate="$(APT_CONFIG="$state/apt.conf" apt-cache policy prometheus | sed -n 's/^ *Candidate: //p')"
    case "$candidate" in
        "$PROMETHEUS3_MAJOR".*) ;;
        *)
            log "Debian $PROMETHEUS3_SUITES offers prometheus '${candidate:-none}', not $PROMETHEUS3_MAJOR.x"
            return 1
            ;;
    esac
    # sid packages promtool on its own (bookworm's prometheus package had it inside).
    local packages=(prometheus prometheus-alertmanager)
    if [ -n "$(APT_CONFIG="$state/apt.conf" apt-cache policy promtool | sed -n 's/^ *Candidate: \([0-9]\)/\1/p')" ]; then
        packages+=(promtool)
    fi
    (cd "$state/debs" && APT_CONFIG="$state/apt.conf" apt-get -q=2 download "${packages[@]}")

    local staging="$PROMETHEUS3_DIR.new" deb
    rm -rf "$staging"
    mkdir -p "$staging"
    for deb in "$state"/debs/*.deb; do
        dpkg-deb -x "$deb" "$staging"
        # shellcheck disable=SC2016  # dpkg-deb's format, not the shell's
        dpkg-deb --show --showformat='${Package} ${Version}\n' "$deb" >>"$staging/VERSIONS"
    done
    printf 'from %s %s\n' "$PROMETHEUS3_MIRROR" "$PROMETHEUS3_SUITES" >>"$staging/VERSIONS"
    rm -rf "$PROMETHEUS3_DIR"
    mv "$staging" "$PROMETHEUS3_DIR"
    rm -rf "$state"

    # They are Go programs linked only against libc (GLIBC_2.34 at most): they run on bookworm. Prove it.
    for tool in prometheus promtool prometheus-alertmanager amtool; do
        if ! "$PROMETHEUS3_BIN/$tool" --version >/dev/null 2>&1; then
            log "$PROMETHEUS3_BIN/$tool does not run here:"
            "$PROMETHEUS3_BIN/$tool" --version >&2 || true
            return 1
        fi
    done
    _prometheus3_installed || { log "promtool in ${PROMETHEUS3_BIN#"$REPO_ROOT"/} is not $PROMETHEUS3_MAJOR.x"; return 1; }
    _prometheus3_where
}
