#!/usr/bin/env bash
# The package's life on this machine, for real, with dpkg: install, an admin's edit of the config, the
# daemon started from the installed files as vuoro.service starts it, a ticket issued through the API;
# an upgrade to a higher version that keeps the edited config and the database (the ticket is still
# served); `dpkg --remove` (config, database and user stay); `dpkg --purge` (all of them go).
#
#   tests/package/lifecycle.sh PACKAGE.deb      (tests/package/check.sh runs it after its own checks)
#
# Needs root (CI runs as root; otherwise it says it is skipped and exits 0) and a machine without a vuoro
# of its own: no vuoro package, user, group, /etc/vuoro or /var/lib/vuoro (otherwise it fails, changing
# nothing; VUORO_SKIP_LIFECYCLE=1 skips it). No systemd needs to run: postinst enables the unit with
# deb-systemd-helper (a symlink), deb-systemd-invoke starts nothing, and this script runs the unit's
# ExecStartPre and ExecStart itself as the unit's user, in its working directory, with its umask, on
# 127.0.0.1 with a port of the system's choosing. Whatever happens, the trap purges the package and removes
# what it left, so the machine is as it was. Every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf '\n== package lifecycle: %s\n' "$*"; }
fail() {
  echo "package lifecycle FAILED: $*" >&2
  exit 1
}

deb="${1:?usage: tests/package/lifecycle.sh PACKAGE.deb}"
[ -f "$deb" ] || fail "$deb is not a file"
if [ "${VUORO_SKIP_LIFECYCLE:-}" = 1 ]; then
  say "SKIPPED (VUORO_SKIP_LIFECYCLE=1): the package was not installed for real"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  say "SKIPPED: installing the package for real needs root (CI runs it as root)"
  exit 0
fi

unit=/usr/lib/systemd/system/vuoro.service
wants=/etc/systemd/system/multi-user.target.wants/vuoro.service
conf=/etc/vuoro/vuoro.toml
state=/var/lib/vuoro

status() { dpkg-query -W -f='${db:Status-Status}' vuoro 2>/dev/null || true; }
# What an installed (or half-removed) vuoro leaves on a machine; each line names one thing present.
traces() {
  local s
  s="$(status)"
  [ -z "$s" ] || [ "$s" = not-installed ] || echo "the vuoro package (dpkg status: $s)"
  getent passwd vuoro >/dev/null && echo "the user vuoro"
  getent group vuoro >/dev/null && echo "the group vuoro"
  local f
  for f in /etc/vuoro $state /usr/bin/vuoro $unit /etc/systemd/system/vuoro.service $wants \
    /var/lib/systemd/deb-systemd-helper-enabled/vuoro.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/vuoro.service \
    /var/lib/systemd/deb-systemd-helper-masked/vuoro.service; do
    if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi
  done
}

before="$(traces)"
[ -z "$before" ] || fail "this machine has a vuoro of its own, which this check would purge:
$before
Run it on a machine without vuoro, or skip it with VUORO_SKIP_LIFECYCLE=1."

