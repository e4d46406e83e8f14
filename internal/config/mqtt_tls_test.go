package config

import (
	"os"
	"strings"
	"testing"

	"github.com/makercast/makercast/internal/testenv"
)

func TestMQTTClientCertificateAndServerName(t *testing.T) {
	ca := testenv.NewTestCA(t)
	setEnv(t, map[string]string{
		"MAKERCAST_CAMERAS":              "test",
		"MAKERCAST_MQTT_URL":             "ssl://192.168.1.10:8885",
		"MAKERCAST_MQTT_CA_FILE":         ca.CAFile,
		"MAKERCAST_MQTT_CERT_FILE":       ca.CertFile,
		"MAKERCAST_MQTT_KEY_FILE":        ca.KeyFile,
		"MAKERCAST_MQTT_TLS_SERVER_NAME": "broker.makerspace.lan",
	})
	c, err := Load(os.LookupEnv, "pi")
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTTCertFile != ca.CertFile || c.MQTTKeyFile != ca.KeyFile || c.MQTTServerName != "broker.makerspace.lan" {
		t.Errorf("cert %q key %q server name %q", c.MQTTCertFile, c.MQTTKeyFile, c.MQTTServerName)
	}
}

// Each mistake is refused at start with the variable's name, and no error
// carries the key's contents.
func TestMQTTTLSErrorsNameTheVariable(t *testing.T) {
	ca, other := testenv.NewTestCA(t), testenv.NewTestCA(t)
	keyPEM, err := os.ReadFile(ca.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	keyBody := strings.Split(strings.TrimSpace(string(keyPEM)), "\n")[1] // a line of the key's base64
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"certificate without key", map[string]string{"MAKERCAST_MQTT_URL": "ssl://b:8883", "MAKERCAST_MQTT_CERT_FILE": ca.CertFile}, "MAKERCAST_MQTT_KEY_FILE"},
		{"key without certificate", map[string]string{"MAKERCAST_MQTT_URL": "ssl://b:8883", "MAKERCAST_MQTT_KEY_FILE": ca.KeyFile}, "MAKERCAST_MQTT_CERT_FILE"},
		{"certificate over plain tcp", map[string]string{"MAKERCAST_MQTT_URL": "tcp://b:1883", "MAKERCAST_MQTT_CERT_FILE": ca.CertFile, "MAKERCAST_MQTT_KEY_FILE": ca.KeyFile}, "MAKERCAST_MQTT_CERT_FILE"},
		{"key of another certificate", map[string]string{"MAKERCAST_MQTT_URL": "ssl://b:8883", "MAKERCAST_MQTT_CERT_FILE": other.CertFile, "MAKERCAST_MQTT_KEY_FILE": ca.KeyFile}, "MAKERCAST_MQTT_KEY_FILE"},
		{"certificate given as key", map[string]string{"MAKERCAST_MQTT_URL": "wss://b:8884", "MAKERCAST_MQTT_CERT_FILE": ca.KeyFile, "MAKERCAST_MQTT_KEY_FILE": ca.KeyFile}, "MAKERCAST_MQTT_KEY_FILE"},
		{"missing key file", map[string]string{"MAKERCAST_MQTT_URL": "ssl://b:8883", "MAKERCAST_MQTT_CERT_FILE": ca.CertFile, "MAKERCAST_MQTT_KEY_FILE": "/nonexistent/pi.key"}, "MAKERCAST_MQTT_KEY_FILE"},
		{"server name over plain tcp", map[string]string{"MAKERCAST_MQTT_URL": "tcp://b:1883", "MAKERCAST_MQTT_TLS_SERVER_NAME": "broker"}, "MAKERCAST_MQTT_TLS_SERVER_NAME"},
		{"server name with scheme", map[string]string{"MAKERCAST_MQTT_URL": "ssl://b:8883", "MAKERCAST_MQTT_TLS_SERVER_NAME": "ssl://broker"}, "MAKERCAST_MQTT_TLS_SERVER_NAME"},
		{"server name with port", map[string]string{"MAKERCAST_MQTT_URL": "ssl://b:8883", "MAKERCAST_MQTT_TLS_SERVER_NAME": "broker/8883"}, "MAKERCAST_MQTT_TLS_SERVER_NAME"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"MAKERCAST_CAMERAS": "test"}
			for k, v := range tc.env {
				env[k] = v
			}
			setEnv(t, env)
			_, err := Load(os.LookupEnv, "pi")
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
			if strings.Contains(err.Error(), keyBody) || strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("error shows the key: %q", err)
			}
		})
	}
}
