#!/usr/bin/env bash
# Throw-away development credentials for a hacache cluster: a CA, one certificate + key per node
# (SANs: the node's host, localhost, 127.0.0.1, ::1), and a peer token file. NOT for production:
# the CA key sits next to the certificates and nothing is protected by a passphrase.
#
#   scripts/dev-certs.sh DIR [N]            N nodes (default 3), named node-0 .. node-N-1
#   scripts/dev-certs.sh DIR --hosts a,b,c  one certificate per host name (SAN DNS:<host>)
#   options: --days D (default 30)
#
# Writes DIR/ca.crt, DIR/ca.key, DIR/<name>.crt, DIR/<name>.key, DIR/token (two lines: the
# current token and a spare, for rotation drills). Existing files are replaced.
set -euo pipefail

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
dir="$1"; shift
n=3 hosts="" days=30
while [ $# -gt 0 ]; do
    case "$1" in
    --hosts) hosts="$2"; shift ;;
    --days) days="$2"; shift ;;
    -h|--help) usage ;;
    [0-9]*) n="$1" ;;
    *) echo "dev-certs.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
command -v openssl >/dev/null || { echo "dev-certs.sh: openssl is required (apt-get install openssl)" >&2; exit 1; }

names=()
if [ -n "$hosts" ]; then
    IFS=',' read -r -a names <<<"$hosts"
else
    for ((i = 0; i < n; i++)); do names+=("node-$i"); done
fi

mkdir -p "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
    -subj "/CN=hacache dev CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null

for name in "${names[@]}"; do
    san="DNS:$name,DNS:localhost,IP:127.0.0.1,IP:::1"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
        -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -days "$days" -out "$dir/$name.crt" \
        -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' "$san") \
        2>/dev/null
    rm -f "$dir/$name.csr"
done
rm -f "$dir/ca.srl"
# 32 random bytes, hex: well above the 16-byte minimum
{ openssl rand -hex 32; openssl rand -hex 32; } >"$dir/token"
chmod 600 "$dir"/*.key "$dir/token"
chmod 644 "$dir"/*.crt
echo "dev credentials for ${names[*]} in $dir (CA: $dir/ca.crt, token file: $dir/token)"