work="$(mktemp -d)"
pid=""
# Stops the daemon started by start_daemon: SIGTERM to the daemon itself (runuser's child), then waits for
# runuser, which exits with the daemon's status. Sets stopped_rc.
stopped_rc=""
stop_daemon() {
  [ -n "$pid" ] || return 0
  local child
  child="$(pgrep -P "$pid" || true)"
  if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    [ -n "$child" ] && kill -KILL "$child" 2>/dev/null
    kill -KILL "$pid" 2>/dev/null || true
  fi
  stopped_rc=0
  wait "$pid" || stopped_rc=$?
  pid=""
}
cleanup() {
  local rc=$?
  stop_daemon || true
  if [ -n "$(traces)" ]; then
    dpkg --purge vuoro >"$work/cleanup.log" 2>&1 || cat "$work/cleanup.log" >&2
    # What a failed or broken maintainer script may have left.
    getent passwd vuoro >/dev/null && { deluser --quiet --system vuoro >/dev/null 2>&1 || true; }
    getent group vuoro >/dev/null && { delgroup --quiet --system vuoro >/dev/null 2>&1 || true; }
    rm -rf /etc/vuoro "$state"
    rm -f /etc/systemd/system/vuoro.service "$wants" \
      /var/lib/systemd/deb-systemd-helper-enabled/vuoro.service.dsh-also \
      /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/vuoro.service \
      /var/lib/systemd/deb-systemd-helper-masked/vuoro.service
    local left
    left="$(traces)"
    if [ -n "$left" ]; then
      echo "package lifecycle: the cleanup could not remove: $left (remove them by hand: dpkg --purge vuoro)" >&2
      rc=1
    fi
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# Runs the installed unit's ExecStartPre and ExecStart as systemd would: as User=vuoro, in
# WorkingDirectory=/var/lib/vuoro (StateDirectory=vuoro: created 0750 and owned by vuoro), with UMask=0027;
# only the listen address differs (127.0.0.1 and a free port). Sets pid and base.
start_daemon() {
  local pre line
  pre="$(sed -n 's/^ExecStartPre=//p' "$unit")"
  line="$(sed -n 's/^ExecStart=//p' "$unit")"
  [[ "$line" == *" --listen 127.0.0.1:8080"* ]] || fail "the unit's ExecStart has no --listen 127.0.0.1:8080: $line"
  line="${line/--listen 127.0.0.1:8080/--listen 127.0.0.1:0}"
  local -a pre_cmd cmd
  read -ra pre_cmd <<<"$pre"
  read -ra cmd <<<"$line"
  install -d -m 0750 -o vuoro -g vuoro "$state"
  (cd "$state" && umask 0027 && runuser -u vuoro -- "${pre_cmd[@]}") ||
    fail "ExecStartPre failed as the vuoro user: ${pre_cmd[*]}"
  : >"$work/stdout"
  : >"$work/stderr"
  (cd "$state" && umask 0027 && exec runuser -u vuoro -- "${cmd[@]}" >"$work/stdout" 2>"$work/stderr") &
  pid=$!
  base=""
  for _ in $(seq 300); do
    base="$(sed -n 's/^Vuoro listening on \(http:[^ ]*\)$/\1/p' "$work/stdout")"
    [ -n "$base" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$base" ] || {
    cat "$work/stderr" >&2
    fail "the installed daemon did not start: ${cmd[*]}"
  }
  curl -fsS --max-time 5 "$base/readyz" >/dev/null || fail "/readyz did not answer once the daemon said it listens"
  local owner
  owner="$(ps -o user= -p "$(pgrep -P "$pid")")"
  [ "$owner" = vuoro ] || fail "the daemon runs as $owner, not vuoro"
  echo "the installed daemon serves at $base as $owner"
}

# A field ($2) of the JSON object in a file ($1).
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

say "dpkg -i $(basename "$deb")"
dpkg -i "$deb" </dev/null
version="$(dpkg-query -W -f='${Version}' vuoro)"
[ "$(status)" = installed ] || fail "dpkg status is $(status), not installed"
[ "$version" = "$(dpkg-deb -f "$deb" Version)" ] || fail "installed version $version is not the package's"

say "what postinst did"
getent passwd vuoro | tee "$work/passwd"
IFS=: read -r _ _ uid gid _ home shell <"$work/passwd"
[ "$uid" -lt 1000 ] || fail "vuoro is not a system user (uid $uid)"
[ "$home" = "$state" ] || fail "vuoro's home is $home, not $state"
[ "$shell" = /usr/sbin/nologin ] || fail "vuoro's shell is $shell, not /usr/sbin/nologin"
[ "$(getent group vuoro | cut -d: -f3)" = "$gid" ] || fail "vuoro's group is not its own group vuoro"
[ "$(stat -c '%a %U %G' "$conf")" = "640 root vuoro" ] ||
  fail "$conf is $(stat -c '%a %U %G' "$conf"), not 640 root vuoro"
dpkg-query -W -f='${Conffiles}\n' vuoro | grep -q "^ $conf " || fail "$conf is not a conffile of the installed package"
{ [ -L "$wants" ] && [ "$(readlink -f "$wants")" = "$(readlink -f "$unit")" ]; } ||
  fail "the unit is not enabled ($wants should link to $unit)"
[ "$(stat -c '%a %U %G' "$state")" = "750 vuoro vuoro" ] ||
  fail "$state is $(stat -c '%a %U %G' "$state"), not 750 vuoro vuoro"
/usr/bin/vuoro --version | grep -qx "vuoro $(dpkg-query -W -f='${source:Upstream-Version}' vuoro)" ||
  fail "/usr/bin/vuoro --version is not the package's version"
man -w vuoro | grep -qx /usr/share/man/man1/vuoro.1.gz || fail "man -w vuoro does not find the installed page"
man -w vuoro-serve | grep -qx /usr/share/man/man1/vuoro-serve.1.gz || fail "man -w vuoro-serve does not find its page"
MANWIDTH=80 man vuoro 2>/dev/null | grep -q 'vuoro-serve(1)' || fail "man vuoro does not name vuoro-serve(1)"
echo "user vuoro ($uid:$gid), $state 750 vuoro:vuoro, $conf 640 root:vuoro and a conffile, $wants -> $unit, man vuoro"

say "the admin's edit of $conf: a kiosk token and always-open hours"
# As docs/operations.md tells: a token for the kiosk, its SHA-256 in the config. The site is made always
# open so that a ticket can be issued at any hour the check runs.
token="$(head -c 32 /dev/urandom | sha256sum | cut -d' ' -f1)"
hash="$(printf %s "$token" | sha256sum | cut -d' ' -f1)"
sed -i -e "/^id = \"kiosk-1\"/,/^token_sha256/ s/^token_sha256 = .*/token_sha256 = \"$hash\"/" \
  -e 's/^always_open = false$/always_open = true/' "$conf"
echo "# Edited by the admin (tests/package/lifecycle.sh)." >>"$conf"
{ grep -q "$hash" "$conf" && grep -q '^always_open = true$' "$conf"; } || fail "the edit did not take"
edited="$(sha256sum <"$conf")"

say "starting the installed daemon as vuoro.service would, and issuing a ticket"
start_daemon
curl -fsS --max-time 5 -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"service": "general", "lang": "fi", "priority": "normal"}' \
  "$base/api/v1/sites/main/tickets" >"$work/ticket.json" || fail "the kiosk could not issue a ticket"
