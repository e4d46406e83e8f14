package media

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/go-gst/go-gst/gst"

	"github.com/makercast/makercast/internal/media/graph"
)

// AssembleTimelapse encodes the JPEG frames matching pattern (numbered from
// 0, e.g. dir/frame-%06d.jpg) into an MP4 at out. The video is written to
// out+".part" and renamed when complete; on any failure nothing is left.
func (e *Engine) AssembleTimelapse(ctx context.Context, pattern string, fps int, out string) error {
	if fps < 1 || fps > 60 {
		return fmt.Errorf("media: timelapse fps %d must be within 1..60", fps)
	}
	tmp := out + ".part"
	p, err := newPipeline("timelapse", graph.TimelapseGraph(pattern, fps, tmp), e.log)
	if err != nil {
		return err
	}
	p.watch()
	fail := func(err error) error {
		p.close()
		os.Remove(tmp)
		return err
	}
	if err := p.pipe.SetState(gst.StatePlaying); err != nil {
		return fail(fmt.Errorf("media: start timelapse encoder: %w", err))
	}
	select {
	case err := <-p.errc:
		if !errors.Is(err, errEOS) {
			return fail(fmt.Errorf("media: timelapse encoder: %w", err))
		}
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	p.close()
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("media: %w", err)
	}
	return nil
}

var errEOS = errors.New("end of stream")
