# Sourced by the ensure-*.sh scripts: install Debian packages when we may, or say in one sentence
# how to get them. Usage: apt_install "<what needs them>" "<how else>" PACKAGE...
apt_updated=0
apt_install() {
  local why=$1 otherwise=$2
  shift 2
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "$why needs the Debian package(s) $*: install them (apt-get install $*)${otherwise:+, or $otherwise}." >&2
    return 1
  fi
  echo "installing $* for $why"
  if [ "$apt_updated" -eq 0 ]; then
    apt-get update -qq || return 1
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || return 1
}
