package main

import (
	"math"
	"testing"
)

func TestParseStatTicks(t *testing.T) {
	// comm with a space and a ')' in it; utime=1234, stime=56.
	stat := "4242 (gst (x) y) S 1 4242 4242 0 -1 4194304 900 0 0 0 1234 56 0 0 20 0 9 0 100 1000 200 18446744073709551615"
	n, err := parseStatTicks(stat)
	if err != nil || n != 1290 {
		t.Fatalf("parseStatTicks = %d, %v; want 1290", n, err)
	}
	if _, err := parseStatTicks("garbage"); err == nil {
		t.Error("no error for garbage")
	}
}

func TestParseVmRSS(t *testing.T) {
	n, err := parseVmRSS("Name:\tx\nVmHWM:\t  9000 kB\nVmRSS:\t   51234 kB\nRssAnon:\t1 kB\n")
	if err != nil || n != 51234 {
		t.Fatalf("parseVmRSS = %d, %v", n, err)
	}
	if _, err := parseVmRSS("Name:\tkthread\n"); err == nil {
		t.Error("no error without VmRSS")
	}
}

func TestMedianPercentile(t *testing.T) {
	xs := []float64{10, 1, 9, 2, 8, 3, 7, 4, 6, 5}
	if m := median(xs); m != 5.5 {
		t.Errorf("median = %v", m)
	}
	if p := percentile(xs, 90); p != 9 {
		t.Errorf("p90 = %v, want 9 (nearest rank)", p)
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("odd median = %v", m)
	}
	if !math.IsNaN(median(nil)) || !math.IsNaN(percentile(nil, 90)) {
		t.Error("empty input should give NaN")
	}
}

func TestParseSysCPU(t *testing.T) {
	busy, total, err := parseSysCPU("cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 1 2 3 4 5 6 7 8\n")
	if err != nil || total != 1181 || busy != 161 {
		t.Fatalf("parseSysCPU = %d/%d, %v; want 161/1181", busy, total, err)
	}
}
