package homeassistant

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

var (
	// idPattern is what Home Assistant accepts for <node_id> and <object_id>
	// (discovery.py TOPIC_MATCHER).
	idPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	// componentPattern is TOPIC_MATCHER's \w+ for <component>.
	componentPattern = regexp.MustCompile(`^\w+$`)
	// entityIDPattern is Home Assistant's valid_entity_id: lower case
	// letters, digits and "_", no "__", no "_" next to the dot or at an end.
	entityIDPattern = regexp.MustCompile(`^[a-z0-9_]+\.[a-z0-9_]+$`)
)

// Check validates one discovery message: its topic
// (<prefix>/<component>/[<node_id>/]<object_id>/config) and its payload,
// against the rules Home Assistant's MQTT integration applies to the
// platform the topic names. It only knows the platforms in rules.go, and
// only full (not abbreviated) keys. All problems found are reported
// together, separated by "; ".
//
// Check is stricter than Home Assistant where Home Assistant accepts a
// mistake silently: it drops unknown top-level keys without a word, so Check
// rejects them.
func Check(topic string, payload []byte) error {
	component, err := parseConfigTopic(topic)
	if err != nil {
		return fmt.Errorf("homeassistant: check %s: %w", topic, err)
	}
	rules, ok := platforms[component]
	if !ok {
		return fmt.Errorf("homeassistant: check %s: no rules for component %q yet (add a table to rules.go)", topic, component)
	}
	if len(payload) == 0 {
		return fmt.Errorf("homeassistant: check %s: empty payload (that deletes the entity, it configures nothing)", topic)
	}
	var doc any
	if err := json.Unmarshal(payload, &doc); err != nil {
		return fmt.Errorf("homeassistant: check %s: payload is not JSON: %v", topic, err)
	}
	cfg, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("homeassistant: check %s: payload is not a JSON object", topic)
	}
	c := checker{component: component, rules: rules}
	c.config(cfg)
	if len(c.problems) > 0 {
		return fmt.Errorf("homeassistant: check %s: %s", topic, strings.Join(c.problems, "; "))
	}
	return nil
}

// parseConfigTopic returns the component of a discovery config topic. The
// prefix may hold "/", so the topic is read from its end.
func parseConfigTopic(topic string) (string, error) {
	parts := strings.Split(topic, "/")
	n := len(parts)
	if n < 4 || parts[n-1] != "config" {
		return "", errors.New("not <prefix>/<component>/[<node_id>/]<object_id>/config")
	}
	var component string
	var ids, prefix []string
	switch {
	case n >= 5 && contains(haComponents, parts[n-4]):
		component, ids, prefix = parts[n-4], parts[n-3:n-1], parts[:n-4]
	case contains(haComponents, parts[n-3]):
		component, ids, prefix = parts[n-3], parts[n-2:n-1], parts[:n-3]
	case n == 4 && contains(haComponents, parts[0]):
		return "", errors.New("no discovery prefix")
	default:
		c := parts[n-3]
		if n >= 5 {
			c = parts[n-4]
		}
		if c == "device" {
			return "", errors.New("device-based discovery is not supported here; publish one message per entity")
		}
		return "", fmt.Errorf("component %q is not one Home Assistant's MQTT discovery knows", c)
	}
	if !componentPattern.MatchString(component) {
		return "", fmt.Errorf("component %q is not a word", component)
	}
	if strings.Join(prefix, "/") == "" {
		return "", errors.New("no discovery prefix")
	}
	for _, id := range ids {
		if !idPattern.MatchString(id) {
			return "", fmt.Errorf("node_id/object_id %q may only hold a-z, A-Z, 0-9, _ and -", id)
		}
	}
	return component, nil
}

// checker collects the problems of one payload.
type checker struct {
	component string
	rules     platformRules
	problems  []string
}

