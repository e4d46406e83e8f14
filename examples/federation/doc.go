// Package federation holds no code: its tests start the federation example
// for real (bridge.conf and federation.acl on three Mosquittos, and
// examples/nginx-rtmp/hub.conf.tmpl between two nginx-rtmp servers).
package federation
