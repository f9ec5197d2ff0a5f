#!/usr/bin/env bash
# Sets up a Debian 12 or 13 PC as a Vuoro kiosk, hall display or counter display: Chromium in kiosk mode
# under cage (a Wayland compositor that runs one program full screen) on tty1, as the unprivileged user
# vuoro-screen, restarted by systemd; the fonts of every script the hall offers; PipeWire for sound; screen
# blanking, sleep and automatic updates off; for a kiosk with a receipt printer, the print agent
# (`vuoro agent`) as the user vuoro-agent, with a udev rule for a USB printer and the device token in a
# root-owned file. What it does, step by step: docs/operations.md, "Kiosk and display PCs".
#
# Idempotent: a second run with the same arguments changes nothing. With --root DIR every file is written
# under DIR and nothing is installed, started or reloaded (the tests check the result there).
set -euo pipefail

PROG="setup.sh"
usage() {
  cat <<'EOF'
Usage: setup.sh --role kiosk|display|counter-display --server URL --site SITE --device ID
                [--printer usb|tcp:HOST:PORT|none] [--panel INCHES] [--token-from FILE|-]
                [--vuoro-deb FILE] [--root DIR] [--no-install]

  --role        kiosk: the ticket machine (/kiosk/?device=ID);
                display: a hall display (/display/?site=SITE&id=ID);
                counter-display: the screen above one counter (/display/counter.html?site=SITE&counter=ID)
  --server      the daemon's origin, e.g. https://vuoro.example.fi (no path)
  --site        the site's id in the config, e.g. iso-omena
  --device      the kiosk's device id, the display's id, or the counter's id
  --printer     kiosk only: usb (a USB receipt printer, /dev/vuoro-printer), tcp:HOST:PORT, or none
                (default). usb and tcp run the print agent, which needs the device token.
  --panel       display only: the screen's diagonal in inches (the page's default: 55)
  --token-from  kiosk with a printer: read the kiosk's device token from FILE, or from standard input
                with '-'. Without it the token file already in place is kept; without either, the token is
                asked for on the terminal. Never give the token itself as an argument.
  --vuoro-deb   the vuoro Debian package to install for the print agent (when /usr/bin/vuoro is missing)
  --root DIR    write every file under DIR instead of /; install, start and reload nothing
  --no-install  do not run apt-get (the packages are installed already)
EOF
}

die() {
  echo "$PROG: $*" >&2
  exit 2
}

# ---- arguments -----------------------------------------------------------------------------------------

role="" server="" site="" device="" printer="none" panel="" token_from="" vuoro_deb="" root="" install=1
need_value() { if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value (see --help)"; fi; }
while [ $# -gt 0 ]; do
  case "$1" in
  --role) need_value "$@" && role="$2" && shift 2 ;;
  --server) need_value "$@" && server="$2" && shift 2 ;;
  --site) need_value "$@" && site="$2" && shift 2 ;;
  --device) need_value "$@" && device="$2" && shift 2 ;;
  --printer) need_value "$@" && printer="$2" && shift 2 ;;
  --panel) need_value "$@" && panel="$2" && shift 2 ;;
  --token-from) need_value "$@" && token_from="$2" && shift 2 ;;
  --vuoro-deb) need_value "$@" && vuoro_deb="$2" && shift 2 ;;
  --root) need_value "$@" && root="$2" && shift 2 ;;
  --no-install) install=0 && shift ;;
  -h | --help) usage && exit 0 ;;
  *) die "unknown argument '$1' (see --help)" ;;
  esac
done

