// Package homeassistant builds Home Assistant MQTT discovery messages for a
// makercast device, as pure functions of a Model: it never talks to a
// broker. The caller publishes what Discovery returns as retained messages
// and clears, with an empty retained payload, the topics Stale names.
//
// Every entity is linked to one Home Assistant device (identifiers
// ["makercast_<device id>"]) and follows the agent's availability topic, so
// the whole device goes unavailable when the agent's last will fires. Names
// follow Home Assistant's has_entity_name rule: an entity's name is only its
// own part ("test stream"); Home Assistant puts the device name in front.
//
// Check validates one discovery message against the rules Home Assistant's
// MQTT integration applies (topic form, known keys, required keys, device
// classes, entity categories and so on). The rules live in one table per
// platform in rules.go; README.md in this directory says where each group of
// rules comes from.
package homeassistant
