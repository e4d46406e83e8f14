// Package brokerconfig holds no code: its tests start Mosquitto from the
// configurations and scripts in this directory (mosquitto-dev.conf for
// development; mosquitto-secure.conf, acl, make-ca.sh and add-device.sh for
// a real network) and check what they promise, with the real agent.
package brokerconfig
