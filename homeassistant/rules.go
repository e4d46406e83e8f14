package homeassistant

import (
	"errors"
	"fmt"
)

// This file is the rule data Check applies: the keys each MQTT platform
// accepts, which of them are required, the device classes it knows and its
// cross-field rules. The sources are Home Assistant's MQTT integration
// (homeassistant/components/mqtt: schemas.py, config.py and one module per
// platform) and its documentation (home-assistant.io/integrations/mqtt and
// /integrations/<platform>.mqtt); README.md lists them per group. To support
// a new platform, add its table to platforms.

// kind is the type of value a key takes.
type kind uint8

const (
	kString       kind = iota + 1 // a string
	kNullString                   // a string or null (name, unit_of_measurement)
	kBool                         // true or false
	kUint                         // an integer >= 0
	kNumber                       // any number
	kQoS                          // 0, 1 or 2
	kTemplate                     // a Jinja template string
	kSubTopic                     // an MQTT topic or filter to subscribe to
	kPubTopic                     // an MQTT topic to publish to (no wildcards)
	kIcon                         // "prefix:name", e.g. mdi:broadcast
	kURL                          // an http(s) URL
	kStringList                   // a non-empty list of strings
	kDeviceClass                  // one of the platform's device classes, or null
	kCategory                     // entity_category: config or diagnostic
	kEntityID                     // default_entity_id: <component>.<object id>
	kDevice                       // the device block
	kOrigin                       // the origin block
	kAvailability                 // the availability list
	kAvailMode                    // availability_mode: all, any or latest
)

// platformRules is the table of one MQTT platform.
type platformRules struct {
	// keys the platform accepts besides commonKeys.
	keys map[string]kind
	// required keys.
	required []string
	// deviceClasses the platform knows; a platform with none has no
	// device_class key.
	deviceClasses []string
	// noConfigCategory: Home Assistant refuses entity_category "config"
	// (read-only platforms: sensor, binary_sensor).
	noConfigCategory bool
	// check applies the platform's cross-field rules, or is nil.
	check func(cfg map[string]any) error
}

// commonKeys are accepted on every entity platform: availability, the
// entity options of MQTT_ENTITY_COMMON_SCHEMA and qos/encoding/group of
// MQTT_BASE_SCHEMA. message_expiry_interval, visible_by_default and group
// are newer than default_entity_id (2025.10); older releases drop them.
var commonKeys = map[string]kind{
	"availability":             kAvailability,
	"availability_mode":        kAvailMode,
	"availability_template":    kTemplate,
	"availability_topic":       kSubTopic,
	"payload_available":        kString,
	"payload_not_available":    kString,
	"device":                   kDevice,
	"origin":                   kOrigin,
	"default_entity_id":        kEntityID,
	"enabled_by_default":       kBool,
	"entity_category":          kCategory,
	"entity_picture":           kURL,
	"icon":                     kIcon,
	"json_attributes_topic":    kSubTopic,
	"json_attributes_template": kTemplate,
	"unique_id":                kString,
	"message_expiry_interval":  kUint,
	"visible_by_default":       kBool,
	"qos":                      kQoS,
	"encoding":                 kString,
	"group":                    kStringList,
}

// deviceKeys are the keys of the device block (MQTT_ENTITY_DEVICE_INFO_SCHEMA).
// Unlike the top level, this block rejects unknown keys.
var deviceKeys = map[string]kind{
	"identifiers":       kStringList, // a string is accepted too, see checkDevice
	"connections":       kStringList, // list of [type, id] pairs, see checkDevice
	"manufacturer":      kString,
	"model":             kString,
	"model_id":          kString,
	"name":              kString,
	"hw_version":        kString,
	"serial_number":     kString,
	"sw_version":        kString,
	"via_device":        kString,
	"suggested_area":    kString,
	"configuration_url": kURL,
}

// originKeys are the keys of the origin block (MQTT_ORIGIN_INFO_SCHEMA).
var originKeys = map[string]kind{
	"name":        kString,
	"sw_version":  kString,
	"support_url": kURL,
}

// availabilityKeys are the keys of one entry of the availability list.
var availabilityKeys = map[string]kind{
	"topic":                 kSubTopic,
	"payload_available":     kString,
	"payload_not_available": kString,
	"value_template":        kTemplate,
}

// haComponents are the discovery components Home Assistant knows
// (const.py SUPPORTED_COMPONENTS). Check has rules for some of them only.
var haComponents = []string{
	"alarm_control_panel", "binary_sensor", "button", "camera", "climate",
	"cover", "date", "datetime", "device_automation", "device_tracker",
	"event", "fan", "humidifier", "image", "lawn_mower", "light", "lock",
	"notify", "number", "scene", "siren", "select", "sensor", "switch",
	"tag", "text", "time", "update", "vacuum", "valve", "water_heater",
}

// withKeys merges key tables; later ones win.
func withKeys(tables ...map[string]kind) map[string]kind {
	out := map[string]kind{}
	for _, t := range tables {
		for k, v := range t {
			out[k] = v
		}
	}
	return out
}

