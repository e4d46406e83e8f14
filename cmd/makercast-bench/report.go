package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// row is one line of the result table.
type row struct {
	metric   string
	goal     string
	measured string
	verdict  string
	how      string
}

func (r *row) set(ok bool, format string, args ...any) {
	r.measured = fmt.Sprintf(format, args...)
	r.verdict = verdict(ok)
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// median of xs (mean of the two middle values for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := sorted(xs)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile by nearest rank: the smallest value with at least p % of the
// values at or below it.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := sorted(xs)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(k, 0), len(s)-1)]
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

func minMax(xs []float64) (lo, hi float64) {
	s := sorted(xs)
	if len(s) == 0 {
		return math.NaN(), math.NaN()
	}
	return s[0], s[len(s)-1]
}

func sorted(xs []float64) []float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s
}

func secs(d time.Duration) float64 { return d.Seconds() }

// fmtSecs lists durations in seconds, as measured in trial order.
func fmtSecs(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.3f", x)
	}
	return strings.Join(parts, ", ")
}

// cell makes text safe inside a markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func printTable(w io.Writer, rows []*row) {
	fmt.Fprintln(w, "| metric | goal | measured | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", cell(r.metric), cell(r.goal), cell(r.measured), cell(r.verdict))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "How measured:")
	fmt.Fprintln(w)
	for i, r := range rows {
		fmt.Fprintf(w, "%d. **%s**: %s\n", i+1, r.metric, r.how)
	}
}