case "$role" in
kiosk | display | counter-display) ;;
"") die "--role is required: kiosk, display or counter-display" ;;
*) die "--role must be kiosk, display or counter-display, not '$role'" ;;
esac
[ -n "$server" ] || die "--server is required, e.g. --server https://vuoro.example.fi"
server="${server%/}"
[[ "$server" =~ ^https?://([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$ ]] ||
  die "--server must be an origin such as https://vuoro.example.fi or http://192.0.2.10:8080 (no path, no query), not '$server'"
# The ids of the config: lowercase letters, digits and '-', 1 to 64 characters (crates/vuoro-engine/src/ids.rs).
id_re='^[a-z0-9-]{1,64}$'
[ -n "$site" ] || die "--site is required (the site's id in the config, e.g. iso-omena)"
[[ "$site" =~ $id_re ]] || die "--site must be an id of lowercase letters, digits and '-', not '$site'"
[ -n "$device" ] || die "--device is required (the kiosk's device id, the display's id or the counter's id)"
[[ "$device" =~ $id_re ]] || die "--device must be an id of lowercase letters, digits and '-', not '$device'"

agent_printer=""
case "$printer" in
none) ;;
usb) agent_printer="file:/dev/vuoro-printer" ;;
tcp:*)
  if ! [[ "$printer" =~ ^tcp:([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):([0-9]{1,5})$ ]] ||
    [ "$((10#${BASH_REMATCH[3]}))" -lt 1 ] || [ "$((10#${BASH_REMATCH[3]}))" -gt 65535 ]; then
    die "--printer tcp:HOST:PORT needs a host name or address and a port 1-65535, not '$printer'"
  fi
  agent_printer="$printer"
  ;;
*) die "--printer must be usb, tcp:HOST:PORT or none, not '$printer'" ;;
esac
[ "$role" = kiosk ] || [ "$printer" = none ] || die "--printer is for a kiosk; a $role prints nothing"
if [ -n "$panel" ]; then
  [ "$role" = display ] || die "--panel is for a hall display"
  [[ "$panel" =~ ^[1-9][0-9]{0,2}(\.[0-9])?$ ]] || die "--panel must be the diagonal in inches, e.g. 55, not '$panel'"
fi
[ -z "$token_from" ] || [ -n "$agent_printer" ] ||
  die "--token-from is for a kiosk with a printer (the print agent); a kiosk's browser is enrolled on its screen"
[ -z "$vuoro_deb" ] || [ -f "$vuoro_deb" ] || die "--vuoro-deb: no such file '$vuoro_deb'"

[ "$(id -u)" -eq 0 ] || die "run as root (it writes under /etc and sets files' owners)"
if [ -n "$root" ]; then
  [ -d "$root" ] || die "--root: no such directory '$root'"
  root="$(cd "$root" && pwd)"
  if [ ! -f "$root/etc/passwd" ] || [ ! -f "$root/etc/group" ]; then
    die "--root $root needs etc/passwd and etc/group (copy the target system's)"
  fi
  install=0
fi

# The print agent's binary: from the package, installed now or before.
if [ -n "$agent_printer" ] && [ ! -x "$root/usr/bin/vuoro" ]; then
  if [ -z "$vuoro_deb" ] || [ "$install" -eq 0 ]; then
    die "the print agent needs /usr/bin/vuoro: install the vuoro package first or give --vuoro-deb FILE"
  fi
fi

# The device token, for the print agent: read before anything is written, checked, kept in memory only.
token=""
token_file="/etc/vuoro/agent.token"
if [ -n "$agent_printer" ]; then
  if [ "$token_from" = "-" ]; then
    token="$(cat)" || die "cannot read the device token from standard input"
  elif [ -n "$token_from" ]; then
    [ -r "$token_from" ] || die "--token-from: cannot read '$token_from'"
    token="$(cat -- "$token_from")"
  elif [ ! -s "$root$token_file" ]; then
    [ -t 0 ] || die "the print agent needs the kiosk's device token: give --token-from FILE, or --token-from - and pipe it in"
    read -rsp "The kiosk's device token (not shown): " token
    echo
  fi
  if [ -n "$token_from" ] || [ ! -s "$root$token_file" ]; then
    token="${token%$'\n'}"
    [[ "$token" =~ ^[A-Za-z0-9._~+/=-]{16,256}$ ]] ||
      die "the device token must be one line of 16 to 256 letters, digits or ._~+/=- (the token the config's token_sha256 is made from)"
  fi
fi

# ---- writing files, only when they differ ---------------------------------------------------------------

