#!/usr/bin/env bash
# Makes sure Redis (6379) and RabbitMQ (5672) listen on this machine: installs them with apt where
# missing and starts them where stopped. Used by `npm start` and .ci/run; needs root.
# A Redis already listening is left as it is; the one started here keeps an append-only file,
# fsynced on every write, in the project's var/redis, so a restart loses no job.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
apt_updated=
need() {
  command -v "$1" >/dev/null 2>&1 && return
  [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

if ! listening 6379; then
  need redis-server redis-server
  mkdir -p "$root/var/redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly yes --appendfsync always \
    --dir "$root/var/redis" --logfile "$root/var/redis/redis.log"
fi
if ! listening 5672; then
  need rabbitmq-server rabbitmq-server
  rabbitmq-server -detached || true
  for _ in $(seq 1 120); do listening 5672 && break; sleep 1; done
  rabbitmqctl await_startup >/dev/null
fi
for _ in $(seq 1 30); do listening 6379 && break; sleep 1; done
listening 6379 || { echo "redis did not start" >&2; exit 1; }
listening 5672 || { echo "rabbitmq did not start" >&2; exit 1; }
echo "redis and rabbitmq are listening"
