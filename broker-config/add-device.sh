#!/usr/bin/env bash
# add-device.sh: give a Pi (or a tool) its own credentials on the broker set
# up by make-ca.sh, and print the Pi's MAKERCAST_ variables.
#
#   add-device.sh [--dir DIR] [--url URL] [--pi-dir PATH] [--cert [--days N]] <device-id>
#   add-device.sh [--dir DIR] --user <name>
#
#   <device-id>   the Pi's MAKERCAST_DEVICE_ID, which is also its MQTT user
#                 name: the ACL's patterns give user X the topics of device X
#   --cert        a client certificate (CN = device id, signed by the CA)
#                 instead of a password; the Pi then uses the listener on 8885
#   --days N      certificate validity, default 825
#   --url URL     broker URL for the Pi, default ssl://<server certificate's
#                 CN>:8883 (8885 with --cert)
#   --pi-dir PATH where the files will be on the Pi, default /etc/makercast
#   --user NAME   a password for a user that is not a device: homeassistant,
#                 nodered (their rights are in the ACL), a federation space
#   --dir DIR     default /etc/mosquitto/makercast
#
# The variables go to stdout (add-device.sh pi1 > pi1.env), explanations to
# stderr. The files the Pi needs (ca.crt, the certificate and key or the
# password, makercast.env) are put in DIR/devices/<id>/, root only: copy that
# directory to the Pi as --pi-dir, then delete it here. Reload Mosquitto
# (systemctl reload mosquitto) for a new password to be accepted.
#
# Take a device out of service: mosquitto_passwd -D DIR/passwd <id>; for a
# certificate, add "user <id>" and "topic deny #" to DIR/acl (the
# certificate itself stays valid until it expires). Reload Mosquitto.
set -euo pipefail

dir=/etc/mosquitto/makercast
url=""
pidir=/etc/makercast
cert=false
days=825
user=""
id=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--dir) dir=${2:?--dir needs a value}; shift 2 ;;
	--url) url=${2:?--url needs a value}; shift 2 ;;
	--pi-dir) pidir=${2:?--pi-dir needs a value}; shift 2 ;;
	--cert) cert=true; shift ;;
	--days) days=${2:?--days needs a value}; shift 2 ;;
	--user) user=${2:?--user needs a value}; shift 2 ;;
	-h | --help) usage ;;
	-*) echo "add-device.sh: unknown option $1" >&2; usage ;;
	*) [ -z "$id" ] || usage; id=$1; shift ;;
	esac
done
for tool in openssl mosquitto_passwd; do
	command -v "$tool" >/dev/null || { echo "add-device.sh: $tool is not installed" >&2; exit 1; }
done
[ -s "$dir/ca.crt" ] && [ -e "$dir/passwd" ] ||
	{ echo "add-device.sh: $dir has no CA or password file: run make-ca.sh first" >&2; exit 1; }
case "$days" in '' | *[!0-9]*) echo "add-device.sh: --days must be a number" >&2; exit 2 ;; esac

group=""
if [ "$(id -u)" = 0 ] && getent group mosquitto >/dev/null; then
	group=mosquitto
fi
share() { # readable by Mosquitto, which reads them after dropping to its user
	if [ -n "$group" ]; then chown "root:$group" "$@"; fi
	chmod 0640 "$@"
}
known() { cut -d: -f1 "$dir/passwd" | grep -qxF "$1"; }
# setpw <user> <password>: mosquitto_passwd reads it from stdin, so it never
# shows in the process list. It rewrites the file: share it again.
setpw() {
	printf '%s\n%s\n' "$2" "$2" | mosquitto_passwd "$dir/passwd" "$1" >/dev/null
	share "$dir/passwd"
}
umask 077