changed=()

# The numeric id of a user or group in the target system's passwd or group file.
id_of() { awk -F: -v n="$2" '$1 == n { print $3; found = 1 } END { exit !found }' "$root/etc/$1"; }

# put PATH MODE OWNER GROUP: standard input becomes the file PATH (under the root), written only when its
# content, mode or owner differ (an unchanged file and its folder are not touched); atomically (a
# temporary file in the same folder, then a rename).
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
put() {
  local path="$1" mode="$2" uid gid dest tmp
  uid="$(id_of passwd "$3")" || die "no user $3 in $root/etc/passwd"
  gid="$(id_of group "$4")" || die "no group $4 in $root/etc/group"
  dest="$root$path"
  cat >"$scratch/new"
  if [ -f "$dest" ] && [ ! -L "$dest" ] && cmp -s "$scratch/new" "$dest" &&
    [ "$(stat -c '%a %u %g' "$dest")" = "$mode $uid $gid" ]; then
    rm -f "$scratch/new"
    return
  fi
  mkdir -p "$(dirname "$dest")"
  tmp="$(mktemp "$dest.XXXXXX")"
  cat "$scratch/new" >"$tmp"
  rm -f "$scratch/new"
  chmod "$mode" "$tmp"
  chown "$uid:$gid" "$tmp"
  mv -f "$tmp" "$dest"
  changed+=("$path")
}

# link PATH TARGET: a symbolic link (unit enabling and masking, as systemctl makes them).
link() {
  local dest="$root$1"
  [ -L "$dest" ] && [ "$(readlink "$dest")" = "$2" ] && return
  mkdir -p "$(dirname "$dest")"
  ln -sfn "$2" "$dest"
  changed+=("$1")
}

# folder PATH MODE OWNER GROUP: a folder with this mode and owner.
folder() {
  local path="$1" mode="$2" uid gid dest="$root$1"
  uid="$(id_of passwd "$3")" || die "no user $3 in $root/etc/passwd"
  gid="$(id_of group "$4")" || die "no group $4 in $root/etc/group"
  [ -d "$dest" ] && [ "$(stat -c '%a %u %g' "$dest")" = "$mode $uid $gid" ] && return
  mkdir -p "$dest"
  chmod "$mode" "$dest"
  chown "$uid:$gid" "$dest"
  changed+=("$path")
}

# drop PATH: a file or link of an earlier setup that the arguments no longer ask for.
drop() {
  [ -e "$root$1" ] || [ -L "$root$1" ] || return 0
  rm -f "$root$1"
  changed+=("removed $1")
}

# ---- packages ------------------------------------------------------------------------------------------

