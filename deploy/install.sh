#!/usr/bin/env bash
# Install, upgrade or remove auditcorr as a hardened systemd service.
#
#   sudo deploy/install.sh               install or upgrade (run it again at any time)
#   sudo deploy/install.sh --uninstall   remove all but the config and the state
#   deploy/install.sh --root DIR         install into DIR as if it were /
#                                        (an image being built, or a test)
#
# Layout: the virtual environment in /opt/auditcorr (dependencies pinned by
# constraints.txt), the config in /etc/auditcorr/config.toml (written once,
# kept on upgrade), the store in /var/lib/auditcorr, the unit, sysusers and
# tmpfiles snippets in /etc.  With --root (or DESTDIR) everything goes under
# that directory and systemctl is not called.  Store schema migrations run
# when the daemon starts, after a backup of the store.
set -euo pipefail

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    echo "options: --root DIR  --no-start  --uninstall  (PYTHON=python3.11 to pick the interpreter)"
}

SRC=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${DESTDIR:-}
PYTHON=${PYTHON:-python3}
ACTION=install
START=yes

while (($#)); do
    case $1 in
        --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
        --root=*) ROOT=${1#--root=}; shift ;;
        --uninstall) ACTION=uninstall; shift ;;
        --no-start) START=no; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
if [[ -n $ROOT ]]; then
    mkdir -p "$ROOT"
    ROOT=$(cd "$ROOT" && pwd)
fi

PREFIX=/opt/auditcorr
VENV=$ROOT$PREFIX
ETC=$ROOT/etc/auditcorr
CONFIG=$ETC/config.toml
UNIT=$ROOT/etc/systemd/system/auditcorr.service
SYSUSERS=$ROOT/etc/sysusers.d/auditcorr.conf
TMPFILES=$ROOT/etc/tmpfiles.d/auditcorr.conf

say() { echo "auditcorr: $*"; }
die() { echo "auditcorr: $*" >&2; exit 1; }

# systemctl only for the running system, and only when systemd runs it.
with_systemd() { [[ -z $ROOT && -d /run/systemd/system ]]; }

root_flag() { [[ -n $ROOT ]] && echo "--root=$ROOT"; true; }

# The numeric id of a group as the target system knows it (with --root, the
# host's /etc/group is the wrong one to ask).
group_id() { awk -F: -v name="$1" '$1 == name { print $3 }' "$ROOT/etc/group"; }

check_host() {
    [[ -n $ROOT || $EUID -eq 0 ]] || die "run as root (or with --root DIR)"
    command -v systemd-sysusers >/dev/null || die "systemd-sysusers not found: this needs a systemd host"
    command -v systemd-tmpfiles >/dev/null || die "systemd-tmpfiles not found: this needs a systemd host"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
        die "$PYTHON is not Python 3.11 or newer; install one and run with PYTHON=python3.11"
    "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null ||
        die "$PYTHON has no venv module (Debian/Ubuntu: apt-get install python3-venv)"
}

install_venv() {
    local wanted have=""
    wanted=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if [[ -x $VENV/bin/python ]]; then
        have=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' || true)
    fi
    if [[ $have != "$wanted" ]]; then
        [[ -z $have ]] || say "Python changed ($have -> $wanted): recreating $PREFIX"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    # Reinstall only when the source or the pins changed since the last run.
    local stamp
    stamp=$(cd "$SRC" && find pyproject.toml constraints.txt daemon connectors -type f \
        -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
    if [[ $(cat "$VENV/.source-stamp" 2>/dev/null) != "$stamp" ]]; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade \
            -c "$SRC/constraints.txt" "$SRC"
        echo "$stamp" >"$VENV/.source-stamp"
    fi
    if [[ -n $ROOT ]]; then
        # pip wrote the interpreter's path under ROOT into the scripts' first
        # line; inside the target system it is PREFIX.
        local script first
        for script in "$VENV"/bin/*; do
            [[ -f $script && ! -L $script ]] || continue
            IFS= read -r first <"$script" || true
            if [[ $first == "#!$VENV/bin/"* ]]; then
                sed -i "1s|^#!$VENV/bin/|#!$PREFIX/bin/|" "$script"
            fi
        done
    fi
    install -D -m 0644 "$SRC/config.toml" "$VENV/share/config.reference.toml"
}

install_system_files() {
    install -D -m 0644 "$SRC/deploy/systemd/auditcorr.service" "$UNIT"
    install -D -m 0644 "$SRC/deploy/systemd/auditcorr.sysusers" "$SYSUSERS"
    install -D -m 0644 "$SRC/deploy/systemd/auditcorr.tmpfiles" "$TMPFILES"
    # shellcheck disable=SC2046 # root_flag prints nothing or one word
    systemd-sysusers $(root_flag) "$SYSUSERS"
    # shellcheck disable=SC2046
    systemd-tmpfiles --create $(root_flag) "$TMPFILES"
}

install_config() {
    if [[ -e $CONFIG ]]; then
        say "keeping /etc/auditcorr/config.toml as it is"
        return
    fi
    install -m 0640 "$SRC/deploy/config.toml" "$CONFIG"
    chgrp "$(group_id auditcorr)" "$CONFIG"
    say "wrote /etc/auditcorr/config.toml: add your sources, then run 'auditcorr doctor'"
}

check_config() {
    local run=("$VENV/bin/python" -m daemon.cli check-config --config "$CONFIG")
    # On the real system, as the service user: proves it can read the config.
    [[ -n $ROOT ]] || run=(runuser -u auditcorr -- "${run[@]}")
    if ! "${run[@]}"; then
        die "the config has problems (listed above); fix $CONFIG and run install.sh again"
    fi
}

do_install() {
    check_host
    local was_active=no
    if with_systemd && systemctl is-active --quiet auditcorr; then
        was_active=yes
        say "stopping the running service for the upgrade"
        systemctl stop auditcorr
    fi
    install_venv
    install_system_files
    install_config
    check_config
    if with_systemd; then
        systemctl daemon-reload
        systemctl enable --quiet auditcorr
        if [[ $START == yes || $was_active == yes ]]; then
            systemctl start auditcorr
            say "service started: systemctl status auditcorr; journalctl -u auditcorr -f"
        fi
    fi
    say "installed $("$VENV/bin/python" -m daemon.cli --version)"
}

do_uninstall() {
    [[ -n $ROOT || $EUID -eq 0 ]] || die "run as root (or with --root DIR)"
    if with_systemd; then
        systemctl disable --now --quiet auditcorr 2>/dev/null || true
    fi
    rm -f "$UNIT" "$SYSUSERS" "$TMPFILES"
    rm -rf "$VENV"
    if with_systemd; then
        systemctl daemon-reload
    fi
    say "removed $PREFIX and the unit; kept /etc/auditcorr, /var/lib/auditcorr, /var/log/auditcorr and the auditcorr user"
}

case $ACTION in
    install) do_install ;;
    uninstall) do_uninstall ;;
esac
