#!/bin/sh
# Starts the hosted inbox: makes its host key once (kept in the /etc/feedsync/inbox volume, so the
# fingerprint HR systems pinned stays), creates the upload accounts listed in INBOX_USERS
# ("name name2"; keys in authorized_keys/<name>, passwords as <NAME>_PASSWORD), then runs sshd.
set -eu
dir=/etc/feedsync/inbox
[ -f "$dir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/ssh_host_ed25519_key"
ssh-keygen -lf "$dir/ssh_host_ed25519_key.pub"
for user in ${INBOX_USERS:-}; do
  id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --gid feedsync-inbox --shell /usr/sbin/nologin "$user"
  secret=$(printenv "$(echo "$user" | tr 'a-z-' 'A-Z_')_PASSWORD" || true)
  if [ -n "$secret" ]; then printf '%s:%s\n' "$user" "$secret" | chpasswd; else usermod -p '*' "$user"; fi
done
chown root:root /srv/feedsync/drop && chmod 0755 /srv/feedsync/drop
install -d -g feedsync-inbox -m 2770 /srv/feedsync/drop/import/user/internal
sshd -t -f "$dir/sshd_config"
exec /usr/sbin/sshd -D -e -f "$dir/sshd_config"