packages=(
  chromium cage curl dbus-user-session libpam-systemd
  # Every script the hall's languages use: Latin, Cyrillic and Arabic (Noto Sans, DejaVu), Chinese.
  fonts-noto-core fonts-noto-cjk fonts-dejavu-core fonts-wqy-microhei
  # Sound for the displays' announcements and the kiosk's speech mode.
  pipewire pipewire-pulse wireplumber alsa-utils
)
if [ "$install" -eq 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "$PROG: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    changed+=("packages: ${missing[*]}")
  fi
  if [ -n "$agent_printer" ] && [ ! -x /usr/bin/vuoro ]; then
    # The package enables the daemon's unit; mask it first: a kiosk PC runs no daemon.
    link /etc/systemd/system/vuoro.service /dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$(realpath "$vuoro_deb")"
    changed+=("package: $vuoro_deb")
  fi
fi

# ---- users ---------------------------------------------------------------------------------------------

# useradd --prefix edits the passwd and group files under the root (and makes the home there).
add_user() {
  local name="$1" home="$2" comment="$3"
  id_of passwd "$name" >/dev/null && return
  local prefix=()
  [ -n "$root" ] && prefix=(--prefix "$root")
  useradd "${prefix[@]}" --system --user-group --create-home --home-dir "$home" \
    --shell /usr/sbin/nologin --comment "$comment" "$name"
  changed+=("user $name")
}
add_to_group() {
  local user="$1" group="$2" members
  members="$(awk -F: -v g="$group" '$1 == g { print $4 }' "$root/etc/group")"
  [[ ",$members," == *",$user,"* ]] && return
  local prefix=()
  [ -n "$root" ] && prefix=(--prefix "$root")
  usermod "${prefix[@]}" --append --groups "$group" "$user"
  changed+=("user $user in group $group")
}

screen_user="vuoro-screen"
screen_home="/var/lib/vuoro-screen"
add_user "$screen_user" "$screen_home" "Vuoro screen (Chromium in kiosk mode)"
# The browser's profile keeps the kiosk's device token: its home is its own.
folder "$screen_home" 700 "$screen_user" "$screen_user"
# The screen, GPU and touch devices; logind grants them to the active session too, the groups hold
# when it does not. (No 'audio' group: sound goes through PipeWire in the session.)
for g in video render input; do
  if id_of group "$g" >/dev/null; then add_to_group "$screen_user" "$g"; fi
done
if [ -n "$agent_printer" ]; then
  add_user vuoro-agent /var/lib/vuoro-agent "Vuoro print agent"
fi

# ---- the browser ---------------------------------------------------------------------------------------

case "$role" in
kiosk) url="$server/kiosk/?device=$device" ;;
display) url="$server/display/?site=$site&id=$device${panel:+&panel=$panel}" ;;
counter-display) url="$server/display/counter.html?site=$site&counter=$device" ;;
esac
profile="$screen_home/chromium"

# Chromium's policies: autoplay allowed for the daemon's origin (a display has nobody to tap it; the
# kiosk's warning tone and speech mode), and nothing that asks a passer-by anything.
put /etc/chromium/policies/managed/vuoro.json 644 root root <<EOF
{
  "AutoplayAllowlist": ["$server"],
  "TranslateEnabled": false,
  "PasswordManagerEnabled": false,
  "AutofillAddressEnabled": false,
  "AutofillCreditCardEnabled": false,
  "BrowserSignin": 0,
  "SyncDisabled": true,
  "DefaultNotificationsSetting": 2,
  "DefaultGeolocationSetting": 2,
  "BackgroundModeEnabled": false,
  "MetricsReportingEnabled": false
}
EOF

# The session cage needs: a logind session on tty1 with its runtime folder (pam_systemd).
put /etc/pam.d/vuoro-screen 644 root root <<'EOF'
# The Vuoro screen's session (vuoro-screen.service): a logind session on tty1 for cage and Chromium.
auth     required pam_unix.so nullok
account  required pam_unix.so
session  required pam_unix.so
session  required pam_systemd.so
EOF

put /etc/systemd/system/vuoro-screen.service 644 root root <<EOF
# Written by pc/setup.sh (docs/operations.md, "Kiosk and display PCs"): the Vuoro $role on tty1.
[Unit]
Description=Vuoro $role: Chromium in kiosk mode under cage on tty1
After=systemd-user-sessions.service plymouth-quit-wait.service network-online.target
After=dbus.socket systemd-logind.service getty@tty1.service
Wants=network-online.target dbus.socket systemd-logind.service
Before=graphical.target
# The session takes tty1 over from the login prompt.
Conflicts=getty@tty1.service
ConditionPathExists=/dev/tty0
# A browser that fails 20 times in 10 minutes is left failed; vuoro-screen-retry.timer starts it again
# within 10 minutes, so a crash loop is throttled but never given up.
StartLimitIntervalSec=600
StartLimitBurst=20

