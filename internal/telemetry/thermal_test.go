package telemetry

import (
	"slices"
	"testing"
	"testing/fstest"
)

func TestSortNumbered(t *testing.T) {
	got := []string{"a/thermal_zone10", "a/thermal_zone2", "a/thermal_zone1", "h/temp10_input", "h/temp2_input", "h/temp1_input", "h/cooling"}
	sortNumbered(got)
	want := []string{"a/thermal_zone1", "a/thermal_zone2", "a/thermal_zone10", "h/cooling", "h/temp1_input", "h/temp2_input", "h/temp10_input"}
	if !slices.Equal(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
}

func TestReadTemps(t *testing.T) {
	f := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s + "\n")} }
	cases := []struct {
		name string
		root fstest.MapFS
		main any
		want string
	}{
		{"none", fstest.MapFS{}, nil, "null"},
		{"first zone when no type ranks", fstest.MapFS{
			"sys/class/thermal/thermal_zone0/type": f("soc-thermal"), "sys/class/thermal/thermal_zone0/temp": f("45123"),
			"sys/class/thermal/thermal_zone1/type": f("gpu-thermal"), "sys/class/thermal/thermal_zone1/temp": f("-1500"),
		}, 45.123, `[{"name":"thermal_zone0","type":"soc-thermal","temp_c":45.123},{"name":"thermal_zone1","type":"gpu-thermal","temp_c":-1.5}]`},
		{"numeric zone order, unreadable zone skipped", fstest.MapFS{
			"sys/class/thermal/thermal_zone10/type": f("cpu-thermal"), "sys/class/thermal/thermal_zone10/temp": f("50000"),
			"sys/class/thermal/thermal_zone9/type": f("iwlwifi_1"), "sys/class/thermal/thermal_zone9/temp": f(""),
			"sys/class/thermal/thermal_zone2/type": f("acpitz"), "sys/class/thermal/thermal_zone2/temp": f("30000"),
		}, 50.0, `[{"name":"thermal_zone2","type":"acpitz","temp_c":30},{"name":"thermal_zone10","type":"cpu-thermal","temp_c":50}]`},
		{"hwmon only", fstest.MapFS{
			"sys/class/hwmon/hwmon0/name": f("nvme"), "sys/class/hwmon/hwmon0/temp1_input": f("33850"), "sys/class/hwmon/hwmon0/temp1_label": f("Composite"),
			"sys/class/hwmon/hwmon1/name": f("k10temp"), "sys/class/hwmon/hwmon1/temp1_input": f("41250"), "sys/class/hwmon/hwmon1/temp1_label": f("Tctl"),
		}, 41.25, `[{"name":"hwmon0/temp1","type":"nvme","label":"Composite","temp_c":33.85},{"name":"hwmon1/temp1","type":"k10temp","label":"Tctl","temp_c":41.25}]`},
	}
	for _, c := range cases {
		temps := readTemps(c.root)
		if got := jsonOf(temps); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
		if m := fmtPtr(mainTemp(temps)); m != c.main {
			t.Errorf("%s: main %v, want %v", c.name, m, c.main)
		}
	}
}
