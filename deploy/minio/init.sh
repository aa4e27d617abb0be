#!/bin/sh
# One-shot job of the `minio` profile, run on every `up`: the bucket, the app's own MinIO user
# whose policy reaches only that bucket (the app never holds the root credentials), and the
# reference sample as s3://decisum/sample.csv. Every step may run again.
set -eu

fail() {
  echo "minio-init: $*" >&2
  exit 1
}

root_user=${MINIO_ROOT_USER:-}
root_password=${MINIO_ROOT_PASSWORD:-}
app_key=${APP_ACCESS_KEY:-}
app_secret=${APP_SECRET_KEY:-}
seed=${SEED_DIR:-/seed}

[ -n "$root_user" ] || fail "MINIO_ROOT_USER is empty: set it in .env"
[ "${#root_password}" -ge 8 ] || fail "MINIO_ROOT_PASSWORD must have 8 characters or more: set it in .env"
[ -n "$app_key" ] || fail "AWS_ACCESS_KEY_ID is empty: with the minio profile it names the app's MinIO user; set it in .env"
[ "${#app_secret}" -ge 8 ] || fail "AWS_SECRET_ACCESS_KEY must have 8 characters or more: set it in .env"
[ "$app_key" != "$root_user" ] || fail "AWS_ACCESS_KEY_ID is the MinIO root user: give the app a user of its own"

mc alias set local "${MINIO_URL:-http://minio:9000}" "$root_user" "$root_password" >/dev/null
mc mb --ignore-existing local/decisum
mc admin policy create local decisum-app "$seed/decisum-app-policy.json"
mc admin user add local "$app_key" "$app_secret"
mc admin policy attach local decisum-app --user "$app_key"
mc cp "$seed/sample.csv" local/decisum/sample.csv
echo "minio-init: bucket decisum ready; user $app_key may use only it"
