package balena

import (
	"strings"
	"testing"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		api     bool
		balena  bool
		wantErr string
	}{
		{name: "not under balena", env: map[string]string{"HOME": "/root"}},
		{name: "service with the supervisor-api label", env: map[string]string{
			"BALENA": "1", "BALENA_SUPERVISOR_ADDRESS": "http://127.0.0.1:48484", "BALENA_SUPERVISOR_API_KEY": "abc123",
			"BALENA_APP_ID": "1868586", "BALENA_SERVICE_NAME": "makercast", "BALENA_DEVICE_UUID": "7cf02a6",
			"BALENA_APP_LOCK_PATH": "/tmp/balena/updates.lock",
		}, want: Config{
			Address: "http://127.0.0.1:48484", APIKey: "abc123", AppID: 1868586, ServiceName: "makercast",
			DeviceUUID: "7cf02a6", LockPath: "/tmp/balena/updates.lock",
		}, api: true, balena: true},
		{name: "without the label: lock only", env: map[string]string{
			"BALENA": "1", "BALENA_APP_ID": "1868586", "BALENA_SERVICE_NAME": "makercast",
		}, want: Config{AppID: 1868586, ServiceName: "makercast", LockPath: DefaultLockPath}, balena: true},
		{name: "supervisor before v7.22: RESIN_", env: map[string]string{
			"RESIN": "1", "RESIN_SUPERVISOR_ADDRESS": "http://127.0.0.1:48484", "RESIN_SUPERVISOR_API_KEY": "abc123",
			"RESIN_APP_ID": "42", "RESIN_SERVICE_NAME": "main",
		}, want: Config{
			Address: "http://127.0.0.1:48484", APIKey: "abc123", AppID: 42, ServiceName: "main", LockPath: DefaultLockPath,
		}, api: true, balena: true},
		{name: "bad app id", env: map[string]string{"BALENA_APP_ID": "fleet"},
			wantErr: `balena: BALENA_APP_ID must be a positive number, not "fleet"`},
		{name: "bad address", env: map[string]string{"RESIN_SUPERVISOR_ADDRESS": "127.0.0.1:48484", "RESIN_SUPERVISOR_API_KEY": "abc123"},
			wantErr: `balena: RESIN_SUPERVISOR_ADDRESS must be an http:// URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigFromEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "abc123") {
					t.Errorf("the key is in the error: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if got.SupervisorAPI() != tt.api || got.UnderBalena() != tt.balena {
				t.Errorf("SupervisorAPI %v UnderBalena %v, want %v %v", got.SupervisorAPI(), got.UnderBalena(), tt.api, tt.balena)
			}
		})
	}
}
