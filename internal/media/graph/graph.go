package graph

import (
	"fmt"
	"strconv"
	"strings"
)

// Elem is one GStreamer element to create: its factory, a unique name and
// properties applied in order. Property values are strings in the syntax of
// gst_util_set_object_arg; they are only ever produced by this package from
// validated, typed settings, never copied from user text.
type Elem struct {
	Factory string
	Name    string
	Props   []Prop
}

// Prop is one property assignment.
type Prop struct {
	Name  string
	Value string
}

// Chain is a run of elements linked in order. When From names an element of
// an earlier chain (a tee), the first element of this chain is linked to a
// new request pad of it.
type Chain struct {
	From  string
	Elems []Elem
	// To, when set, links the chain's last element to a request pad of an
	// element of another chain, as "element.pad" (flvmux's "mux.video").
	To string
}

// Graph is a whole pipeline description as data.
type Graph struct {
	Chains []Chain
}

// String renders the graph in gst-launch syntax. It is used for logs and
// for the benchmark's gst-launch baseline; the engine never parses it.
func (g Graph) String() string {
	var parts []string
	for _, c := range g.Chains {
		var els []string
		if c.From != "" {
			els = append(els, c.From+".")
		}
		for _, e := range c.Elems {
			els = append(els, e.launch())
		}
		if c.To != "" {
			els = append(els, c.To)
		}
		parts = append(parts, strings.Join(els, " ! "))
	}
	return strings.Join(parts, "  ")
}

// Elements returns every element of the graph, in creation order.
func (g Graph) Elements() []Elem {
	var out []Elem
	for _, c := range g.Chains {
		out = append(out, c.Elems...)
	}
	return out
}

// Find returns the element with the given name.
func (g Graph) Find(name string) (Elem, bool) {
	for _, e := range g.Elements() {
		if e.Name == name {
			return e, true
		}
	}
	return Elem{}, false
}

func (e Elem) launch() string {
	if e.Factory == "capsfilter" {
		for _, p := range e.Props {
			if p.Name == "caps" {
				return p.Value
			}
		}
	}
	s := e.Factory + " name=" + e.Name
	for _, p := range e.Props {
		v := p.Value
		if strings.ContainsAny(v, " ,;") {
			v = strconv.Quote(v)
		}
		s += " " + p.Name + "=" + v
	}
	return s
}

// El is one element to create (each output kind's sender graph is built
// with it in its own file of internal/media).
func El(factory, name string, props ...Prop) Elem {
	return Elem{Factory: factory, Name: name, Props: props}
}

// P is a property assignment; v is a bool, int, int64, uint64 or string.
func P(name string, v any) Prop {
	switch x := v.(type) {
	case bool:
		return Prop{name, strconv.FormatBool(x)}
	case int:
		return Prop{name, strconv.Itoa(x)}
	case int64:
		return Prop{name, strconv.FormatInt(x, 10)}
	case uint64:
		return Prop{name, strconv.FormatUint(x, 10)}
	case string:
		return Prop{name, x}
	default:
		panic(fmt.Sprintf("graph: unsupported property type %T", v))
	}
}

// Caps is a capsfilter.
func Caps(name string, s string) Elem {
	return El("capsfilter", name, P("caps", s))
}
