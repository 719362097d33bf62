#!/usr/bin/env bash
# Make sure local PostgreSQL and RabbitMQ answer; start them if they are installed but down.
# Settings come from FEEDSYNC_DATABASE_URL / FEEDSYNC_BROKER_URL only through their defaults:
# this script checks the local services the defaults point at.
set -u

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432 (see deploy/compose.yaml)" >&2; exit 1; }

if ! rabbit_up; then
  if command -v rabbitmq-server >/dev/null 2>&1; then
    echo "starting RabbitMQ"
    rabbitmq-server -detached || true
  fi
  for _ in $(seq 1 60); do rabbit_up && break; sleep 1; done
fi
rabbit_up || { echo "RabbitMQ is not reachable on 127.0.0.1:5672 (see deploy/compose.yaml)" >&2; exit 1; }
# The port opens before the broker accepts work; wait until the app is running.
if command -v rabbitmqctl >/dev/null 2>&1; then
  for _ in $(seq 1 60); do rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 1; done
fi
echo "PostgreSQL and RabbitMQ are up"
