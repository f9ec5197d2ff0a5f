#!/usr/bin/env bash
# Builds the Debian package (cargo-deb, crates/vuoro/Cargo.toml's [package.metadata.deb]) and checks it:
# its files and conffiles, lintian, `systemd-analyze verify` of its unit, then extracts it into a throwaway
# root and runs the extracted binary there: `check-config` on the extracted config, and `serve` with that
# config on a 127.0.0.1 port with a temporary data folder, under a fake NOTIFY_SOCKET and WATCHDOG_USEC,
# until READY=1, a WATCHDOG=1 ping and /healthz and /readyz answer; then SIGTERM and a clean exit. Checks
# the man pages (each installed gzipped, formatting without a warning). Then tests/package/lifecycle.sh
# installs, upgrades, removes and purges the package for real with dpkg (as root).
# Installs cargo-deb and lintian when missing. Loopback only; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf '\n== package: %s\n' "$*"; }
fail() {
  echo "package check FAILED: $*" >&2
  exit 1
}

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! cargo deb --version >/dev/null 2>&1; then
  say "installing cargo-deb (about 2 minutes on 2 cores)"
  cargo install cargo-deb --locked
fi
if ! command -v lintian >/dev/null 2>&1; then
  say "installing lintian"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends lintian
fi

say "building (cargo deb -p vuoro --strip: one release build, stripped in the package)"
rm -f target/debian/vuoro_*.deb
cargo deb -p vuoro --strip
deb="$(ls target/debian/vuoro_*.deb)"
[ "$(echo "$deb" | wc -l)" -eq 1 ] || fail "expected one package in target/debian, found: $deb"
echo "$deb"

work="$(mktemp -d)"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say "contents"
dpkg-deb -c "$deb" | tee "$work/contents"
for f in ./usr/bin/vuoro ./etc/vuoro/vuoro.toml ./usr/lib/systemd/system/vuoro.service \
  ./usr/share/doc/vuoro/copyright ./usr/share/doc/vuoro/README.md ./usr/share/doc/vuoro/operations.md \
  ./usr/share/lintian/overrides/vuoro ./usr/share/man/man1/vuoro.1.gz ./usr/share/man/man1/vuoro-serve.1.gz; do
  grep -q " $f\$" "$work/contents" || fail "$f is not in the package"
done
grep -Eq '^-rwxr-xr-x (0/0|root/root) .* ./usr/bin/vuoro$' "$work/contents" || fail "/usr/bin/vuoro is not 0755 root"
grep -Eq '^-rw-r----- (0/0|root/root) .* ./etc/vuoro/vuoro.toml$' "$work/contents" || fail "the config is not 0640"
dpkg-deb -I "$deb" conffiles | grep -qx '/etc/vuoro/vuoro.toml' || fail "/etc/vuoro/vuoro.toml is not a conffile"
dpkg-deb -I "$deb" postinst | grep -q 'adduser --system' || fail "postinst does not create the vuoro user"
dpkg-deb -I "$deb" postinst | grep -q 'systemctl.*enable\|deb-systemd-helper' || fail "postinst does not enable the unit"
dpkg-deb -I "$deb" control | grep -q '^Depends:.*adduser' || fail "the package does not depend on adduser"
changelog_version="$(sed -n '1s/^vuoro (\([^)]*\)).*/\1/p' crates/vuoro/debian/changelog)"
[ "$(dpkg-deb -f "$deb" Version)" = "$changelog_version" ] ||
  fail "the package's version $(dpkg-deb -f "$deb" Version) has no entry in crates/vuoro/debian/changelog"

say "lintian"
# An error or a warning fails the run (lintian is clean). Overridden tags, each with its reason:
# crates/vuoro/debian/lintian-overrides.
lintian --fail-on error,warning --info "$deb"

say "extracting into a throwaway root"
root="$work/root"
dpkg-deb -x "$deb" "$root"
unit="$root/usr/lib/systemd/system/vuoro.service"