func (c *checker) addf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *checker) config(cfg map[string]any) {
	for _, k := range sortedKeys(cfg) {
		v := cfg[k]
		kd, ok := c.rules.keys[k]
		if !ok {
			kd, ok = commonKeys[k]
		}
		switch {
		case k == "object_id":
			c.addf("object_id is gone (deprecated in 2025.10, ignored from 2026.4): use default_entity_id")
		case k == "device_class" && !ok:
			c.addf("%s has no device_class", c.component)
		case !ok:
			c.addf("unknown key %q for %s (Home Assistant drops it silently)", k, c.component)
		default:
			c.value(k, kd, v)
		}
	}
	for _, k := range c.rules.required {
		if _, ok := cfg[k]; !ok {
			c.addf("%s needs %s", c.component, k)
		}
	}
	_, hasTopic := cfg["availability_topic"]
	_, hasList := cfg["availability"]
	if hasTopic && hasList {
		c.addf("availability_topic and availability exclude each other")
	}
	if _, ok := cfg["device"]; ok {
		if id, _ := cfg["unique_id"].(string); id == "" {
			c.addf("an entity with a device needs a unique_id")
		}
	}
	if cat, _ := cfg["entity_category"].(string); cat == "config" && c.rules.noConfigCategory {
		c.addf("a %s cannot have entity_category config (only diagnostic)", c.component)
	}
	if name, ok := cfg["name"].(string); ok {
		dev, _ := cfg["device"].(map[string]any)
		if devName, _ := dev["name"].(string); devName != "" &&
			strings.HasPrefix(strings.ToLower(name), strings.ToLower(devName)) {
			c.addf("name %q starts with the device name %q; Home Assistant adds the device name itself", name, devName)
		}
	}
	if c.rules.check != nil {
		if err := c.rules.check(cfg); err != nil {
			c.addf("%v", err)
		}
	}
}

// value checks one value against its kind.
func (c *checker) value(key string, kd kind, v any) {
	switch kd {
	case kString:
		if _, ok := v.(string); !ok {
			c.addf("%s must be a string", key)
		}
	case kNullString:
		if _, ok := v.(string); !ok && v != nil {
			c.addf("%s must be a string or null", key)
		}
	case kBool:
		if _, ok := v.(bool); !ok {
			c.addf("%s must be true or false", key)
		}
	case kUint:
		if f, ok := v.(float64); !ok || f < 0 || f != math.Trunc(f) {
			c.addf("%s must be an integer >= 0", key)
		}
	case kNumber:
		if _, ok := v.(float64); !ok {
			c.addf("%s must be a number", key)
		}
	case kQoS:
		if f, ok := v.(float64); !ok || (f != 0 && f != 1 && f != 2) {
			c.addf("%s must be 0, 1 or 2", key)
		}
	case kTemplate:
		s, ok := v.(string)
		if !ok {
			c.addf("%s must be a template string", key)
		} else if err := checkTemplate(s); err != nil {
			c.addf("%s: %v", key, err)
		}
	case kSubTopic:
		s, _ := v.(string)
		if err := checkTopic(s, true); err != nil {
			c.addf("%s: %v", key, err)
		}
	case kPubTopic:
		s, _ := v.(string)
		if err := checkTopic(s, false); err != nil {
			c.addf("%s: %v", key, err)
		}
	case kIcon:
		if s, ok := v.(string); !ok || !strings.Contains(s, ":") {
			c.addf("%s must look like prefix:name, e.g. mdi:broadcast", key)
		}
	case kURL:
		if err := checkURL(v, key == "configuration_url"); err != nil {
			c.addf("%s: %v", key, err)
		}
	case kStringList:
		if l, ok := v.([]any); !ok || len(l) == 0 || !allStrings(l) {
			c.addf("%s must be a non-empty list of strings", key)
		}
	case kDeviceClass:
		if v == nil {
			return
		}
		if s, ok := v.(string); !ok || !contains(c.rules.deviceClasses, s) {
			c.addf("device_class %v is not a %s device class", v, c.component)
		}
	case kCategory:
		if v != "config" && v != "diagnostic" {
			c.addf("entity_category %v is not config or diagnostic", v)
		}
	case kEntityID:
		c.entityID(v)
	case kDevice:
		c.device(v)
	case kOrigin:
		c.object("origin", originKeys, v)
		if o, ok := v.(map[string]any); ok {
			if name, _ := o["name"].(string); name == "" {
				c.addf("origin needs a name")
			}
		}
	case kAvailability:
		l, ok := v.([]any)
		if !ok || len(l) == 0 {
			c.addf("availability must be a non-empty list")
			return
		}
		for i, e := range l {
			path := fmt.Sprintf("availability[%d]", i)
			c.object(path, availabilityKeys, e)
			if m, ok := e.(map[string]any); ok {
				if _, ok := m["topic"]; !ok {
					c.addf("%s needs a topic", path)
				}
			}
		}
	case kAvailMode:
		if v != "all" && v != "any" && v != "latest" {
			c.addf("availability_mode %v is not all, any or latest", v)
		}
	default:
		c.addf("%s: no rule for its kind", key)
	}
}