[Service]
User=$screen_user
PAMName=vuoro-screen
WorkingDirectory=$screen_home
TTYPath=/dev/tty1
TTYReset=yes
TTYVHangup=yes
TTYVTDisallocate=yes
StandardInput=tty-fail
StandardOutput=journal
StandardError=journal
UtmpIdentifier=tty1
UtmpMode=user
Environment=XDG_SESSION_TYPE=wayland XDG_SESSION_CLASS=user
# Wait (at most a minute) until the daemon answers, so that the first page loads; start anyway after.
ExecStartPre=-/usr/bin/curl --silent --output /dev/null --max-time 5 --retry 30 --retry-delay 2 --retry-all-errors --retry-max-time 60 $server/healthz
# After a power cut the profile says the browser crashed: mark it closed cleanly (no "restore" bubble).
ExecStartPre=-/usr/bin/sed -i -e 's/"exited_cleanly":false/"exited_cleanly":true/' -e 's/"exit_type":"[A-Za-z]*"/"exit_type":"Normal"/' $profile/Default/Preferences
ExecStart=/usr/bin/cage -d -s -- /usr/bin/chromium --ozone-platform=wayland --kiosk --user-data-dir=$profile --no-first-run --no-default-browser-check --noerrdialogs --disable-infobars --disable-session-crashed-bubble --disable-features=Translate --disable-pinch --overscroll-history-navigation=0 --password-store=basic --disable-sync --disable-background-networking --disable-component-update --check-for-update-interval=31536000 "$url"
Restart=always
RestartSec=5s
TimeoutStartSec=120s

[Install]
WantedBy=graphical.target
EOF
link /etc/systemd/system/graphical.target.wants/vuoro-screen.service /etc/systemd/system/vuoro-screen.service
put /etc/systemd/system/vuoro-screen-retry.service 644 root root <<'EOF'
# Written by pc/setup.sh: starts the Vuoro screen again once it has failed past its start limit.
[Unit]
Description=Start the Vuoro screen again after its start limit

[Service]
Type=oneshot
ExecCondition=/usr/bin/systemctl is-failed --quiet vuoro-screen.service
ExecStart=/usr/bin/systemctl reset-failed vuoro-screen.service
ExecStart=/usr/bin/systemctl start --no-block vuoro-screen.service
EOF
put /etc/systemd/system/vuoro-screen-retry.timer 644 root root <<'EOF'
# Written by pc/setup.sh: every 10 minutes, a failed Vuoro screen is started again.
[Unit]
Description=Start the Vuoro screen again after its start limit, every 10 minutes

[Timer]
OnBootSec=10min
OnUnitActiveSec=10min

[Install]
WantedBy=timers.target
EOF
link /etc/systemd/system/timers.target.wants/vuoro-screen-retry.timer /etc/systemd/system/vuoro-screen-retry.timer
# graphical.target is the default target on Debian; set it for a PC installed without a desktop.
link /etc/systemd/system/default.target /usr/lib/systemd/system/graphical.target

# ---- the print agent -----------------------------------------------------------------------------------

if [ -n "$agent_printer" ]; then
  # The token file in place is kept as it is (its mode and owner are set again).
  [ -n "$token" ] || token="$(cat "$root$token_file")"
  put "$token_file" 640 root vuoro-agent <<<"$token"
  if [ "$printer" = usb ]; then
    # A USB printer (interface class 07) through the kernel's usblp driver: /dev/usb/lpN, with the stable
    # name /dev/vuoro-printer, readable and writable by the print agent's group only.
    put /etc/udev/rules.d/60-vuoro-printer.rules 644 root root <<'EOF'
# Written by pc/setup.sh: the kiosk's USB receipt printer (USB interface class 07) as /dev/vuoro-printer,
# for the Vuoro print agent (vuoro-agent.service).
SUBSYSTEM=="usbmisc", KERNEL=="lp[0-9]*", SUBSYSTEMS=="usb", ATTRS{bInterfaceClass}=="07", SYMLINK+="vuoro-printer", GROUP="vuoro-agent", MODE="0660"
EOF
  else
    drop /etc/udev/rules.d/60-vuoro-printer.rules
  fi
  put /etc/systemd/system/vuoro-agent.service 644 root root <<EOF
# Written by pc/setup.sh (docs/operations.md, "Kiosk and display PCs"): this kiosk's print agent.
[Unit]
Description=Vuoro print agent: kiosk $device's receipt printer ($printer)
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec=600
StartLimitBurst=20

