#!/usr/bin/env bash
# Make sure local PostgreSQL and RabbitMQ answer. Start them if they are installed but down; install
# them with apt first when they are missing and we run as root. Otherwise stop with one sentence.
# This script checks the local services feedsync's default URLs point at
# (postgresql://postgres@127.0.0.1:5432, amqp://guest:guest@127.0.0.1:5672).
set -u
. "$(dirname "$0")/apt-install.sh"

COMPOSE="docker compose -f deploy/compose.yaml up"
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
pg_cluster() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n1; }

if ! pg_up; then
  if [ -z "$(pg_cluster)" ] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt_install "feedsync's database" "run $COMPOSE" postgresql || exit 1
    version=$(pg_cluster)
    [ -f "/etc/postgresql/$version/main/postgresql.conf" ] || pg_createcluster "$version" main >/dev/null || exit 1
    # Debian's initdb makes the postgres role, the one the default URL names. On a cluster we just
    # made for this machine's demo and tests it signs in over 127.0.0.1 without a password, as on
    # the developers' machines. Never done to an existing cluster.
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
  fi
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(pg_cluster)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432: start it, or run $COMPOSE." >&2; exit 1; }
if ! rabbit_up; then
  if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
    apt_install "feedsync's message broker" "run $COMPOSE" rabbitmq-server || exit 1
  fi
  echo "starting RabbitMQ"
  PATH="$PATH:/usr/sbin" rabbitmq-server -detached || true
  for _ in $(seq 1 60); do rabbit_up && break; sleep 1; done
fi
rabbit_up || { echo "RabbitMQ is not reachable on 127.0.0.1:5672: start it, or run $COMPOSE." >&2; exit 1; }
# The port opens before the broker accepts work; wait until the app is running.
if command -v rabbitmqctl >/dev/null 2>&1; then
  for _ in $(seq 1 60); do rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 1; done
fi
echo "PostgreSQL and RabbitMQ are up"