// roKeys is MQTT_RO_SCHEMA: read-only platforms need a state_topic.
var roKeys = map[string]kind{
	"state_topic":    kSubTopic,
	"value_template": kTemplate,
}

// rwKeys is MQTT_RW_SCHEMA: read-write platforms need a command_topic.
var rwKeys = map[string]kind{
	"command_topic": kPubTopic,
	"optimistic":    kBool,
	"retain":        kBool,
	"state_topic":   kSubTopic,
}

// sensorDeviceClasses are SensorDeviceClass's values.
var sensorDeviceClasses = []string{
	// non-numeric
	"date", "enum", "timestamp",
	// numeric
	"absolute_humidity", "apparent_power", "aqi", "area", "atmospheric_pressure",
	"battery", "blood_glucose_concentration", "carbon_dioxide", "carbon_monoxide",
	"conductivity", "current", "data_rate", "data_size", "distance", "duration",
	"energy", "energy_distance", "energy_storage", "frequency", "gas", "humidity",
	"illuminance", "irradiance", "moisture", "monetary", "nitrogen_dioxide",
	"nitrogen_monoxide", "nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25",
	"pm4", "power", "power_factor", "precipitation", "precipitation_intensity",
	"pressure", "reactive_energy", "reactive_power", "signal_strength",
	"sound_pressure", "speed", "sulphur_dioxide", "temperature",
	"temperature_delta", "volatile_organic_compounds",
	"volatile_organic_compounds_parts", "voltage", "volume", "volume_flow_rate",
	"volume_storage", "water", "weight", "wind_direction", "wind_speed",
}

// nonNumericSensorClasses take neither a unit nor a state class.
var nonNumericSensorClasses = []string{"date", "enum", "timestamp"}

// numberDeviceClasses are NumberDeviceClass's values: the numeric sensor
// classes.
var numberDeviceClasses = sensorDeviceClasses[len(nonNumericSensorClasses):]

var sensorStateClasses = []string{"measurement", "measurement_angle", "total", "total_increasing"}

// switchRules: switch.py (PLATFORM_SCHEMA_MODERN on MQTT_RW_SCHEMA).
var switchRules = platformRules{
	keys: withKeys(rwKeys, map[string]kind{
		"command_template": kTemplate,
		"device_class":     kDeviceClass,
		"name":             kNullString,
		"payload_off":      kString,
		"payload_on":       kString,
		"state_off":        kString,
		"state_on":         kString,
		"value_template":   kTemplate,
	}),
	required:      []string{"command_topic"},
	deviceClasses: []string{"outlet", "switch"},
}

// sensorRules: sensor.py (_PLATFORM_SCHEMA_BASE on MQTT_RO_SCHEMA and
// validate_sensor_state_and_device_class_config).
var sensorRules = platformRules{
	keys: withKeys(roKeys, map[string]kind{
		"device_class":                kDeviceClass,
		"expire_after":                kUint,
		"force_update":                kBool,
		"last_reset_value_template":   kTemplate,
		"name":                        kNullString,
		"options":                     kStringList,
		"suggested_display_precision": kUint,
		"state_class":                 kNullString,
		"unit_of_measurement":         kNullString,
	}),
	required:         []string{"state_topic"},
	deviceClasses:    sensorDeviceClasses,
	noConfigCategory: true,
	check:            checkSensor,
}

// binarySensorRules: binary_sensor.py (on MQTT_RO_SCHEMA). A problem flag
// is a binary_sensor with device_class problem.
var binarySensorRules = platformRules{
	keys: withKeys(roKeys, map[string]kind{
		"device_class": kDeviceClass,
		"expire_after": kUint,
		"force_update": kBool,
		"name":         kNullString,
		"off_delay":    kUint,
		"payload_off":  kString,
		"payload_on":   kString,
	}),
	required: []string{"state_topic"},
	deviceClasses: []string{
		"battery", "battery_charging", "carbon_monoxide", "cold", "connectivity",
		"door", "garage_door", "gas", "heat", "light", "lock", "moisture",
		"motion", "moving", "occupancy", "opening", "plug", "power", "presence",
		"problem", "running", "safety", "smoke", "sound", "tamper", "update",
		"vibration", "window",
	},
	noConfigCategory: true,
}

// buttonRules: button.py (on MQTT_BASE_SCHEMA).
var buttonRules = platformRules{
	keys: map[string]kind{
		"command_template": kTemplate,
		"command_topic":    kPubTopic,
		"device_class":     kDeviceClass,
		"name":             kNullString,
		"payload_press":    kString,
		"retain":           kBool,
	},
	required:      []string{"command_topic"},
	deviceClasses: []string{"identify", "restart", "update"},
}

// cameraRules: camera.py. The image arrives on topic, raw or base64.
var cameraRules = platformRules{
	keys: map[string]kind{
		"name":           kNullString,
		"topic":          kSubTopic,
		"image_encoding": kString,
	},
	required: []string{"topic"},
	check: func(cfg map[string]any) error {
		if v, ok := cfg["image_encoding"]; ok && v != "b64" {
			return fmt.Errorf("image_encoding %v: camera only knows b64", v)
		}
		return nil
	},
}

