// Package agent is makercast's domain: cameras, what they feed (outputs:
// RTMP and SRT destinations, a recording), the commands that drive them and
// the state they report. It owns its vocabulary (media.go, output.go) and
// talks to GStreamer, MQTT and the disk only through the small interfaces
// in ports.go; the adapters (internal/media, internal/mqtt, internal/store,
// homeassistant) import it, never the reverse.
//
// # How a command becomes a pipeline change
//
// Take makercast/pi1/camera/test/stream/set with payload ON:
//
//  1. internal/mqtt's handler copies the message and calls Agent.Deliver,
//     which hands it to the loop's inbox without blocking (paho's goroutine
//     must never wait).
//  2. Run's loop takes it: handle → Topics.ParseCommand (commands.go: the
//     topic routes to a kind, the kind's parser decodes the payload into its
//     own request type, rejecting any field it does not have) → execute
//     (execute.go), which only changes the state: the camera's destinations
//     are switched on, each with a new generation.
//  3. After the step, afterStep derives what follows, in one place: each
//     camera's demand (demand.go: the consumers it should feed now, and why
//     it is open) is compared with what its runner was last given, and a
//     changed one is handed over (cameraRunner.setDemand, never blocking);
//     the retained documents are rendered and only the changed ones go to
//     the outbox (state.go, outbox.go), which publishes on its own goroutine.
//  4. The camera's runner (runner.go, one goroutine per camera) opens the
//     capture through the Media port (internal/media builds the pipeline)
//     and starts one attach loop per consumer.
//  5. The attach loop calls Capture.Attach with the consumer's Output; the
//     media adapter picks the sender of that kind (internal/media/rtmp.go,
//     srt.go, record.go), takes a free output slot and plays the sender
//     pipeline. Its hooks report live, progress and recorded segments.
//  6. The runner reports each change as a typed event (events.go); the loop
//     applies it to the state, and afterStep publishes what changed.
//
// # The parts of the state
//
// Only the loop touches the state. It is split into parts: per camera
// (camera.go: its capture as reported, hardware, snapshots, timelapse,
// recording), the destinations (destination.go), and device-wide parts:
// discovery, health, fleet, resume and recording retention. The loop never
// waits on the broker or the disk: MQTT goes through the outbox, file work
// through the worker (loop.go), timers are the loop's own.
//
// # A new kind of output
//
// An output kind is a type implementing Output (output.go) with its case in
// ParseDestination when it has a URL, and one sender file in
// internal/media with its case in senderFor. The runner, its supervision
// and backoff, slots, state and Home Assistant entities need no change.
package agent
