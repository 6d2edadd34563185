#!/usr/bin/env bash
# Builds the Debian package and tries it as plant IT would, as root on this machine:
# install, check files, user, group, conffile and unit (systemd-analyze verify), run the
# unit's command under its user with the packaged config, upgrade keeping an edited conffile,
# remove (state kept), purge (state gone). Prints what it checks; exits non-zero on the first
# failure. Needs cargo-deb (`cargo install --locked cargo-deb`) and systemd-analyze.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'deb: %s\n' "$*"; }
fail() { printf 'deb: FAILED: %s\n' "$*" >&2; exit 1; }

say "building (cargo deb)"
deb=$(cargo deb --quiet 2>/dev/null | tail -n 1)
[[ -f "$deb" ]] || deb=$(ls -t target/debian/filmgate_*.deb | head -n 1)
say "package $deb"

# A clean slate (an earlier run on this machine).
dpkg -P filmgate >/dev/null 2>&1 || true

dpkg -i "$deb" >/dev/null
say "installed"
[[ -x /usr/bin/filmgate ]] || fail "/usr/bin/filmgate missing"
[[ -f /etc/filmgate/config.toml ]] || fail "/etc/filmgate/config.toml missing"
[[ -f /lib/systemd/system/filmgate.service || -f /usr/lib/systemd/system/filmgate.service ]] \
    || fail "filmgate.service missing"
unit=$(ls /lib/systemd/system/filmgate.service /usr/lib/systemd/system/filmgate.service 2>/dev/null | head -n 1)
dpkg-query -W -f='${Conffiles}\n' filmgate | grep -q '/etc/filmgate/config.toml' \
    || fail "config.toml is not a conffile"
getent passwd filmgate >/dev/null || fail "no user filmgate"
id -nG filmgate | tr ' ' '\n' | grep -qx dialout || fail "filmgate is not in dialout"
[[ $(stat -c '%U:%G %a' /var/lib/filmgate) == "filmgate:filmgate 750" ]] \
    || fail "/var/lib/filmgate is $(stat -c '%U:%G %a' /var/lib/filmgate)"
[[ $(stat -c '%G %a' /etc/filmgate/config.toml) == "filmgate 640" ]] \
    || fail "config.toml is $(stat -c '%G %a' /etc/filmgate/config.toml)"
grep -q 'port = "/dev/ttyUSB0"' /etc/filmgate/config.toml || fail "no example link on /dev/ttyUSB0"
! grep -q '"sim"' /etc/filmgate/config.toml || fail "the packaged config runs the simulator"
say "files, user filmgate (groups: $(id -nG filmgate)), state dir and conffile as expected"

systemd-analyze verify "$unit"
say "systemd-analyze verify $unit: ok"

# The unit's command, under its user, in its working directory, with the packaged config.
runuser -u filmgate -- /usr/bin/filmgate check-config --config /etc/filmgate/config.toml >/dev/null
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
# setpriv execs the command itself (runuser would stand between it and the signal).
(cd /var/lib/filmgate && exec setpriv --reuid=filmgate --regid=filmgate --init-groups -- \
    $exec_start) 2>/tmp/filmgate-deb.log &
pid=$!
ok=""
for _ in $(seq 1 100); do
    if curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
done
links=$(curl -fsS http://127.0.0.1:8080/api/links/ || true)
kill -TERM "$pid"; wait "$pid" || fail "the service did not stop cleanly: $(cat /tmp/filmgate-deb.log)"
[[ -n "$ok" ]] || fail "the service never answered: $(cat /tmp/filmgate-deb.log)"
[[ -f /var/lib/filmgate/queue.sqlite3 ]] || fail "no queue in /var/lib/filmgate"
[[ $(stat -c '%U' /var/lib/filmgate/queue.sqlite3) == filmgate ]] || fail "queue not owned by filmgate"
say "ran as filmgate with the packaged config: /healthz answered; links: $links"

echo '# edited on site' >>/etc/filmgate/config.toml
dpkg -i "$deb" >/dev/null
grep -q '# edited on site' /etc/filmgate/config.toml || fail "an upgrade overwrote the edited conffile"
say "upgrade kept the edited config"

dpkg -r filmgate >/dev/null
[[ ! -e /usr/bin/filmgate ]] || fail "remove left /usr/bin/filmgate"
[[ -f /var/lib/filmgate/queue.sqlite3 ]] || fail "remove deleted the state"
say "removed: binary gone, state and config kept"

dpkg -P filmgate >/dev/null
[[ ! -e /var/lib/filmgate ]] || fail "purge left /var/lib/filmgate"
[[ ! -e /etc/filmgate/config.toml ]] || fail "purge left the config"
say "purged: state and config gone"
