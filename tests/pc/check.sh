#!/usr/bin/env bash
# Checks pc/setup.sh, the kiosk and display PCs' setup (docs/operations.md, "Kiosk and display PCs"):
# - shellcheck on every script under pc/ and tests/pc/;
# - setup.sh --root into a throwaway root for each role: the units, Chromium's policy, the PAM file, the
#   udev rule, the masks, the token file (0640, root and the agent's group, its token nowhere else);
# - `systemd-analyze verify` of the written units in that root (the host's units copied beside them, the
#   real vuoro binary for the agent's ExecStart, stand-ins for cage, chromium, curl and sed, which are
#   only checked to exist);
# - the udev rule through udev's own parser: `udevadm verify` where udevadm has it (systemd 254 and
#   newer), otherwise `udevadm test` in a private mount namespace whose /run/udev/rules.d holds only the
#   rule (udevadm from Debian's udev package, unpacked into target/tools when missing): any line it
#   prints about the rule (an unknown key, operator, group) fails;
# - a second run changes nothing (every file's content, mode, owner and time); the token asked for on a
#   terminal (script(1)) is not shown; --printer none removes the agent again;
# - without --root, in a private mount namespace whose /etc, /var and /usr are overlays on a tmpfs (the
#   host untouched), with stand-ins that log apt-get, systemctl, udevadm and update-grub: the first run
#   installs what is missing, reloads systemd and udev, triggers the printer, updates GRUB, restarts the
#   agent and leaves a stopped screen to the reboot; the second run runs nothing; with --vuoro-deb and no
#   /usr/bin/vuoro, the package is installed with the daemon's unit already masked;
# - bad arguments: exit 2, a message naming the mistake, nothing written;
# - the print agent as the agent unit's ExecStart starts it, with the token file setup.sh wrote, against the
#   real daemon (demo hall, 127.0.0.1): connected with the kiosk's token, refused with another;
# - the kiosk page in Chromium with the unit's page and flags (tests/pc/enrol.mjs) against the real daemon
#   with the package's example config: the token entered once on the enrolment screen is still there when
#   the browser is started again with the same profile, and a new profile asks for it;
# - Chromium with the unit's flags and the written policy, in a private mount namespace whose
#   /etc/chromium is the root's (tests/pc/autoplay.mjs): a page of the daemon's origin plays a sound with
#   nobody tapping it, and without the policy it may not (so the check can tell).
# Needs root (owners, mount namespaces; it runs itself again with sudo when started as another user), node,
# Chromium and a built vuoro (VUORO_BIN, default target/debug/vuoro).
# Loopback only; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo="$PWD"

say() { printf '\n== pc: %s\n' "$*"; }
fail() {
  echo "pc check FAILED: $*" >&2
  exit 1
}

if [ "$(id -u)" -ne 0 ]; then
  # setup.sh sets owners; the udev, Chromium and host checks use mount namespaces.
  command -v sudo >/dev/null || fail "run as root"
  exec sudo --preserve-env=VUORO_BIN "$0" "$@"
fi
vuoro_bin="${VUORO_BIN:-$repo/target/debug/vuoro}"
[ -x "$vuoro_bin" ] || fail "no vuoro binary at $vuoro_bin: cargo build -p vuoro, or set VUORO_BIN"
command -v chromium >/dev/null || fail "chromium is missing (apt-get install chromium)"
[ -d /etc/chromium ] || fail "/etc/chromium is missing (it comes with the chromium package)"

if ! command -v shellcheck >/dev/null 2>&1; then
  say "installing shellcheck"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck
fi

setup="$repo/pc/setup.sh"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # A browser's helper processes may still be writing its profile for a moment.
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$work" 2>/dev/null || { sleep 2 && rm -rf "$work"; }
}
trap cleanup EXIT

