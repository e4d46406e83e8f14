#!/usr/bin/env bash
# `make run`: a local Mosquitto and nginx-rtmp on loopback, and the agent
# with the test camera streaming to that nginx. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
MQTT_PORT=${MQTT_PORT:-1883}
RTMP_PORT=${RTMP_PORT:-1935}
HTTP_PORT=${HTTP_PORT:-8080}
DEVICE=${MAKERCAST_DEVICE_ID:-demo}
run=$PWD/.run
rm -rf "$run" && mkdir -p "$run/nginx/tmp"

for port in "$MQTT_PORT" "$RTMP_PORT" "$HTTP_PORT"; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "port $port is in use; set MQTT_PORT, RTMP_PORT or HTTP_PORT to free ones" >&2
    exit 1
  fi
done

pids=()
agent=""
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  # The agent first, so it can stop its streams and say offline on MQTT.
  if [ -n "$agent" ]; then kill "$agent" 2>/dev/null || true; wait "$agent" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

sed "s/listener 1883 127.0.0.1/listener $MQTT_PORT 127.0.0.1/" broker-config/mosquitto-dev.conf > "$run/mosquitto.conf"
# setsid: Ctrl-C reaches the whole foreground process group; the servers must
# outlive the agent long enough for it to stop its stream and say offline.
setsid mosquitto -c "$run/mosquitto.conf" 2>"$run/mosquitto.log" &
pids+=($!)
sed -e "s#__PREFIX__#$run/nginx#g" -e "s/__RTMP_PORT__/$RTMP_PORT/" -e "s/__HTTP_PORT__/$HTTP_PORT/" \
  examples/nginx-rtmp/nginx.conf.tmpl > "$run/nginx/nginx.conf"
setsid /usr/sbin/nginx -p "$run/nginx" -c "$run/nginx/nginx.conf" 2>"$run/nginx.log" &
pids+=($!)
sleep 0.5

export MAKERCAST_DEVICE_ID=$DEVICE
export MAKERCAST_MQTT_URL=tcp://127.0.0.1:$MQTT_PORT
export MAKERCAST_CAMERAS=${MAKERCAST_CAMERAS:-test}
export MAKERCAST_STREAM_URL=${MAKERCAST_STREAM_URL:-rtmp://127.0.0.1:$RTMP_PORT/live}
export MAKERCAST_STREAM_KEY=${MAKERCAST_STREAM_KEY:-demo}
export MAKERCAST_X264_PRESET=${MAKERCAST_X264_PRESET:-veryfast}
export MAKERCAST_MEDIA_DIR=${MAKERCAST_MEDIA_DIR:-$run/media}
bin/makercast-agent &
agent=$!

cat <<MSG

  makercast is running: Mosquitto on 127.0.0.1:$MQTT_PORT, nginx-rtmp on 127.0.0.1:$RTMP_PORT.

  Go live:   mosquitto_pub -p $MQTT_PORT -t makercast/$DEVICE/camera/test/stream/set -m ON
  Watch:     ffplay rtmp://127.0.0.1:$RTMP_PORT/live/demo      (or VLC: Media > Open Network Stream)
  State:     mosquitto_sub -p $MQTT_PORT -t 'makercast/$DEVICE/#' -v
  Stop:      mosquitto_pub -p $MQTT_PORT -t makercast/$DEVICE/camera/test/stream/set -m OFF
  Stats:     http://127.0.0.1:$HTTP_PORT/stat

  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}" "$agent"