if [ -n "$user" ]; then
	[ -z "$id" ] && [ "$cert" = false ] || usage
	[[ "$user" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] ||
		{ echo "add-device.sh: user name $user: use letters, digits, _ . -" >&2; exit 2; }
	if known "$user"; then
		echo "add-device.sh: $user already has a password; this sets a new one" >&2
	fi
	pw=$(openssl rand -hex 16)
	setpw "$user" "$pw"
	echo "add-device.sh: password for $user set; reload Mosquitto (systemctl reload mosquitto)" >&2
	echo "MQTT_USERNAME=$user"
	echo "MQTT_PASSWORD=$pw"
	exit 0
fi

[ -n "$id" ] || usage
if ! [[ "$id" =~ ^[a-z0-9][a-z0-9_-]{0,31}$ ]]; then
	echo "add-device.sh: device id $id must be 1-32 of a-z, 0-9, - and _, starting with a letter or digit (as MAKERCAST_DEVICE_ID)" >&2
	exit 2
fi
# A user named in the ACL has rights of its own: a device must not get them.
if grep -Eq "^[[:space:]]*user[[:space:]]+$id[[:space:]]*$" "$dir/acl" 2>/dev/null; then
	echo "add-device.sh: $id has its own lines in $dir/acl (a tool's user, or a device taken out of service); pick another id" >&2
	exit 1
fi
bundle=$dir/devices/$id
if known "$id" || [ -e "$bundle" ]; then
	echo "add-device.sh: device $id exists (in $dir/passwd or $bundle); remove it first" >&2
	exit 1
fi
if [ -z "$url" ]; then
	host=$(openssl x509 -in "$dir/server.crt" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p')
	[ -n "$host" ] || { echo "add-device.sh: no CN in $dir/server.crt; give --url" >&2; exit 1; }
	if [ "$cert" = true ]; then url=ssl://$host:8885; else url=ssl://$host:8883; fi
fi

mkdir -p "$bundle"
chmod 0700 "$bundle"
cp "$dir/ca.crt" "$bundle/ca.crt"
chmod 0644 "$bundle/ca.crt"
{
	echo "MAKERCAST_DEVICE_ID=$id"
	echo "MAKERCAST_MQTT_URL=$url"
	echo "MAKERCAST_MQTT_CA_FILE=$pidir/ca.crt"
} >"$bundle/makercast.env"

if [ "$cert" = true ]; then
	[ -s "$dir/private/ca.key" ] || { echo "add-device.sh: no CA key in $dir/private/ca.key" >&2; exit 1; }
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$bundle/$id.key" -out "$tmp/csr" -subj "/CN=$id" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$tmp/ext"
	openssl x509 -req -sha256 -in "$tmp/csr" -CA "$dir/ca.crt" -CAkey "$dir/private/ca.key" \
		-set_serial "0x$(openssl rand -hex 16)" -days "$days" -extfile "$tmp/ext" -out "$bundle/$id.crt" 2>"$tmp/err" ||
		{ cat "$tmp/err" >&2; exit 1; }
	chmod 0600 "$bundle/$id.key"
	chmod 0644 "$bundle/$id.crt"
	{
		echo "MAKERCAST_MQTT_CERT_FILE=$pidir/$id.crt"
		echo "MAKERCAST_MQTT_KEY_FILE=$pidir/$id.key"
	} >>"$bundle/makercast.env"
	echo "add-device.sh: client certificate for $id (valid $days days) in $bundle" >&2
else
	pw=$(openssl rand -hex 16)
	setpw "$id" "$pw"
	printf '%s\n' "$pw" >"$bundle/mqtt-password"
	{
		echo "MAKERCAST_MQTT_USERNAME=$id"
		echo "MAKERCAST_MQTT_PASSWORD=$pw"
	} >>"$bundle/makercast.env"
	echo "add-device.sh: password for $id set (also in $bundle/mqtt-password, for MAKERCAST_MQTT_PASSWORD_FILE=$pidir/mqtt-password); reload Mosquitto (systemctl reload mosquitto)" >&2
fi
chmod 0600 "$bundle/makercast.env"
echo "add-device.sh: copy $bundle/ to the Pi as $pidir/ (root only), then delete it here. The Pi's variables:" >&2
cat "$bundle/makercast.env"
