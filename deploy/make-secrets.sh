#!/usr/bin/env bash
# Makes the two secret files docker-compose.yml mounts, once:
#   deploy/secrets/root-secret  the cluster root secret: 48 random bytes, base64 (0600)
#   deploy/secrets/api-tokens   the api's tokens file, with one admin token (0600)
# The admin token itself is printed once, here, and stored nowhere (the file holds its SHA-256).
# Existing files are kept: a new root secret would make the worker's stores unreadable.
#
# The token line comes from the real CLI (`chango-backup token new`): from this checkout when it
# is built (`npm ci && npm run build`), otherwise from the image (`docker build`).
#
# Settings: CHANGO_SECRETS_DIR (default deploy/secrets), CHANGO_TOKEN_NAME (default ops).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secrets_dir="${CHANGO_SECRETS_DIR:-deploy/secrets}"
token_name="${CHANGO_TOKEN_NAME:-ops}"
image=chango-backup:local   # the tag docker-compose.yml gives the image
container_uid=10001         # the image's user `chango` (Dockerfile)
root_secret="$secrets_dir/root-secret"
api_tokens="$secrets_dir/api-tokens"

umask 077
mkdir -p "$secrets_dir"

if [[ -e "$root_secret" ]]; then
  echo "make-secrets: keeping $root_secret (the stores were made with it)" >&2
else
  head -c 48 /dev/urandom | base64 | tr -d '\n' >"$root_secret.tmp"
  echo >>"$root_secret.tmp"
  chmod 0600 "$root_secret.tmp"
  mv "$root_secret.tmp" "$root_secret"
  echo "make-secrets: wrote $root_secret — keep a copy out of band: a backup restores only with it" >&2
fi

new_token() {
  if [[ -f apps/cli/dist/main.js && -d node_modules ]] && command -v node >/dev/null 2>&1; then
    node apps/cli/dist/main.js token new --name "$token_name" --role admin
  elif command -v docker >/dev/null 2>&1; then
    echo "make-secrets: no built CLI here; building the image $image to run it" >&2
    docker build -q -t "$image" . >&2
    docker run --rm "$image" node apps/cli/dist/main.js token new --name "$token_name" --role admin
  else
    echo "make-secrets: need either a built checkout (npm ci && npm run build) or docker to run 'chango-backup token new'" >&2
    return 1
  fi
}

if [[ -e "$api_tokens" ]]; then
  echo "make-secrets: keeping $api_tokens (add a token: chango-backup token new --name N --role R, append its line, then docker compose kill -s HUP api)" >&2
else
  out="$(new_token)"
  token="$(sed -n 's/^token (shown once, keep it secret): *//p' <<<"$out")"
  line="$(sed -n 's/^tokens file line: *//p' <<<"$out")"
  if [[ ! "$line" =~ ^[A-Za-z0-9._@-]+\ admin\ sha256:[0-9a-f]{64}$ || -z "$token" ]]; then
    echo "make-secrets: unexpected output from 'chango-backup token new'" >&2
    exit 1
  fi
  {
    echo "# chango-backup api tokens: <name> <role> sha256:<hex of the token's SHA-256>"
    echo "$line"
  } >"$api_tokens.tmp"
  chmod 0600 "$api_tokens.tmp"
  mv "$api_tokens.tmp" "$api_tokens"
  echo "make-secrets: wrote $api_tokens" >&2
  echo "admin token for the api (shown once, keep it secret): $token"
fi

# Compose bind-mounts secret files with their host owner and mode (its uid/gid/mode settings
# apply to Swarm only), and the api and worker run as uid $container_uid.
if [[ $(id -u) -eq 0 ]]; then
  chown "$container_uid:$container_uid" "$root_secret" "$api_tokens"
elif [[ $(id -u) -ne $container_uid ]]; then
  echo "make-secrets: on a Linux Docker engine the containers (uid $container_uid) cannot read these 0600 files until:" >&2
  echo "  sudo chown $container_uid:$container_uid $root_secret $api_tokens" >&2
fi
