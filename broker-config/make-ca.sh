#!/usr/bin/env bash
# make-ca.sh: prepare the broker's directory for mosquitto-secure.conf: a
# certificate authority, the broker's server certificate for the given names,
# an empty password file and the ACL.
#
#   make-ca.sh [--dir DIR] [--days N] <name> [<name>...]
#
#   <name>      every DNS name and IP address clients use to reach the broker
#               (the first one is also the certificate's CN and the host
#               add-device.sh puts in MAKERCAST_MQTT_URL); clients check it.
#   --dir DIR   default /etc/mosquitto/makercast
#   --days N    server certificate validity, default 825
#
# Run again to reissue the server certificate (new names, or before it
# expires): an existing CA, password file and ACL are kept. Restart Mosquitto
# afterwards.
#
# Files (owner root; group mosquitto when run as root, since Mosquitto reads
# them only after dropping to that user):
#   DIR/private/ca.key   the CA's key, root only; signs client certificates
#                        (add-device.sh --cert): move it offline if you can
#   DIR/ca.crt           give it to every client (MAKERCAST_MQTT_CA_FILE)
#   DIR/server.crt, DIR/server.key (0640), DIR/passwd (0640), DIR/acl (0640)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=/etc/mosquitto/makercast
days=825
names=()
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--dir) dir=${2:?--dir needs a value}; shift 2 ;;
	--days) days=${2:?--days needs a value}; shift 2 ;;
	-h | --help) usage ;;
	-*) echo "make-ca.sh: unknown option $1" >&2; usage ;;
	*) names+=("$1"); shift ;;
	esac
done
[ ${#names[@]} -gt 0 ] || { echo "make-ca.sh: give the broker's host name(s) and/or IP address(es)" >&2; usage; }
case "$days" in '' | *[!0-9]*) echo "make-ca.sh: --days must be a number" >&2; exit 2 ;; esac
command -v openssl >/dev/null || { echo "make-ca.sh: openssl is not installed" >&2; exit 1; }

san=""
for n in "${names[@]}"; do
	if [[ "$n" =~ ^[0-9.]+$ || "$n" == *:* ]]; then
		san+="${san:+,}IP:$n"
	elif [[ "$n" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$ ]]; then
		san+="${san:+,}DNS:$n"
	else
		echo "make-ca.sh: $n is not a host name or IP address" >&2
		exit 2
	fi
done

# Group mosquitto only when we can hand files to it; otherwise Mosquitto
# runs as the invoking user and reads them as such.
group=""
if [ "$(id -u)" = 0 ] && getent group mosquitto >/dev/null; then
	group=mosquitto
fi
share() { # share <mode> <path>...: readable by Mosquitto, not by others
	local mode=$1; shift
	if [ -n "$group" ]; then chown "root:$group" "$@"; fi
	chmod "$mode" "$@"
}

umask 077
mkdir -p "$dir/private" "$dir/devices"
chmod 0700 "$dir/private" "$dir/devices"
share 0750 "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -s "$dir/private/ca.key" ]; then
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
		-keyout "$dir/private/ca.key" -out "$dir/ca.crt" -days 3650 \
		-subj "/CN=makercast broker CA ${names[0]}" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$tmp/err" ||
		{ cat "$tmp/err" >&2; exit 1; }
	echo "make-ca.sh: new CA in $dir/ca.crt" >&2
else
	echo "make-ca.sh: keeping the CA in $dir/ca.crt" >&2
fi
chmod 0644 "$dir/ca.crt"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$tmp/server.key" -out "$tmp/server.csr" -subj "/CN=${names[0]}" 2>"$tmp/err" ||
	{ cat "$tmp/err" >&2; exit 1; }
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" >"$tmp/ext"
openssl x509 -req -sha256 -in "$tmp/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/private/ca.key" \
	-set_serial "0x$(openssl rand -hex 16)" -days "$days" -extfile "$tmp/ext" -out "$tmp/server.crt" 2>"$tmp/err" ||
	{ cat "$tmp/err" >&2; exit 1; }
mv "$tmp/server.key" "$dir/server.key"
mv "$tmp/server.crt" "$dir/server.crt"
share 0640 "$dir/server.key"
chmod 0644 "$dir/server.crt"
echo "make-ca.sh: server certificate for $san in $dir/server.crt" >&2

[ -e "$dir/passwd" ] || : >"$dir/passwd"
share 0640 "$dir/passwd"
if [ ! -e "$dir/acl" ]; then
	cp "$here/acl" "$dir/acl"
fi
share 0640 "$dir/acl"

cat >&2 <<EOF
Next:
  cp $here/mosquitto-secure.conf /etc/mosquitto/conf.d/makercast.conf   (paths in it: /etc/mosquitto/makercast)
  $here/add-device.sh --dir $dir --user homeassistant
  $here/add-device.sh --dir $dir <device-id>
  systemctl restart mosquitto
EOF