[Service]
User=vuoro-agent
Group=vuoro-agent
# The token is read from the file (root-owned, readable by this group), never given as an argument.
ExecStart=/usr/bin/vuoro agent --server $server --device $device --token-file $token_file --printer $agent_printer
Restart=always
RestartSec=5s
StandardError=journal
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true
NoNewPrivileges=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectControlGroups=true
RestrictSUIDSGID=true
LockPersonality=true
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
UMask=0077

[Install]
WantedBy=multi-user.target
EOF
  link /etc/systemd/system/multi-user.target.wants/vuoro-agent.service /etc/systemd/system/vuoro-agent.service
  # The vuoro package enables the daemon's unit: a kiosk PC runs no daemon.
  link /etc/systemd/system/vuoro.service /dev/null
else
  for f in /etc/systemd/system/multi-user.target.wants/vuoro-agent.service /etc/systemd/system/vuoro-agent.service \
    /etc/udev/rules.d/60-vuoro-printer.rules "$token_file"; do
    drop "$f"
  done
fi

# ---- no blanking, no sleep, no automatic updates -------------------------------------------------------

# cage never blanks the screen; the kernel's console does after 10 minutes unless told not to.
put /etc/default/grub.d/vuoro.cfg 644 root root <<'EOF'
# Written by pc/setup.sh: the console never blanks (the Vuoro screen runs on tty1).
GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT consoleblank=0"
EOF
for t in sleep suspend hibernate hybrid-sleep suspend-then-hibernate; do
  link "/etc/systemd/system/$t.target" /dev/null
done
put /etc/systemd/logind.conf.d/vuoro.conf 644 root root <<'EOF'
# Written by pc/setup.sh: a kiosk or display PC never suspends, whatever key or lid.
[Login]
IdleAction=ignore
HandleSuspendKey=ignore
HandleHibernateKey=ignore
HandleLidSwitch=ignore
HandleLidSwitchExternalPower=ignore
HandleLidSwitchDocked=ignore
EOF
# IT updates the PCs on its own schedule: no unattended upgrades, no automatic reboots.
put /etc/apt/apt.conf.d/99vuoro-no-automatic-updates 644 root root <<'EOF'
// Written by pc/setup.sh: IT updates this PC on its own schedule (docs/operations.md, "Kiosk and display PCs").
APT::Periodic::Enable "0";
APT::Periodic::Update-Package-Lists "0";
APT::Periodic::Download-Upgradeable-Packages "0";
APT::Periodic::Unattended-Upgrade "0";
Unattended-Upgrade::Automatic-Reboot "false";
EOF
for t in apt-daily.timer apt-daily-upgrade.timer; do
  link "/etc/systemd/system/$t" /dev/null
done

# ---- applying ------------------------------------------------------------------------------------------

if [ ${#changed[@]} -eq 0 ]; then
  echo "$PROG: nothing changed"
  exit 0
fi
for c in "${changed[@]}"; do echo "$PROG: changed $c"; done
[ -z "$root" ] || exit 0

any() {
  local c p
  for c in "${changed[@]}"; do
    for p in "$@"; do
      # shellcheck disable=SC2254 # $p is a pattern
      case "$c" in $p) return 0 ;; esac
    done
  done
  return 1
}
systemctl daemon-reload
if any '/etc/udev/rules.d/*' 'removed /etc/udev/rules.d/*'; then
  udevadm control --reload
  udevadm trigger --action=add --subsystem-match=usbmisc
fi
if any '/etc/default/grub.d/*' && command -v update-grub >/dev/null; then update-grub; fi
if [ -n "$agent_printer" ]; then
  systemctl restart vuoro-agent.service
elif any 'removed /etc/systemd/system/vuoro-agent.service'; then
  systemctl stop vuoro-agent.service || true
fi
# The screen's session takes tty1 over: it is restarted when it runs, and otherwise started by a reboot,
# so that running this script on tty1 does not end its own login.
if systemctl is-active --quiet vuoro-screen.service; then systemctl restart vuoro-screen.service; fi
echo "$PROG: done. Reboot once (the console's blanking and logind's settings take effect then; the screen starts)."
