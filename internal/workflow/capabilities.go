package workflow

import (
	"encoding/json"
	"slices"
)

// Capabilities are the optional node classes the server has; the builder
// uses them to choose between alternatives. They are detected once at start
// from /object_info (CapabilitiesFrom).
type Capabilities struct {
	// VideoHelperSuite: VHS_VideoCombine with the video/h264-mp4 format is
	// installed; the video is written by it (CRF and pixel format control).
	// Otherwise core CreateVideo + SaveVideo write it.
	VideoHelperSuite bool `json:"video_helper_suite"`
	// TorchCompile: the TorchCompileModel node exists.
	TorchCompile bool `json:"torch_compile"`
}

// The node classes behind the capabilities, for /object_info/<class> look-ups.
const (
	ClassVideoCombine = "VHS_VideoCombine"
	ClassTorchCompile = "TorchCompileModel"
)

// vhsFormat is the VideoHelperSuite format the builder writes.
const vhsFormat = "video/h264-mp4"

// CapabilitiesFrom detects the capabilities from /object_info entries (the
// whole response, or only the classes named above). VideoHelperSuite counts
// only when its format list offers H.264 MP4, which needs ffmpeg formats to
// have been found at ComfyUI's start.
func CapabilitiesFrom(objectInfo map[string]json.RawMessage) Capabilities {
	var caps Capabilities
	if raw, ok := objectInfo[ClassTorchCompile]; ok && len(raw) > 0 {
		caps.TorchCompile = true
	}
	if raw, ok := objectInfo[ClassVideoCombine]; ok {
		if c, err := parseClass(ClassVideoCombine, raw); err == nil {
			if f, _, ok := c.Input("format"); ok && f.Type == TypeCombo && slices.Contains(f.Options, any(vhsFormat)) {
				caps.VideoHelperSuite = true
			}
		}
	}
	return caps
}