// entityID checks default_entity_id: a valid entity id whose domain is the
// component.
func (c *checker) entityID(v any) {
	s, _ := v.(string)
	domain, object, _ := strings.Cut(s, ".")
	switch {
	case !entityIDPattern.MatchString(s) || strings.Contains(s, "__") ||
		strings.HasPrefix(object, "_") || strings.HasSuffix(object, "_"):
		c.addf("default_entity_id %q is not a valid entity id (<domain>.<a-z, 0-9, single _>)", s)
	case domain != c.component:
		c.addf("default_entity_id %q must start with %q", s, c.component+".")
	}
}

// device checks the device block: known keys only (Home Assistant rejects
// unknown ones here) and at least one identifier or connection.
func (c *checker) device(v any) {
	d, ok := v.(map[string]any)
	if !ok {
		c.addf("device must be an object")
		return
	}
	for _, k := range sortedKeys(d) {
		val := d[k]
		kd, ok := deviceKeys[k]
		switch {
		case !ok:
			c.addf("unknown key %q in device", k)
		case k == "identifiers":
			if s, isStr := val.(string); isStr {
				if s == "" {
					c.addf("device identifiers must not be empty")
				}
				continue
			}
			c.value("device identifiers", kStringList, val)
		case k == "connections":
			l, isList := val.([]any)
			if !isList {
				c.addf("device connections must be a list of [type, id] pairs")
				continue
			}
			for _, p := range l {
				if pair, ok := p.([]any); !ok || len(pair) != 2 || !allStrings(pair) {
					c.addf("device connections must be a list of [type, id] pairs")
					break
				}
			}
		default:
			c.value("device "+k, kd, val)
		}
	}
	ids := d["identifiers"]
	if s, ok := ids.(string); ok && s != "" {
		return
	}
	if l, ok := ids.([]any); ok && len(l) > 0 {
		return
	}
	if l, ok := d["connections"].([]any); ok && len(l) > 0 {
		return
	}
	c.addf("device needs identifiers or connections")
}

// object checks a nested block whose keys are all known.
func (c *checker) object(path string, keys map[string]kind, v any) {
	m, ok := v.(map[string]any)
	if !ok {
		c.addf("%s must be an object", path)
		return
	}
	for _, k := range sortedKeys(m) {
		kd, ok := keys[k]
		if !ok {
			c.addf("unknown key %q in %s", k, path)
			continue
		}
		c.value(path+" "+k, kd, m[k])
	}
}

// checkTopic checks an MQTT topic name (publish) or topic filter
// (subscribe), as valid_publish_topic and valid_subscribe_topic do.
func checkTopic(t string, filter bool) error {
	switch {
	case t == "":
		return errors.New("topic must be a non-empty string")
	case !utf8.ValidString(t) || strings.ContainsRune(t, 0):
		return errors.New("topic must be UTF-8 without NUL")
	case len(t) > 65535:
		return errors.New("topic is longer than 65535 bytes")
	}
	levels := strings.Split(t, "/")
	for i, l := range levels {
		if !strings.ContainsAny(l, "+#") {
			continue
		}
		if !filter {
			return fmt.Errorf("topic %q to publish to holds a wildcard", t)
		}
		if l == "+" || (l == "#" && i == len(levels)-1) {
			continue
		}
		return fmt.Errorf("topic filter %q misuses a wildcard", t)
	}
	return nil
}

// checkURL checks an http(s) URL; configuration_url may also be a
// homeassistant:// path.
func checkURL(v any, configuration bool) error {
	s, _ := v.(string)
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if configuration && u.Scheme == "homeassistant" {
		return nil
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

// checkTemplate checks that every {{, {% and {# of a template is closed by
// its }}, %} or #} before the next one opens, and that no closer is stray.
func checkTemplate(s string) error {
	closers := map[string]string{"{{": "}}", "{%": "%}", "{#": "#}"}
	for i := 0; i < len(s)-1; {
		two := s[i : i+2]
		if end, ok := closers[two]; ok {
			rest := s[i+2:]
			j := strings.Index(rest, end)
			if j < 0 {
				return fmt.Errorf("%s at %d is never closed", two, i)
			}
			if k := firstOpener(rest[:j]); k >= 0 {
				return fmt.Errorf("%s at %d opens before %s at %d is closed", rest[k:k+2], i+2+k, two, i)
			}
			i += 2 + j + 2
			continue
		}
		if two == "}}" || two == "%}" || two == "#}" {
			return fmt.Errorf("stray %s at %d", two, i)
		}
		i++
	}
	return nil
}

func firstOpener(s string) int {
	first := -1
	for _, o := range []string{"{{", "{%", "{#"} {
		if k := strings.Index(s, o); k >= 0 && (first < 0 || k < first) {
			first = k
		}
	}
	return first
}

func allStrings(l []any) bool {
	for _, x := range l {
		if _, ok := x.(string); !ok {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