// imageRules: image.py. Exactly one of image_topic and url_topic.
var imageRules = platformRules{
	keys: map[string]kind{
		"content_type":   kString,
		"image_encoding": kString,
		"image_topic":    kSubTopic,
		"name":           kNullString,
		"url_template":   kTemplate,
		"url_topic":      kSubTopic,
	},
	check: checkImage,
}

// selectRules: select.py (on MQTT_RW_SCHEMA).
var selectRules = platformRules{
	keys: withKeys(rwKeys, map[string]kind{
		"command_template": kTemplate,
		"name":             kNullString,
		"options":          kStringList,
		"value_template":   kTemplate,
	}),
	required: []string{"command_topic", "options"},
}

// numberRules: number.py (on MQTT_RW_SCHEMA and validate_config).
var numberRules = platformRules{
	keys: withKeys(rwKeys, map[string]kind{
		"command_template":    kTemplate,
		"device_class":        kDeviceClass,
		"max":                 kNumber,
		"min":                 kNumber,
		"mode":                kString,
		"name":                kNullString,
		"payload_reset":       kString,
		"step":                kNumber,
		"unit_of_measurement": kNullString,
		"value_template":      kTemplate,
	}),
	required:      []string{"command_topic"},
	deviceClasses: numberDeviceClasses,
	check:         checkNumber,
}

// updateRules: update.py (on MQTT_RO_SCHEMA).
var updateRules = platformRules{
	keys: withKeys(roKeys, map[string]kind{
		"command_topic":           kPubTopic,
		"device_class":            kDeviceClass,
		"display_precision":       kUint,
		"latest_version_template": kTemplate,
		"latest_version_topic":    kSubTopic,
		"name":                    kNullString,
		"payload_install":         kString,
		"release_summary":         kString,
		"release_url":             kString,
		"retain":                  kBool,
		"title":                   kString,
	}),
	required:      []string{"state_topic"},
	deviceClasses: []string{"firmware"},
}

// platforms maps each component Check knows to its table.
var platforms = map[string]platformRules{
	"binary_sensor": binarySensorRules,
	"button":        buttonRules,
	"camera":        cameraRules,
	"image":         imageRules,
	"number":        numberRules,
	"select":        selectRules,
	"sensor":        sensorRules,
	"switch":        switchRules,
	"update":        updateRules,
}

// checkSensor applies the sensor's cross-field rules.
func checkSensor(cfg map[string]any) error {
	dc, _ := cfg["device_class"].(string)
	sc, _ := cfg["state_class"].(string)
	unit, _ := cfg["unit_of_measurement"].(string)
	if sc != "" && !contains(sensorStateClasses, sc) {
		return fmt.Errorf("state_class %q is not one of %v", sc, sensorStateClasses)
	}
	if _, ok := cfg["last_reset_value_template"]; ok && sc != "total" {
		return errors.New("last_reset_value_template needs state_class total")
	}
	if opts, ok := cfg["options"]; ok {
		if sc != "" || unit != "" {
			return errors.New("options cannot be used with state_class or unit_of_measurement")
		}
		if dc != "enum" {
			return fmt.Errorf("options need device_class enum, not %q", dc)
		}
		if l, _ := opts.([]any); len(l) == 0 {
			return errors.New("options must not be empty")
		}
	}
	if dc == "enum" {
		if _, ok := cfg["options"]; !ok {
			return errors.New("an enum sensor must list its options")
		}
	}
	if contains(nonNumericSensorClasses, dc) && (sc != "" || unit != "") {
		return fmt.Errorf("device_class %s takes no state_class and no unit_of_measurement", dc)
	}
	return nil
}

// checkImage applies the image's cross-field rules.
func checkImage(cfg map[string]any) error {
	_, img := cfg["image_topic"]
	_, url := cfg["url_topic"]
	switch {
	case img && url:
		return errors.New("image_topic and url_topic exclude each other")
	case !img && !url:
		return errors.New("image needs image_topic or url_topic")
	}
	if _, ok := cfg["content_type"]; ok && url {
		return errors.New("content_type cannot be used with url_topic")
	}
	if v, ok := cfg["image_encoding"]; ok && v != "b64" && v != "raw" {
		return fmt.Errorf("image_encoding %v is not b64 or raw", v)
	}
	return nil
}

// checkNumber applies the number's cross-field rules.
func checkNumber(cfg map[string]any) error {
	minV, maxV := 0.0, 100.0 // number's DEFAULT_MIN_VALUE and DEFAULT_MAX_VALUE
	if v, ok := cfg["min"].(float64); ok {
		minV = v
	}
	if v, ok := cfg["max"].(float64); ok {
		maxV = v
	}
	if minV > maxV {
		return fmt.Errorf("max %v must be >= min %v", maxV, minV)
	}
	if v, ok := cfg["step"].(float64); ok && v < 1e-3 {
		return fmt.Errorf("step %v must be >= 0.001", v)
	}
	if v, ok := cfg["mode"]; ok && v != "auto" && v != "box" && v != "slider" {
		return fmt.Errorf("mode %v is not auto, box or slider", v)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