say "man pages"
# One page per committed crates/vuoro/debian/man/*.1 (src/man.rs keeps them the command line's), gzipped;
# each formats without a warning from `man --warnings` (as lintian runs it).
pages=0
for page in crates/vuoro/debian/man/*.1; do
  pages=$((pages + 1))
  gz="$root/usr/share/man/man1/$(basename "$page").gz"
  [ -f "$gz" ] || fail "$(basename "$page") is not installed as /usr/share/man/man1/$(basename "$gz")"
  zcat "$gz" | cmp -s - "$page" || fail "$gz is not crates/vuoro/debian/man/$(basename "$page")"
  warnings="$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l "$gz" 2>&1 >/dev/null)"
  [ -z "$warnings" ] || fail "man reports on $(basename "$gz"): $warnings"
done
MANWIDTH=80 man -l "$root/usr/share/man/man1/vuoro.1.gz" 2>/dev/null >"$work/vuoro.txt"
{ grep -q '^SYNOPSIS' "$work/vuoro.txt" && grep -q 'vuoro-serve(1)' "$work/vuoro.txt"; } ||
  fail "man vuoro has no SYNOPSIS or does not name vuoro-serve(1)"
MANWIDTH=80 man -l "$root/usr/share/man/man1/vuoro-serve.1.gz" 2>/dev/null | grep -q -- '--data' ||
  fail "man vuoro-serve does not document --data"
echo "$pages pages, each installed and formatting cleanly"

say "systemd-analyze verify"
# --root resolves ExecStart's /usr/bin/vuoro in the extracted tree. The units it depends on
# (sysinit.target and so on) are the host's, copied beside it; the unit names User=vuoro, which exists
# once postinst ran, so the root's passwd has it. Any line the verify prints (an unknown or malformed
# setting is only printed) fails the check. Its look-up of Documentation='s man: pages would ask the
# host's man, which has none of the package's: --man=no, and each page is looked for in the root instead.
cp -rn /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/"
mkdir -p "$root/etc"
cp /etc/passwd /etc/group "$root/etc/"
echo 'vuoro:x:999:999:Vuoro daemon:/var/lib/vuoro:/usr/sbin/nologin' >>"$root/etc/passwd"
echo 'vuoro:x:999:' >>"$root/etc/group"
verify_out="$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no --root="$root" "$unit" 2>&1)" || {
  echo "$verify_out"
  fail "systemd-analyze verify failed"
}
if [ -n "$verify_out" ]; then
  echo "$verify_out"
  fail "systemd-analyze verify printed warnings"
fi
for page in $(sed -n 's/^Documentation=//p' "$unit" | tr ' ' '\n' | sed -n 's/^man:\(.*\)(1)$/\1/p'); do
  [ -f "$root/usr/share/man/man1/$page.1.gz" ] || fail "the unit's Documentation names $page(1), which the package lacks"
done
grep -q '^Documentation=.*man:vuoro-serve(1)' "$unit" || fail "the unit's Documentation does not name vuoro-serve(1)"
for d in 'Type=notify' 'User=vuoro' 'ProtectSystem=strict' 'ProtectHome=true' 'NoNewPrivileges=true' \
  'PrivateTmp=true' 'StateDirectory=vuoro' 'Restart=on-failure' 'WatchdogSec=' \
  'ExecStart=/usr/bin/vuoro serve --config /etc/vuoro/vuoro.toml --data /var/lib/vuoro '; do
  grep -q "^$d" "$unit" || fail "the unit lacks $d"
done

say "check-config on the extracted config"
"$root/usr/bin/vuoro" check-config "$root/etc/vuoro/vuoro.toml"
grep -q '^demo = false' "$root/etc/vuoro/vuoro.toml" || fail "the example config is a demo"
if grep -q 'demo_token' "$root/etc/vuoro/vuoro.toml"; then fail "the example config has demo tokens"; fi

say "starting the extracted daemon with the extracted config on 127.0.0.1"
# A notify socket as systemd's: a datagram socket whose messages are appended to a file.
notify_log="$work/notify.log"
python3 - "$work/notify.sock" "$notify_log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
with open(sys.argv[2], "a") as out:
    try:
        while True:
            out.write(s.recv(4096).decode())
            out.flush()
    except socket.timeout:
        pass
PY
listener_pid=$!
for _ in $(seq 50); do [ -S "$work/notify.sock" ] && break; sleep 0.1; done
[ -S "$work/notify.sock" ] || fail "the fake notify socket did not appear"
# WATCHDOG_PID must be the daemon's own pid: the shell execs the daemon, keeping its pid.
NOTIFY_SOCKET="$work/notify.sock" WATCHDOG_USEC=400000 sh -c \
  'WATCHDOG_PID=$$ exec "$0" serve --config "$1" --data "$2" --listen 127.0.0.1:0' \
  "$root/usr/bin/vuoro" "$root/etc/vuoro/vuoro.toml" "$work/data" >"$work/stdout" 2>"$work/stderr" &
pid=$!
base=""
for _ in $(seq 300); do
  base="$(sed -n 's/^Vuoro listening on \(http:[^ ]*\)$/\1/p' "$work/stdout")"
  [ -n "$base" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$base" ] || {
  cat "$work/stderr"
  fail "the daemon did not start listening"
}
ready=""
for _ in $(seq 300); do
  if grep -q '^READY=1$' "$notify_log" 2>/dev/null; then ready=1 && break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$ready" ] || {
  cat "$work/stderr"
  fail "no READY=1 on the notify socket"
}
# READY=1 comes after the daemon is ready: /readyz answers at once.
curl -fsS --max-time 5 "$base/readyz" >/dev/null || fail "READY=1 was sent before /readyz answered"
curl -fsS --max-time 5 "$base/healthz" | grep -qx ok || fail "/healthz did not answer ok"
curl -fsS --max-time 5 "$base/api/v1/sites" >/dev/null || fail "/api/v1/sites did not answer"
sleep 0.5 # more than the ping interval (half of WATCHDOG_USEC)
grep -q '^WATCHDOG=1$' "$notify_log" || fail "no WATCHDOG=1 ping on the notify socket"
echo "ready at $base; notify socket got: $(sort "$notify_log" | uniq -c | tr -s ' \n' ' ')"

kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then fail "the daemon did not stop within 10 s of SIGTERM"; fi
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || {
  cat "$work/stderr"
  fail "the daemon exited with $rc"
}
kill "$listener_pid" 2>/dev/null || true
[ -f "$work/data/vuoro.sqlite" ] || fail "the daemon wrote no database in its data folder"

# Installed for real with dpkg, upgraded, removed and purged (as root; it says so when it skips).
bash tests/package/lifecycle.sh "$deb"
say "ok"
