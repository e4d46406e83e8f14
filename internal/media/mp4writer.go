package media

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/app"

	"github.com/makercast/makercast/internal/media/graph"
)

// mp4Writer writes encoded H.264 and AAC samples, pushed from Go, into one
// fragmented MP4 file: appsrc pair into mp4mux into filesink. mp4mux
// writes the header (moov) first and then a fragment (moof + mdat) every
// fragment, written through at once (and synced by the recorder), so a file
// cut short by a power cut or kill -9 plays up to its last whole fragment; a finished file gets its
// index and durations written at the end. Each sample keeps its caps,
// timestamps and segment (the encoders' segments differ: x264 puts video
// 1000 hours in), so mp4mux lines the streams up by running time and
// starts the file at its first sample.
type mp4Writer struct {
	p    *pipeline
	v, a *app.Source
	Path string
	// file is the same file, opened to sync what was written to the disk.
	file *os.File
}

// MP4Graph is the writer pipeline for one file.
func MP4Graph(path string, fragment time.Duration) graph.Graph {
	src := func(name string) graph.Elem {
		return graph.El("appsrc", name, graph.P("format", "time"), graph.P("is-live", false),
			graph.P("block", false), graph.P("max-bytes", uint64(0)), graph.P("handle-segment-change", true))
	}
	return graph.Graph{Chains: []graph.Chain{
		{Elems: []graph.Elem{
			graph.El("mp4mux", "mux", graph.P("fragment-duration", int(fragment.Milliseconds()))),
			// Unbuffered: what mp4mux wrote is in the kernel at once, not in
			// a user-space buffer a crash would lose; the recorder has it
			// reach the disk (fdatasync) every second.
			graph.El("filesink", "file", graph.P("location", path), graph.P("buffer-mode", "unbuffered"), graph.P("async", false)),
		}},
		{Elems: []graph.Elem{src("vsrc")}, To: "mux.video_%u"},
		{Elems: []graph.Elem{src("asrc")}, To: "mux.audio_%u"},
	}}
}

func newMP4Writer(log *slog.Logger, path string, fragment time.Duration) (*mp4Writer, error) {
	p, err := newPipeline("mp4", MP4Graph(path, fragment), log)
	if err != nil {
		return nil, err
	}
	w := &mp4Writer{p: p, v: app.SrcFromElement(p.els["vsrc"]), a: app.SrcFromElement(p.els["asrc"]), Path: path}
	p.watch()
	if err := p.pipe.SetState(gst.StatePlaying); err != nil {
		p.close()
		return nil, fmt.Errorf("media: start the writer of %s: %w", path, err)
	}
	// filesink has created it in READY.
	if w.file, err = os.Open(path); err != nil {
		p.close()
		return nil, fmt.Errorf("media: %w", err)
	}
	return w, nil
}

// push writes one sample (video or audio).
func (w *mp4Writer) push(video bool, smp *gst.Sample) error {
	select {
	case err := <-w.p.errc:
		w.p.fail(err) // keep it for finish
		return fmt.Errorf("media: writing %s: %w", w.Path, err)
	default:
	}
	src := w.a
	if video {
		src = w.v
	}
	if r := src.PushSample(smp); r != gst.FlowOK {
		return fmt.Errorf("media: writing %s: %s", w.Path, r)
	}
	return nil
}

// sync has what was written so far reach the disk: a power cut then loses
// at most what came since.
func (w *mp4Writer) sync() error {
	if err := w.file.Sync(); err != nil {
		return fmt.Errorf("media: sync %s: %w", w.Path, err)
	}
	return nil
}

// finish ends the file (EOS: mp4mux writes its index) and stops the writer,
// waiting at most within for the file to be complete.
func (w *mp4Writer) finish(within time.Duration) error {
	w.v.EndStream()
	w.a.EndStream()
	var err error
	select {
	case err = <-w.p.errc:
		if errors.Is(err, errEOS) {
			err = nil
		}
	case <-time.After(within):
		err = fmt.Errorf("media: %s not complete within %s", w.Path, within)
	}
	w.p.close()
	if serr := w.file.Sync(); serr != nil && err == nil {
		err = fmt.Errorf("media: sync %s: %w", w.Path, serr)
	}
	w.file.Close()
	return err
}