say "shellcheck"
shellcheck pc/*.sh tests/pc/*.sh || fail "shellcheck found the above"

# A throwaway root: the host's user and group files (useradd --prefix edits them), the real vuoro binary.
new_root() {
  local r="$work/$1"
  mkdir -p "$r/etc" "$r/usr/bin"
  cp /etc/passwd /etc/group /etc/shadow /etc/gshadow "$r/etc/"
  cp "$vuoro_bin" "$r/usr/bin/vuoro"
  echo "$r"
}
# Every file, folder and link under the root but usr/: type, mode, owner, size, mtime, target, content.
snapshot() {
  (cd "$1" && find . -path ./usr -prune -o -printf '%p %y %m %U %G %s %T@ %l\n' | sort &&
    find . -path ./usr -prune -o -type f -print0 | sort -z | xargs -0 sha256sum)
}
uid_in() { awk -F: -v n="$2" '$1 == n { print $3 }' "$1/etc/passwd"; }
gid_in() { awk -F: -v n="$2" '$1 == n { print $3 }' "$1/etc/group"; }
has() { grep -qF -- "$2" "$1" || fail "$1 lacks: $2"; }
lacks() { if grep -qF -- "$2" "$1"; then fail "$1 has: $2"; fi; }

server="https://vuoro.example.fi"
token="kiosk1-$(head -c 24 /dev/urandom | sha256sum | cut -c1-40)"

say "setup.sh --root for each role"
kiosk="$(new_root kiosk)"
printf '%s\n' "$token" | "$setup" --role kiosk --server "$server/" --site iso-omena --device kiosk-1 \
  --printer usb --token-from - --root "$kiosk" >"$work/kiosk.out"
cat "$work/kiosk.out"
tcp="$(new_root tcp)"
printf '%s' "$token" >"$work/token"
"$setup" --role kiosk --server http://192.0.2.10:8080 --site iso-omena --device kiosk-2 \
  --printer tcp:192.0.2.20:9100 --token-from "$work/token" --root "$tcp" >/dev/null
bare="$(new_root bare)"
"$setup" --role kiosk --server "$server" --site iso-omena --device kiosk-3 --root "$bare" >/dev/null
display="$(new_root display)"
"$setup" --role display --server "$server" --site iso-omena --device hall --panel 65 --root "$display" >/dev/null
counter="$(new_root counter)"
"$setup" --role counter-display --server "$server" --site iso-omena --device c5 --root "$counter" >/dev/null

say "the screen's unit, for each role"
sys=etc/systemd/system
for r in "$kiosk" "$tcp" "$bare" "$display" "$counter"; do
  u="$r/$sys/vuoro-screen.service"
  [ -f "$u" ] || fail "no $u"
  for d in 'User=vuoro-screen' 'PAMName=vuoro-screen' 'TTYPath=/dev/tty1' 'Conflicts=getty@tty1.service' \
    'Restart=always' 'RestartSec=5s' 'StartLimitIntervalSec=600' 'StartLimitBurst=20' \
    'ExecStart=/usr/bin/cage -d -s -- /usr/bin/chromium --ozone-platform=wayland --kiosk ' \
    '--user-data-dir=/var/lib/vuoro-screen/chromium' '--no-first-run' '--disable-features=Translate' \
    '--disable-pinch' '--overscroll-history-navigation=0' '--password-store=basic' \
    '--disable-session-crashed-bubble' '--noerrdialogs' 'WantedBy=graphical.target'; do
    has "$u" "$d"
  done
  [ "$(readlink "$r/$sys/graphical.target.wants/vuoro-screen.service")" = /etc/systemd/system/vuoro-screen.service ] ||
    fail "vuoro-screen.service is not enabled in $r"
  has "$r/etc/pam.d/vuoro-screen" 'session  required pam_systemd.so'
  has "$r/$sys/vuoro-screen-retry.service" 'ExecCondition=/usr/bin/systemctl is-failed --quiet vuoro-screen.service'
  has "$r/$sys/vuoro-screen-retry.timer" 'OnUnitActiveSec=10min'
  [ "$(readlink "$r/$sys/timers.target.wants/vuoro-screen-retry.timer")" = /etc/systemd/system/vuoro-screen-retry.timer ] ||
    fail "vuoro-screen-retry.timer is not enabled in $r"
  [ "$(stat -c '%a %u %g' "$r/var/lib/vuoro-screen")" = "700 $(uid_in "$r" vuoro-screen) $(gid_in "$r" vuoro-screen)" ] ||
    fail "the browser's home in $r is not 0700 vuoro-screen: $(stat -c '%a %u %g' "$r/var/lib/vuoro-screen")"
  grep -q '^vuoro-screen:x:[0-9]*:[0-9]*:.*:/var/lib/vuoro-screen:/usr/sbin/nologin$' "$r/etc/passwd" ||
    fail "no vuoro-screen user in $r"
  grep -q '^video:.*vuoro-screen' "$r/etc/group" || fail "vuoro-screen is not in the video group in $r"
  # Blanking, sleep and automatic updates off.
  for t in sleep.target suspend.target hibernate.target hybrid-sleep.target suspend-then-hibernate.target \
    apt-daily.timer apt-daily-upgrade.timer; do
    [ "$(readlink "$r/$sys/$t")" = /dev/null ] || fail "$t is not masked in $r"
  done
  has "$r/etc/default/grub.d/vuoro.cfg" 'consoleblank=0'
  has "$r/etc/systemd/logind.conf.d/vuoro.conf" 'HandleSuspendKey=ignore'
  has "$r/etc/apt/apt.conf.d/99vuoro-no-automatic-updates" 'APT::Periodic::Unattended-Upgrade "0";'
  has "$r/etc/apt/apt.conf.d/99vuoro-no-automatic-updates" 'Unattended-Upgrade::Automatic-Reboot "false";'
done
has "$kiosk/$sys/vuoro-screen.service" '"https://vuoro.example.fi/kiosk/?device=kiosk-1"'
has "$tcp/$sys/vuoro-screen.service" '"http://192.0.2.10:8080/kiosk/?device=kiosk-2"'
has "$display/$sys/vuoro-screen.service" '"https://vuoro.example.fi/display/?site=iso-omena&id=hall&panel=65"'
has "$counter/$sys/vuoro-screen.service" '"https://vuoro.example.fi/display/counter.html?site=iso-omena&counter=c5"'
has "$kiosk/$sys/vuoro-screen.service" '/usr/bin/curl --silent --output /dev/null --max-time 5'

say "Chromium's policy"
for r in "$kiosk" "$display" "$counter"; do
  python3 - "$r/etc/chromium/policies/managed/vuoro.json" <<'PY' || fail "the policy in $r"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["AutoplayAllowlist"] == ["https://vuoro.example.fi"], p["AutoplayAllowlist"]
for k, v in {"TranslateEnabled": False, "PasswordManagerEnabled": False, "BrowserSignin": 0,
             "DefaultNotificationsSetting": 2, "BackgroundModeEnabled": False}.items():
    assert p[k] == v, (k, p.get(k))
PY
  [ "$(stat -c '%a %u' "$r/etc/chromium/policies/managed/vuoro.json")" = "644 0" ] || fail "the policy's mode in $r"
done
has "$tcp/etc/chromium/policies/managed/vuoro.json" '"AutoplayAllowlist": ["http://192.0.2.10:8080"]'

say "the print agent, the udev rule and the token file"
agent="$kiosk/$sys/vuoro-agent.service"
has "$agent" 'ExecStart=/usr/bin/vuoro agent --server https://vuoro.example.fi --device kiosk-1 --token-file /etc/vuoro/agent.token --printer file:/dev/vuoro-printer'
has "$tcp/$sys/vuoro-agent.service" '--device kiosk-2 --token-file /etc/vuoro/agent.token --printer tcp:192.0.2.20:9100'
for d in 'User=vuoro-agent' 'Group=vuoro-agent' 'Restart=always' 'StartLimitBurst=20' 'NoNewPrivileges=true' \
  'ProtectSystem=strict' 'WantedBy=multi-user.target'; do
  has "$agent" "$d"
done
[ "$(readlink "$kiosk/$sys/multi-user.target.wants/vuoro-agent.service")" = /etc/systemd/system/vuoro-agent.service ] ||
  fail "vuoro-agent.service is not enabled"
[ "$(readlink "$kiosk/$sys/vuoro.service")" = /dev/null ] || fail "the daemon's unit is not masked on the kiosk"
rule="$kiosk/etc/udev/rules.d/60-vuoro-printer.rules"
has "$rule" 'SUBSYSTEM=="usbmisc", KERNEL=="lp[0-9]*", SUBSYSTEMS=="usb", ATTRS{bInterfaceClass}=="07", SYMLINK+="vuoro-printer", GROUP="vuoro-agent", MODE="0660"'
[ ! -e "$tcp/etc/udev/rules.d/60-vuoro-printer.rules" ] || fail "a udev rule for a TCP printer"
for r in "$kiosk" "$tcp"; do
  tf="$r/etc/vuoro/agent.token"
  [ "$(stat -c '%a %u %g' "$tf")" = "640 0 $(gid_in "$r" vuoro-agent)" ] ||
    fail "the token file in $r is $(stat -c '%a %u %g' "$tf"), not 640 root vuoro-agent"
  [ "$(cat "$tf")" = "$token" ] || fail "the token file in $r does not hold the token"
  # The token is in no other file of the root (units, policy, passwd, ...).
  others="$(grep -rlF --exclude-dir=usr -- "$token" "$r" | grep -vx "$tf" || true)"
  [ -z "$others" ] || fail "the token is also in: $others"
  grep -q '^vuoro-agent:x:' "$r/etc/passwd" || fail "no vuoro-agent user in $r"
done
for r in "$bare" "$display" "$counter"; do
  for f in "$sys/vuoro-agent.service" etc/udev/rules.d/60-vuoro-printer.rules etc/vuoro/agent.token; do
    [ ! -e "$r/$f" ] || fail "$r has $f without a printer"
  done
done

say "systemd-analyze verify"
# Each unit's ExecStart binaries must exist in the root: the real vuoro, stand-ins for the rest.
for r in "$kiosk" "$display"; do
  mkdir -p "$r/usr/lib/systemd/system"
  cp -rn /usr/lib/systemd/system/. "$r/usr/lib/systemd/system/"
  for b in cage chromium curl sed systemctl; do
    printf '#!/bin/sh\nexit 0\n' >"$r/usr/bin/$b"
    chmod 755 "$r/usr/bin/$b"
  done
done
for u in "$kiosk/$sys/vuoro-screen.service" "$kiosk/$sys/vuoro-agent.service" "$display/$sys/vuoro-screen.service" \
  "$display/$sys/vuoro-screen-retry.service" "$display/$sys/vuoro-screen-retry.timer"; do
  r="${u%/"$sys"/*}"
  out="$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --root="$r" "$u" 2>&1)" || {
    echo "$out"
    fail "systemd-analyze verify $u failed"
  }
  if [ -n "$out" ]; then
    echo "$out"
    fail "systemd-analyze verify $u printed warnings"
  fi
  echo "verified $u"
done

say "the udev rule, through udev's parser"
udevadm_bin="$(command -v udevadm || true)"
if [ -z "$udevadm_bin" ]; then
  udevadm_bin="$repo/target/tools/udev/bin/udevadm"
  if [ ! -x "$udevadm_bin" ]; then
    echo "udevadm is missing: unpacking it from Debian's udev package into target/tools/udev"
    mkdir -p "$repo/target/tools/udev-deb"
    (cd "$repo/target/tools/udev-deb" && rm -f udev_*.deb &&
      { apt-get download udev 2>/dev/null || { apt-get update -qq && apt-get download udev; }; })
    dpkg-deb -x "$repo"/target/tools/udev-deb/udev_*.deb "$repo/target/tools/udev-x"
    mkdir -p "$repo/target/tools/udev/bin"
    cp "$repo/target/tools/udev-x/bin/udevadm" "$udevadm_bin" 2>/dev/null ||
      cp "$repo/target/tools/udev-x/usr/bin/udevadm" "$udevadm_bin"
    rm -rf "$repo/target/tools/udev-x"
  fi
fi
check_rule() { # RULE_FILE ROOT: prints what udev's parser says about the rule
  local rule="$1" r="$2"
  if "$udevadm_bin" verify --help >/dev/null 2>&1; then
    # It says how many files it checked; its exit status says whether they passed.
    local out
    out="$("$udevadm_bin" verify --resolve-names=never "$rule" 2>&1)" || echo "$out"
    return 0
  fi
  # /run and /dev are private tmpfs in the namespace, so udevadm test leaves nothing on the host; the
  # root's group file stands for the host's, so that GROUP="vuoro-agent" resolves.
  # shellcheck disable=SC2016 # the inner sh expands its own arguments
  unshare -m sh -c '
    mount --make-rprivate / && mount -t tmpfs none /run && mount -t tmpfs none /dev &&
    mount --bind "$3/etc/group" /etc/group && mount --bind "$3/etc/passwd" /etc/passwd &&
    mkdir -p /run/udev/rules.d && cp "$2" /run/udev/rules.d/ &&
    "$1" test --action=add /sys/class/tty/tty0 2>&1' sh "$udevadm_bin" "$rule" "$r" |
    grep -F "/run/udev/rules.d/$(basename "$rule")" | grep -v '^Reading rules file' || true
}
said="$(check_rule "$rule" "$kiosk")"
[ -z "$said" ] || fail "udev's parser on the rule: $said"
# The same parser does report mistakes: a misspelt key and an unknown group in a copy of the rule.
sed -e 's/ATTRS{bInterfaceClass}/ATTRS{bInterfaceClas}s/; s/GROUP="vuoro-agent"/GROUP="vuoro-nobody"/' \
  "$rule" >"$work/60-broken.rules"
said="$(check_rule "$work/60-broken.rules" "$kiosk")"
echo "$said"
[ -n "$said" ] || fail "udev's parser found nothing wrong in a broken rule: the check cannot fail"
echo "the rule parses cleanly; a broken copy is reported"

say "a second run changes nothing"
snapshot "$kiosk" >"$work/before"
out="$("$setup" --role kiosk --server "$server" --site iso-omena --device kiosk-1 --printer usb --root "$kiosk")"
[ "$out" = "setup.sh: nothing changed" ] || fail "the second run said: $out"
snapshot "$kiosk" >"$work/after"
diff "$work/before" "$work/after" || fail "the second run changed files"
out="$(printf '%s\n' "$token" | "$setup" --role kiosk --server "$server" --site iso-omena --device kiosk-1 \
  --printer usb --token-from - --root "$kiosk")"
[ "$out" = "setup.sh: nothing changed" ] || fail "the same token again said: $out"
snapshot "$kiosk" >"$work/after"
diff "$work/before" "$work/after" || fail "the same token again changed files"
for r in display counter; do
  snapshot "${!r}" >"$work/before"
  case "$r" in
  display) args=(--role display --device hall --panel 65) ;;
  counter) args=(--role counter-display --device c5) ;;
  esac
  out="$("$setup" "${args[@]}" --server "$server" --site iso-omena --root "${!r}")"
  [ "$out" = "setup.sh: nothing changed" ] || fail "the second run ($r) said: $out"
  snapshot "${!r}" >"$work/after"
  diff "$work/before" "$work/after" || fail "the second run ($r) changed files"
done
# A file changed by hand is put back, and only that one.
chmod 644 "$kiosk/etc/vuoro/agent.token"
out="$("$setup" --role kiosk --server "$server" --site iso-omena --device kiosk-1 --printer usb --root "$kiosk")"
[ "$out" = "setup.sh: changed /etc/vuoro/agent.token" ] || fail "a token file made readable was not mended: $out"
[ "$(stat -c %a "$kiosk/etc/vuoro/agent.token")" = 640 ] || fail "the token file is not 0640 again"
echo "idempotent; a changed file is mended"

say "without --root: what it runs, in a private mount namespace over the host's /etc, /var and /usr"
# /etc, /var and /usr are overlays whose writes go to a tmpfs of the namespace, so the host is untouched (a
# marker written through the overlay must show in its upper layer before setup.sh runs). apt-get,
# systemctl, udevadm and update-grub are stand-ins that log their arguments (systemctl is-active says
# inactive); useradd, dpkg-query and the rest are the host's.
mkdir -p "$work/stubs"
for b in systemctl udevadm update-grub; do
  # shellcheck disable=SC2016 # the stand-in expands them when it runs
  printf '#!/bin/sh\necho "%s $*" >>"$PC_CALLS"\n[ "%s $1" != "systemctl is-active" ] || exit 3\n' "$b" "$b" >"$work/stubs/$b"
  chmod 755 "$work/stubs/$b"
done
# apt-get's stand-in also logs, when it installs a package file, whether the daemon's unit is masked then.
cat >"$work/stubs/apt-get" <<'EOF'
#!/bin/sh
echo "apt-get $*" >>"$PC_CALLS"
case "$*" in *.deb) echo "vuoro.service -> $(readlink /etc/systemd/system/vuoro.service)" >>"$PC_CALLS" ;; esac
EOF
chmod 755 "$work/stubs/apt-get"
printf '%s\n' "$token" >"$work/token-nl"
on_host() { # CALLS_LOG COMMAND...: runs COMMAND in the namespace, the stand-ins' calls logged in CALLS_LOG
  local calls="$1"
  shift
  : >"$calls"
  # shellcheck disable=SC2016 # the inner sh expands its own arguments
  PC_CALLS="$calls" PATH="$work/stubs:$PATH" unshare -m sh -euc '
    ov="$1"; vuoro="$2"; shift 2
    mount --make-rprivate /
    mkdir -p "$ov" && mount -t tmpfs none "$ov"
    for d in etc var usr; do
      mkdir -p "$ov/$d-upper" "$ov/$d-work"
      mount -t overlay overlay -o "lowerdir=/$d,upperdir=$ov/$d-upper,workdir=$ov/$d-work" "/$d"
    done
    echo overlay >/etc/.pc-check-marker
    [ -f "$ov/etc-upper/.pc-check-marker" ] || { echo "the overlay on /etc is not in place" >&2; exit 1; }
    [ -z "$vuoro" ] || cp "$vuoro" /usr/bin/vuoro
    "$@"' sh "$work/overlay" "${VUORO_ON_HOST-$vuoro_bin}" "$@"
}
host_args=(--role kiosk --server "$server" --site iso-omena --device kiosk-1 --printer usb)
# Both runs in one namespace, the second against what the first wrote: a wrapper runs them in turn.
cat >"$work/twice.sh" <<'EOF'
#!/bin/sh
set -eu
setup="$1"
shift
"$setup" "$@" --token-from "$TOKEN_FILE" >"$OUT1"
cp "$PC_CALLS" "$CALLS1"
: >"$PC_CALLS"
"$setup" "$@" --no-install >"$OUT2"
ls -ln /etc/vuoro/agent.token >"$TOKEN_LS"
grep '^vuoro-' /etc/passwd >"$PASSWD"
[ ! -e /etc/.pc-check-marker ] || echo marker-visible >>"$PASSWD"
EOF
chmod 755 "$work/twice.sh"
TOKEN_FILE="$work/token-nl" OUT1="$work/host1.out" OUT2="$work/host2.out" CALLS1="$work/host1.calls" \
  TOKEN_LS="$work/host.token" PASSWD="$work/host.passwd" \
  on_host "$work/host2.calls" "$work/twice.sh" "$setup" "${host_args[@]}" || fail "setup.sh without --root failed"
# apt-get installs, in one call, the packages of the list that the host lacks, and nothing else.
missing=""
for p in chromium cage curl dbus-user-session libpam-systemd fonts-noto-core fonts-noto-cjk fonts-dejavu-core \
  fonts-wqy-microhei pipewire pipewire-pulse wireplumber alsa-utils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  has "$work/host1.calls" 'apt-get update -qq'
  has "$work/host1.calls" "apt-get install -y -qq --no-install-recommends${missing}"
else
  lacks "$work/host1.calls" 'apt-get'
fi
[ "$(grep -c '^apt-get install' "$work/host1.calls")" -le 1 ] || fail "more than one apt-get install"
for want in 'systemctl daemon-reload' 'udevadm control --reload' 'udevadm trigger --action=add --subsystem-match=usbmisc' \
  'update-grub' 'systemctl restart vuoro-agent.service' 'systemctl is-active --quiet vuoro-screen.service'; do
  has "$work/host1.calls" "$want"
done
lacks "$work/host1.calls" 'systemctl restart vuoro-screen.service'
has "$work/host1.out" 'setup.sh: done. Reboot once'
[ "$(cat "$work/host2.out")" = "setup.sh: nothing changed" ] || fail "the second run on the host said: $(cat "$work/host2.out")"
[ ! -s "$work/host2.calls" ] || fail "the second run on the host ran: $(cat "$work/host2.calls")"
grep -q '^-rw-r----- 1 0 [0-9]* .* /etc/vuoro/agent.token$' "$work/host.token" || fail "the token file on the host: $(cat "$work/host.token")"
if ! grep -q '^vuoro-screen:' "$work/host.passwd" || ! grep -q '^vuoro-agent:' "$work/host.passwd"; then
  fail "the users were not made: $(cat "$work/host.passwd")"
fi
if [ -e /etc/.pc-check-marker ] || grep -q '^vuoro-screen:' /etc/passwd || [ -e /etc/systemd/system/vuoro-screen.service ]; then
  fail "the run without --root reached the host's files"
fi
cat "$work/host1.calls"
# Without /usr/bin/vuoro, the package given is installed, the daemon's unit masked before.
: >"$work/vuoro_0.1.0-1_amd64.deb"
VUORO_ON_HOST="" on_host "$work/deb.calls" "$setup" "${host_args[@]}" --token-from "$work/token-nl" \
  --vuoro-deb "$work/vuoro_0.1.0-1_amd64.deb" >/dev/null || fail "setup.sh --vuoro-deb failed"
grep -A1 -xF "apt-get install -y -qq --no-install-recommends $work/vuoro_0.1.0-1_amd64.deb" "$work/deb.calls" |
  grep -qx 'vuoro.service -> /dev/null' || fail "the package was not installed with the daemon's unit masked: $(cat "$work/deb.calls")"
echo "the first run installs, reloads and restarts; the second runs nothing; the host is untouched"

say "the token asked for on a terminal, not shown"
command -v script >/dev/null || fail "script (util-linux) is missing"
asked="$(new_root asked)"
# script(1) gives setup.sh a terminal; the token is typed a second after the start, then Enter.
(sleep 1 && printf '%s\r' "$token") | timeout 30 script -qec "$(printf '%q ' "$setup" --role kiosk --server "$server" \
  --site iso-omena --device kiosk-1 --printer usb --root "$asked")" /dev/null >"$work/asked.out" || fail "setup.sh on a terminal failed"
has "$work/asked.out" "The kiosk's device token (not shown):"
lacks "$work/asked.out" "$token"
[ "$(cat "$asked/etc/vuoro/agent.token")" = "$token" ] || fail "the token typed on the terminal is not in the token file"
echo "asked, not shown, written"

say "--printer none removes the print agent"
"$setup" --role kiosk --server "$server" --site iso-omena --device kiosk-1 --printer none --root "$tcp" >"$work/none.out"
for f in "$sys/vuoro-agent.service" "$sys/multi-user.target.wants/vuoro-agent.service" etc/vuoro/agent.token; do
  if [ -e "$tcp/$f" ] || [ -L "$tcp/$f" ]; then fail "$f is still there after --printer none"; fi
done
has "$work/none.out" 'removed /etc/vuoro/agent.token'

say "bad arguments: a clear error, nothing written"
bad="$(new_root bad)"
snapshot "$bad" >"$work/bad.before"
ok=(--server "$server" --site iso-omena --device kiosk-1 --root "$bad")
printf 'short\n' >"$work/short-token"
printf 'two words and more than sixteen\n' >"$work/space-token"
expect_refused() { # EXPECTED_MESSAGE ARGS...: exit 2, the message on stderr, nothing written
  local want="$1" rc=0
  shift
  "$setup" "$@" </dev/null >"$work/bad.out" 2>"$work/bad.err" || rc=$?
  [ "$rc" -eq 2 ] || fail "setup.sh $* exited $rc, not 2 ($(cat "$work/bad.err"))"
  grep -qF -- "setup.sh: $want" "$work/bad.err" || fail "setup.sh $* said '$(cat "$work/bad.err")', not '$want'"
  snapshot "$bad" >"$work/bad.after"
  diff -q "$work/bad.before" "$work/bad.after" >/dev/null || fail "setup.sh $* wrote files before refusing"
  echo "refused: $(cat "$work/bad.err")"
}
expect_refused "--role is required" "${ok[@]}"
expect_refused "--role must be kiosk, display or counter-display, not 'screen'" --role screen "${ok[@]}"
expect_refused "--server is required" --role kiosk --site iso-omena --device kiosk-1 --root "$bad"
expect_refused "--server must be an origin" --role kiosk --server https://vuoro.example.fi/kiosk/ --site iso-omena --device kiosk-1 --root "$bad"
expect_refused "--server must be an origin" --role kiosk --server ftp://vuoro.example.fi --site iso-omena --device kiosk-1 --root "$bad"
expect_refused "--site must be an id" --role kiosk --server "$server" --site 'Iso Omena' --device kiosk-1 --root "$bad"
expect_refused "--device is required" --role kiosk --server "$server" --site iso-omena --root "$bad"
expect_refused "--device must be an id" --role display --server "$server" --site iso-omena --device 'hall&x=1' --root "$bad"
expect_refused "--printer must be usb, tcp:HOST:PORT or none" --role kiosk "${ok[@]}" --printer lp0
expect_refused "--printer tcp:HOST:PORT needs" --role kiosk "${ok[@]}" --printer tcp:printer:70000
expect_refused "--printer is for a kiosk" --role display "${ok[@]}" --printer usb
expect_refused "--panel is for a hall display" --role kiosk "${ok[@]}" --panel 55
expect_refused "--panel must be the diagonal" --role display "${ok[@]}" --panel big
expect_refused "unknown argument '--token'" --role kiosk "${ok[@]}" --printer usb --token "$token"
expect_refused "--root needs a value" --role kiosk "${ok[@]}" --root
expect_refused "--root: no such directory" --role kiosk --server "$server" --site iso-omena --device kiosk-1 --root "$work/nowhere"
expect_refused "--token-from: cannot read" --role kiosk "${ok[@]}" --printer usb --token-from "$work/nowhere"
expect_refused "--token-from is for a kiosk with a printer" --role kiosk "${ok[@]}" --token-from "$work/token"
expect_refused "the print agent needs the kiosk's device token" --role kiosk "${ok[@]}" --printer usb
expect_refused "the device token must be one line" --role kiosk "${ok[@]}" --printer usb --token-from "$work/short-token"
expect_refused "the device token must be one line" --role kiosk "${ok[@]}" --printer usb --token-from "$work/space-token"
rm "$bad/usr/bin/vuoro"
snapshot "$bad" >"$work/bad.before"
expect_refused "the print agent needs /usr/bin/vuoro" --role kiosk "${ok[@]}" --printer usb --token-from "$work/token"

say "the agent unit's command, with the token file setup.sh wrote, against the real daemon"
: >"$work/daemon.out" # there before the daemon's shell opens it, for the sed below
"$vuoro_bin" serve --listen 127.0.0.1:0 --data "$work/data" >"$work/daemon.out" 2>"$work/daemon.err" &
pids+=($!)
base=""
for _ in $(seq 300); do
  base="$(sed -n 's/^Vuoro listening on \(http:[^ ]*\)$/\1/p' "$work/daemon.out")"
  [ -n "$base" ] && break
  sleep 0.1
done
[ -n "$base" ] || fail "the demo daemon did not start: $(cat "$work/daemon.err")"
base="${base%/}"
demo_token="$(curl -fsS --max-time 5 "$base/api/v1/demo/device-token?device=kiosk-1" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
run_agent() { # ROOT NAME: runs the agent unit's ExecStart (paths into ROOT) for 4 s; its log in NAME.log
  local r="$1" line args=()
  line="$(sed -n 's/^ExecStart=//p' "$r/$sys/vuoro-agent.service")"
  read -ra args <<<"$line"
  [ "${args[0]}" = /usr/bin/vuoro ] || fail "the agent unit runs ${args[0]}"
  args[0]="$r/usr/bin/vuoro"
  for i in "${!args[@]}"; do [ "${args[$i]}" != /etc/vuoro/agent.token ] || args[i]="$r/etc/vuoro/agent.token"; done
  timeout 4 "${args[@]}" >"$work/$2.log" 2>&1 || true
}
live="$(new_root live)"
printf '%s\n' "$demo_token" | "$setup" --role kiosk --server "$base" --site iso-omena --device kiosk-1 \
  --printer tcp:127.0.0.1:9 --token-from - --root "$live" >/dev/null
run_agent "$live" agent-good
grep -q 'agent connected' "$work/agent-good.log" || fail "the agent did not connect: $(cat "$work/agent-good.log")"
if grep -q 'agent connection ended' "$work/agent-good.log"; then
  fail "the daemon ended the agent's connection: $(cat "$work/agent-good.log")"
fi
printf '%s\n' "$token" | "$setup" --role kiosk --server "$base" --site iso-omena --device kiosk-1 \
  --printer tcp:127.0.0.1:9 --token-from - --root "$live" >/dev/null
run_agent "$live" agent-bad
grep -q 'agent connection ended' "$work/agent-bad.log" || fail "the agent with a wrong token was not refused: $(cat "$work/agent-bad.log")"
if grep -q 'agent connected' "$work/agent-bad.log"; then fail "the agent connected with a wrong token"; fi
echo "connected with the kiosk's token; refused with another"

# Chromium as the screen unit of ROOT starts it, headless here (no Wayland), with the profile PROFILE: sets
# `page` to the unit's page and `chromium_flags` to the flags after "cage -d -s -- /usr/bin/chromium".
unit_browser() {
  local line args=()
  line="$(sed -n 's/^ExecStart=//p' "$1/$sys/vuoro-screen.service")"
  read -ra args <<<"$line"
  [ "${args[0]} ${args[4]}" = "/usr/bin/cage /usr/bin/chromium" ] || fail "the screen unit runs ${args[0]} ${args[4]}"
  page="" chromium_flags=(--headless --no-sandbox --disable-gpu)
  for a in "${args[@]:5}"; do
    case "$a" in
    --ozone-platform=wayland | --kiosk) ;;
    \"*\") page="${a:1:${#a}-2}" ;;
    --user-data-dir=*) chromium_flags+=("--user-data-dir=$2") ;;
    *) chromium_flags+=("$a") ;;
    esac
  done
  [ -n "$page" ] || fail "the screen unit opens no page"
}
command -v node >/dev/null || fail "node is missing (apt-get install nodejs)"

say "the kiosk's device token, entered once on its screen, is kept in the browser's profile"
# The package's example config, kiosk-1's token hash replaced by the hash of this test's token, served by
# the real daemon; the kiosk PC's unit for kiosk-1; the kiosk page in Chromium with the unit's flags.
python3 - crates/vuoro/debian/vuoro.toml "$work/hall.toml" "$token" <<'PY' || fail "cannot make the test's config"
import hashlib, re, sys
src, dst, token = sys.argv[1:]
text = open(src).read()
m = re.search(r'\[\[device\]\]\nid = "kiosk-1"\n(?:[^\[\n].*\n)*?token_sha256 = "([0-9a-f]{64})"', text)
assert m, "no kiosk-1 with a token_sha256 in the example config"
open(dst, "w").write(text.replace(m.group(1), hashlib.sha256(token.encode()).hexdigest()))
PY
: >"$work/hall.out"
"$vuoro_bin" serve --config "$work/hall.toml" --listen 127.0.0.1:0 --data "$work/hall-data" >"$work/hall.out" 2>"$work/hall.err" &
pids+=($!)
hall=""
for _ in $(seq 300); do
  hall="$(sed -n 's/^Vuoro listening on \(http:[^ ]*\)$/\1/p' "$work/hall.out")"
  [ -n "$hall" ] && break
  sleep 0.1
done
[ -n "$hall" ] || fail "the daemon with the example config did not start: $(cat "$work/hall.err")"
hall="${hall%/}"
kiosk_pc="$(new_root kiosk-pc)"
"$setup" --role kiosk --server "$hall" --site main --device kiosk-1 --root "$kiosk_pc" >/dev/null
kiosk_screen() { # PROFILE TOKEN|-: the screen the kiosk page comes to (after entering TOKEN)
  unit_browser "$kiosk_pc" "$1"
  timeout 90 node tests/pc/enrol.mjs "$page" "$2" chromium "${chromium_flags[@]}"
}
entered="$(kiosk_screen "$work/kiosk-profile" "$token")"
again="$(kiosk_screen "$work/kiosk-profile" -)"
fresh="$(kiosk_screen "$work/fresh-profile" -)"
echo "after entering the token: $entered; the browser started again: $again; a new profile: $fresh"
[ "$entered" = services ] || fail "the kiosk did not take the token entered on its screen: '$entered'"
[ "$again" = services ] || fail "the kiosk asked for its token again after a restart: '$again'"
[ "$fresh" = enrol ] || fail "a kiosk with a new profile did not ask for its token ('$fresh'): the check cannot tell"

say "Chromium with the unit's flags and the written policy: autoplay on the daemon's origin"
# A page and a sound of the origin the policy names, served on 127.0.0.1; tests/pc/autoplay.mjs starts
# Chromium with the page on its command line and has the page play the sound, nobody having tapped it.
mkdir -p "$work/site"
cp kiosk-ui/sounds/attention.wav "$work/site/a.wav"
echo '<!doctype html><html lang="en"><title>autoplay</title></html>' >"$work/site/index.html"
: >"$work/http.log"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$work/site" >"$work/http.log" 2>&1 &
pids+=($!)
origin=""
for _ in $(seq 100); do
  origin="$(sed -n 's|.*(http://127.0.0.1:\([0-9]*\)/).*|http://127.0.0.1:\1|p' "$work/http.log" | head -1)"
  [ -n "$origin" ] && break
  sleep 0.1
done
[ -n "$origin" ] || fail "the test's web server did not start"
shown="$(new_root shown)"
"$setup" --role display --server "$origin" --site iso-omena --device hall --root "$shown" >/dev/null
mkdir -p "$work/no-policy"
autoplay() { # ETC_CHROMIUM: played or refused:..., in Chromium with the unit's flags and that /etc/chromium
  unit_browser "$shown" "$work/profile-$RANDOM"
  # shellcheck disable=SC2016 # the inner sh expands its own arguments
  timeout 60 node tests/pc/autoplay.mjs "$origin/" a.wav unshare -m sh -c \
    'mount --make-rprivate / && mount --bind "$1" /etc/chromium && shift && exec chromium "$@"' \
    sh "$1" "${chromium_flags[@]}"
}
with="$(autoplay "$shown/etc/chromium")"
without="$(autoplay "$work/no-policy")"
echo "with the policy: $with; without: $without"
[ "$with" = played ] || fail "Chromium with the written policy did not play the sound: '$with'"
[ "$without" = refused:NotAllowedError ] || fail "without the policy the sound was not refused ('$without'): the check cannot tell"

say "ok"
