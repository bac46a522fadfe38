#!/usr/bin/env bash
# Makes what deploy/compose/docker-compose.yml mounts at /etc/assay: a CA (ca.pem), the coordinator's
# certificate for the names "coordinator" and "localhost" and 127.0.0.1 (server.pem, server.key),
# a token file (tokens) with a worker token (worker-token) and a client token (client-token).
#   deploy/compose/make-secrets.sh DIR
set -euo pipefail
dir=${1:?usage: $0 DIR}
mkdir -p "$dir"
cd "$dir"
openssl ecparam -name prime256v1 -out params.pem
openssl req -x509 -newkey ec:params.pem -nodes -keyout ca.key -out ca.pem -days 365 -subj "/CN=assay compose CA" 2>/dev/null
openssl req -newkey ec:params.pem -nodes -keyout server.key -out server.csr -subj "/CN=coordinator" 2>/dev/null
echo "subjectAltName=DNS:coordinator,DNS:localhost,IP:127.0.0.1" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 365 \
  -extfile server.ext 2>/dev/null
worker=$(openssl rand -hex 16)
client=$(openssl rand -hex 16)
printf '%s worker,cache-read,cache-write\n%s submit,read,admin,cache-read,cache-write\n' "$worker" "$client" > tokens
echo "$worker" > worker-token
echo "$client" > client-token
rm -f server.csr server.ext params.pem ca.srl
chmod 644 ca.pem server.pem
chmod 600 ca.key server.key tokens worker-token client-token
echo "secrets in $dir"
