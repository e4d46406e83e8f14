package telemetry

import (
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Temp is one temperature sensor.
type Temp struct {
	// Name is where it was read: "thermal_zone0", or "hwmon2/temp1".
	Name string `json:"name"`
	// Type is the thermal zone's type ("cpu-thermal", "x86_pkg_temp",
	// "acpitz") or the hardware monitor's name ("rp1_adc", "coretemp").
	Type string `json:"type"`
	// Label is the hardware monitor's label for it ("Package id 0").
	Label string  `json:"label,omitempty"`
	TempC float64 `json:"temp_c"`
}

// readTemps reads every thermal zone, then every hardware-monitor
// temperature that is not a zone's own hwmon copy (the kernel names that
// copy after the zone type, '-' turned to '_').
func readTemps(root fs.FS) []Temp {
	var temps []Temp
	zoneTypes := map[string]bool{}
	zones, _ := fs.Glob(root, "sys/class/thermal/thermal_zone*")
	sortNumbered(zones)
	for _, z := range zones {
		typ := readString(root, z+"/type")
		zoneTypes[strings.ReplaceAll(typ, "-", "_")] = true
		c, ok := milliC(root, z+"/temp")
		if !ok {
			continue // e.g. a Wi-Fi zone whose interface is down
		}
		temps = append(temps, Temp{Name: path.Base(z), Type: typ, TempC: c})
	}
	for _, dir := range hwmonDirs(root) {
		name := readString(root, dir+"/name")
		if zoneTypes[name] {
			continue
		}
		inputs, _ := fs.Glob(root, dir+"/temp*_input")
		sortNumbered(inputs)
		for _, in := range inputs {
			c, ok := milliC(root, in)
			if !ok {
				continue
			}
			sensor := strings.TrimSuffix(path.Base(in), "_input")
			temps = append(temps, Temp{
				Name:  path.Base(dir) + "/" + sensor,
				Type:  name,
				Label: readString(root, dir+"/"+sensor+"_label"),
				TempC: c,
			})
		}
	}
	return temps
}

// mainTemp picks the SoC or CPU package sensor: by type, else the first
// thermal zone, else the first sensor.
func mainTemp(temps []Temp) *float64 {
	if len(temps) == 0 {
		return nil
	}
	// The types that stand for the SoC or CPU package, best first.
	for _, typ := range [...]string{"cpu-thermal", "x86_pkg_temp", "cpu_thermal", "coretemp", "k10temp"} {
		for _, t := range temps {
			if t.Type == typ {
				return &t.TempC
			}
		}
	}
	return &temps[0].TempC
}

// milliC reads a millidegree Celsius file.
func milliC(root fs.FS, name string) (float64, bool) {
	s := readString(root, name)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return float64(v) / 1000, true
}

// hwmonDirs lists sys/class/hwmon/hwmon* in numeric order.
func hwmonDirs(root fs.FS) []string {
	dirs, _ := fs.Glob(root, "sys/class/hwmon/hwmon*")
	sortNumbered(dirs)
	return dirs
}

// sortNumbered sorts paths by the first number in their base name, so that
// thermal_zone10 follows thermal_zone9 and temp10_input follows temp9_input.
func sortNumbered(paths []string) {
	key := func(p string) (string, int, string) {
		base := path.Base(p)
		i := strings.IndexAny(base, "0123456789")
		if i < 0 {
			return p, 0, ""
		}
		j := i
		for j < len(base) && base[j] >= '0' && base[j] <= '9' {
			j++
		}
		n, _ := strconv.Atoi(base[i:j])
		return path.Dir(p) + "/" + base[:i], n, base[j:]
	}
	slices.SortStableFunc(paths, func(a, b string) int {
		pa, na, ra := key(a)
		pb, nb, rb := key(b)
		if c := strings.Compare(pa, pb); c != 0 {
			return c
		}
		if na != nb {
			return na - nb
		}
		return strings.Compare(ra, rb)
	})
}