number="$(field "$work/ticket.json" number)"
ticket="$(field "$work/ticket.json" token)"
[ "$(field "$work/ticket.json" state)" = waiting ] || fail "the ticket is not waiting: $(cat "$work/ticket.json")"
echo "ticket $number issued"
stop_daemon
[ "$stopped_rc" = 0 ] || {
  cat "$work/stderr" >&2
  fail "the daemon exited with $stopped_rc on SIGTERM"
}
[ -f "$state/vuoro.sqlite" ] || fail "no database in $state"
[ "$(stat -c '%U %G' "$state/vuoro.sqlite")" = "vuoro vuoro" ] || fail "the database is not vuoro's"
[ "$(stat -c '%a' "$state/vuoro.sqlite")" = 640 ] || fail "the database is $(stat -c %a "$state/vuoro.sqlite"), not 640 (UMask=0027)"

say "upgrade: a package of a higher version, from the same build"
upgrade="$work/vuoro_upgrade.deb"
# cargo-deb deletes the package's other versions in target/debian: the first package is put back after.
cp -p "$deb" "$work/first.deb"
cargo deb -p vuoro --no-build --strip --deb-version "$version+test2" --output "$upgrade" >"$work/cargo-deb.log" 2>&1 || {
  cat "$work/cargo-deb.log" >&2
  fail "cargo deb could not build the upgrade package"
}
[ -f "$deb" ] || cp -p "$work/first.deb" "$deb"
dpkg --compare-versions "$(dpkg-deb -f "$upgrade" Version)" gt "$version" || fail "the upgrade is not a higher version"
# The example config is the same in both, so dpkg keeps the edited one without asking (when the example
# changed too, dpkg asks; there is no terminal here, so a question would fail the run).
dpkg -i "$upgrade" </dev/null 2>&1 | tee "$work/upgrade.log"
[ "$(dpkg-query -W -f='${Version}' vuoro)" = "$version+test2" ] || fail "the upgrade was not installed"
[ "$(status)" = installed ] || fail "dpkg status after the upgrade is $(status)"
[ "$(sha256sum <"$conf")" = "$edited" ] || fail "the upgrade changed the admin's $conf"
{ [ ! -e "$conf.dpkg-dist" ] && [ ! -e "$conf.dpkg-old" ]; } || fail "the upgrade left $conf.dpkg-dist or .dpkg-old"
[ "$(stat -c '%a %U %G' "$conf")" = "640 root vuoro" ] || fail "the upgrade changed $conf's mode or group"
[ "$(getent passwd vuoro | cut -d: -f3)" = "$uid" ] || fail "the upgrade changed the vuoro user"
[ -L "$wants" ] || fail "the upgrade disabled the unit"

say "the upgraded daemon on the same data folder serves the ticket"
start_daemon
curl -fsS --max-time 5 "$base/api/v1/tickets/$ticket" >"$work/after.json" || fail "ticket $number is gone after the upgrade"
[ "$(field "$work/after.json" number)" = "$number" ] || fail "the ticket's number changed: $(cat "$work/after.json")"
[ "$(field "$work/after.json" state)" = waiting ] || fail "the ticket is not waiting: $(cat "$work/after.json")"
echo "ticket $number still waiting"
stop_daemon
[ "$stopped_rc" = 0 ] || fail "the upgraded daemon exited with $stopped_rc on SIGTERM"

say "dpkg --remove: the program goes, the config, the database and the user stay"
dpkg --remove vuoro </dev/null
[ "$(status)" = config-files ] || fail "dpkg status after remove is $(status), not config-files"
{ [ ! -e /usr/bin/vuoro ] && [ ! -e "$unit" ]; } || fail "remove left /usr/bin/vuoro or the unit"
[ "$(sha256sum <"$conf")" = "$edited" ] || fail "remove changed or removed $conf"
[ -f "$state/vuoro.sqlite" ] || fail "remove removed the database"
getent passwd vuoro >/dev/null || fail "remove removed the vuoro user"

say "dpkg --purge: the config, the database, the user and the unit's links go"
dpkg --purge vuoro </dev/null
left="$(traces)"
[ -z "$left" ] || fail "purge left: $left"
say "ok: installed, served a ticket, upgraded keeping the config and the data, removed, purged"
