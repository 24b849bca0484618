// Package mp4 reads the metadata of an MP4 (ISO base media) file — the video
// track's size, frame count, frame rate, duration and codec — straight from
// the container, without decoding anything and without reading the media
// data.
//
// It understands 32- and 64-bit box sizes, a moov before or after the media
// data (with or without +faststart), stsz and stz2 sample tables, stco and
// co64 chunk tables, and fragmented files (moof/traf/trun with mvex/trex
// defaults). Malformed input yields an error, never a panic, and the work
// done is bounded by the input's size.
//
// It is not built on github.com/abema/go-mp4 or github.com/Eyevinn/mp4ff
// because neither reads stz2 sample tables, and their errors would still have
// to be sorted into ErrNotMP4, ErrNoVideo and FormatError, which is most of
// the work done here.
package mp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Info is what Probe reads from the first video track.
type Info struct {
	Width     int     `json:"width"`      // coded width from the sample entry (tkhd's when absent)
	Height    int     `json:"height"`     // coded height from the sample entry (tkhd's when absent)
	Frames    int     `json:"frames"`     // number of samples of the video track
	FrameRate float64 `json:"frame_rate"` // frames per second: timescale/delta when constant, else frames/duration
	Duration  float64 `json:"duration_s"` // seconds: the track's media duration
	Codec     string  `json:"codec"`      // h264, hevc, av1, vp9, mpeg4, or the sample entry's four-character code
	MimeType  string  `json:"mime_type"`  // video/mp4, or video/quicktime for QuickTime files
}

// ErrNotMP4 is returned when the input has no box structure at all.
var ErrNotMP4 = errors.New("mp4: not an MP4 file")

// ErrNoVideo is returned when the file has no video track.
var ErrNoVideo = errors.New("mp4: no video track")

// FormatError reports a malformed box.
type FormatError struct {
	Box    string // the box type, e.g. "stts"
	Offset int64  // where the box starts
	Msg    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("mp4: malformed %q box at offset %d: %s", e.Box, e.Offset, e.Msg)
}

// Limits that bound the work on hostile input.
const (
	maxDepth   = 16      // box nesting
	maxTracks  = 64      // trak boxes considered
	maxEntries = 1 << 26 // stts/trun entries walked in total
	chunkBytes = 64 << 10
)

// box is one box header.
type box struct {
	typ    string
	start  int64 // offset of the header
	body   int64 // offset of the payload
	end    int64 // offset just past the box
	header int64
}

// track collects what one trak says.
type track struct {
	id          uint32
	handler     string
	tkhdW       int
	tkhdH       int
	timescale   uint32
	mdhdDur     uint64
	codec       string
	entryW      int
	entryH      int
	samples     uint64
	haveSamples bool
	sttsTotal   uint64 // sum of count*delta
	sttsCount   uint64 // sum of counts
	sttsDelta   uint32 // the delta when every entry has the same one
	sttsUniform bool
	// from fragments
	fragSamples  uint64
	fragDuration uint64
	fragDelta    uint32
	fragUniform  bool
	fragSeen     bool
}

type parser struct {
	r       io.ReaderAt
	size    int64
	buf     []byte
	entries int64
	brand   string
	tracks  []*track
	byID    map[uint32]*track
	frag    bool
	mehd    uint64
	mvhdTS  uint32
	trex    map[uint32]uint32 // track id → default sample duration
}

// Probe reads the metadata of the MP4 file in r, which is size bytes long.
func Probe(r io.ReaderAt, size int64) (Info, error) {
	if size < 8 {
		return Info{}, ErrNotMP4
	}
	p := &parser{r: r, size: size, buf: make([]byte, chunkBytes), byID: map[uint32]*track{}, trex: map[uint32]uint32{}}
	sawBox := false
	err := p.walk(0, size, 0, func(b box) error {
		switch b.typ {
		case "ftyp":
			sawBox = true
			return p.ftyp(b)
		case "moov":
			sawBox = true
			return p.walk(b.body, b.end, 1, p.moovChild)
		case "moof":
			sawBox = true
			p.frag = true
			return p.walk(b.body, b.end, 1, p.moofChild)
		case "mdat", "free", "skip", "wide", "uuid", "sidx", "styp", "mfra", "meta", "pdin", "prft", "emsg":
			sawBox = true
		}
		return nil
	})
	if err != nil {
		if !sawBox && errors.As(err, new(*FormatError)) {
			return Info{}, ErrNotMP4
		}
		return Info{}, err
	}
	if !sawBox {
		return Info{}, ErrNotMP4
	}
	return p.info()
}

// walk iterates the boxes in [from, to) and calls fn on each.
func (p *parser) walk(from, to int64, depth int, fn func(box) error) error {
	if depth > maxDepth {
		return &FormatError{Box: "?", Offset: from, Msg: "boxes nested too deeply"}
	}
	var hdr [16]byte
	for off := from; off < to; {
		if to-off < 8 {
			// Trailing bytes too short for a header: tolerated (padding).
			return nil
		}
		if err := p.readAt(hdr[:8], off); err != nil {
			return err
		}
		size := int64(binary.BigEndian.Uint32(hdr[0:4]))
		typ := string(hdr[4:8])
		hl := int64(8)
		switch size {
		case 1:
			if to-off < 16 {
				return &FormatError{Box: printable(typ), Offset: off, Msg: "truncated 64-bit size"}
			}
			if err := p.readAt(hdr[8:16], off+8); err != nil {
				return err
			}
			u := binary.BigEndian.Uint64(hdr[8:16])
			if u > math.MaxInt64 {
				return &FormatError{Box: printable(typ), Offset: off, Msg: "64-bit size out of range"}
			}
			size, hl = int64(u), 16
		case 0:
			size = to - off // extends to the end of its parent
		}
		if size < hl {
			return &FormatError{Box: printable(typ), Offset: off, Msg: fmt.Sprintf("size %d smaller than its header", size)}
		}
		if size > to-off {
			// A box that claims more than is there: a truncated file. The
			// media data is commonly cut short; anything else is an error.
			if typ != "mdat" {
				return &FormatError{Box: printable(typ), Offset: off, Msg: fmt.Sprintf("size %d runs past the end (%d bytes left)", size, to-off)}
			}
			size = to - off
		}
		b := box{typ: typ, start: off, body: off + hl, end: off + size, header: hl}
		if err := fn(b); err != nil {
			return err
		}
		off += size
	}
	return nil
}

func (p *parser) readAt(dst []byte, off int64) error {
	if off < 0 || off > p.size || int64(len(dst)) > p.size-off {
		return &FormatError{Box: "?", Offset: off, Msg: "read past the end of the file"}
	}
	n, err := p.r.ReadAt(dst, off)
	if n == len(dst) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return &FormatError{Box: "?", Offset: off, Msg: "file shorter than its size"}
	}
	return fmt.Errorf("mp4: read at %d: %w", off, err)
}

// payload reads the whole payload of a small box (bounded by chunkBytes).
func (p *parser) payload(b box, min int64) ([]byte, error) {
	n := b.end - b.body
	if n < min {
		return nil, &FormatError{Box: printable(b.typ), Offset: b.start, Msg: fmt.Sprintf("payload of %d bytes, need at least %d", n, min)}
	}
	if n > int64(len(p.buf)) {
		n = int64(len(p.buf))
	}
	out := p.buf[:n]
	if err := p.readAt(out, b.body); err != nil {
		return nil, err
	}
	return out, nil
}

func (p *parser) ftyp(b box) error {
	d, err := p.payload(b, 4)
	if err != nil {
		return err
	}
	p.brand = string(d[:4])
	return nil
}

func (p *parser) moovChild(b box) error {
	switch b.typ {
	case "mvhd":
		d, err := p.payload(b, 4+16)
		if err != nil {
			return err
		}
		if d[0] == 1 {
			if len(d) < 4+20 {
				return &FormatError{Box: "mvhd", Offset: b.start, Msg: "too short for version 1"}
			}
			p.mvhdTS = binary.BigEndian.Uint32(d[20:24])
		} else {
			p.mvhdTS = binary.BigEndian.Uint32(d[12:16])
		}
	case "trak":
		if len(p.tracks) >= maxTracks {
			return nil
		}
		t := &track{}
		if err := p.walk(b.body, b.end, 2, func(c box) error { return p.trakChild(t, c, 2) }); err != nil {
			return err
		}
		p.tracks = append(p.tracks, t)
		if t.id != 0 {
			if _, dup := p.byID[t.id]; !dup {
				p.byID[t.id] = t
			}
		}
	case "mvex":
		p.frag = true
		return p.walk(b.body, b.end, 2, p.mvexChild)
	}
	return nil
}

func (p *parser) mvexChild(b box) error {
	switch b.typ {
	case "mehd":
		d, err := p.payload(b, 8)
		if err != nil {
			return err
		}
		if d[0] == 1 {
			if len(d) < 12 {
				return &FormatError{Box: "mehd", Offset: b.start, Msg: "too short for version 1"}
			}
			p.mehd = binary.BigEndian.Uint64(d[4:12])
		} else {
			p.mehd = uint64(binary.BigEndian.Uint32(d[4:8]))
		}
	case "trex":
		d, err := p.payload(b, 24)
		if err != nil {
			return err
		}
		p.trex[binary.BigEndian.Uint32(d[4:8])] = binary.BigEndian.Uint32(d[12:16])
	}
	return nil
}

func (p *parser) trakChild(t *track, b box, depth int) error {
	switch b.typ {
	case "tkhd":
		d, err := p.payload(b, 4)
		if err != nil {
			return err
		}
		// version 0: 4 flags + 4 ctime + 4 mtime + 4 id + 4 reserved + 4 duration
		// + 8 reserved + 2 layer + 2 group + 2 volume + 2 reserved + 36 matrix + 4 w + 4 h
		idOff, whOff := 12, 76
		if d[0] == 1 {
			idOff, whOff = 20, 88
		}
		if len(d) < whOff+8 {
			return &FormatError{Box: "tkhd", Offset: b.start, Msg: "too short"}
		}
		t.id = binary.BigEndian.Uint32(d[idOff : idOff+4])
		t.tkhdW = int(binary.BigEndian.Uint32(d[whOff:whOff+4]) >> 16)
		t.tkhdH = int(binary.BigEndian.Uint32(d[whOff+4:whOff+8]) >> 16)
	case "mdia", "minf", "stbl":
		return p.walk(b.body, b.end, depth+1, func(c box) error { return p.trakChild(t, c, depth+1) })
	case "mdhd":
		d, err := p.payload(b, 4)
		if err != nil {
			return err
		}
		if d[0] == 1 {
			if len(d) < 32 {
				return &FormatError{Box: "mdhd", Offset: b.start, Msg: "too short for version 1"}
			}
			t.timescale = binary.BigEndian.Uint32(d[20:24])
			t.mdhdDur = binary.BigEndian.Uint64(d[24:32])
		} else {
			if len(d) < 20 {
				return &FormatError{Box: "mdhd", Offset: b.start, Msg: "too short"}
			}
			t.timescale = binary.BigEndian.Uint32(d[12:16])
			t.mdhdDur = uint64(binary.BigEndian.Uint32(d[16:20]))
			if t.mdhdDur == math.MaxUint32 {
				t.mdhdDur = 0 // "unknown"
			}
		}
	case "hdlr":
		d, err := p.payload(b, 12)
		if err != nil {
			return err
		}
		t.handler = string(d[8:12])
	case "stsd":
		return p.stsd(t, b)
	case "stsz":
		d, err := p.payload(b, 12)
		if err != nil {
			return err
		}
		t.samples = uint64(binary.BigEndian.Uint32(d[8:12]))
		t.haveSamples = true
		if binary.BigEndian.Uint32(d[4:8]) == 0 && uint64(b.end-b.body-12) < 4*t.samples {
			return &FormatError{Box: "stsz", Offset: b.start, Msg: "sample count larger than its table"}
		}
	case "stz2":
		d, err := p.payload(b, 12)
		if err != nil {
			return err
		}
		field := uint64(d[7])
		t.samples = uint64(binary.BigEndian.Uint32(d[8:12]))
		t.haveSamples = true
		if field != 4 && field != 8 && field != 16 {
			return &FormatError{Box: "stz2", Offset: b.start, Msg: fmt.Sprintf("field size %d", field)}
		}
		if uint64(b.end-b.body-12)*8 < field*t.samples {
			return &FormatError{Box: "stz2", Offset: b.start, Msg: "sample count larger than its table"}
		}
	case "stts":
		return p.stts(t, b)
	case "stco", "co64":
		d, err := p.payload(b, 8)
		if err != nil {
			return err
		}
		width := uint64(4)
		if b.typ == "co64" {
			width = 8
		}
		if n := uint64(binary.BigEndian.Uint32(d[4:8])); uint64(b.end-b.body-8) < width*n {
			return &FormatError{Box: b.typ, Offset: b.start, Msg: "entry count larger than its table"}
		}
	}
	return nil
}

// stsd reads the first sample entry: its four-character code and, for
// visual entries, the coded width and height.
func (p *parser) stsd(t *track, b box) error {
	d, err := p.payload(b, 8)
	if err != nil {
		return err
	}
	if binary.BigEndian.Uint32(d[4:8]) == 0 {
		return nil
	}
	// First entry: a box header, then 6 reserved + 2 data_reference_index,
	// then for a VisualSampleEntry 16 bytes of pre_defined/reserved, then
	// width (16 bits) and height (16 bits).
	if len(d) < 8+8 {
		return &FormatError{Box: "stsd", Offset: b.start, Msg: "no room for its first entry"}
	}
	t.codec = string(d[12:16])
	if len(d) >= 8+8+8+16+4 {
		t.entryW = int(binary.BigEndian.Uint16(d[8+8+8+16:]))
		t.entryH = int(binary.BigEndian.Uint16(d[8+8+8+16+2:]))
	}
	return nil
}

// stts sums the time-to-sample table in bounded chunks.
func (p *parser) stts(t *track, b box) error {
	d, err := p.payload(b, 8)
	if err != nil {
		return err
	}
	n := int64(binary.BigEndian.Uint32(d[4:8]))
	if n*8 > b.end-b.body-8 {
		return &FormatError{Box: "stts", Offset: b.start, Msg: "entry count larger than its table"}
	}
	if p.entries += n; p.entries > maxEntries {
		return &FormatError{Box: "stts", Offset: b.start, Msg: "too many entries"}
	}
	t.sttsUniform = true
	first := true
	off := b.body + 8
	for left := n; left > 0; {
		k := min(left, int64(len(p.buf)/8))
		chunk := p.buf[:k*8]
		if err := p.readAt(chunk, off); err != nil {
			return err
		}
		for i := int64(0); i < k; i++ {
			count := uint64(binary.BigEndian.Uint32(chunk[i*8:]))
			delta := binary.BigEndian.Uint32(chunk[i*8+4:])
			if count == 0 {
				continue
			}
			t.sttsCount += count
			t.sttsTotal += count * uint64(delta)
			if first {
				t.sttsDelta, first = delta, false
			} else if delta != t.sttsDelta {
				t.sttsUniform = false
			}
		}
		left -= k
		off += k * 8
	}
	if first {
		t.sttsUniform = false
	}
	return nil
}

// moofChild handles one box inside a movie fragment.
func (p *parser) moofChild(b box) error {
	if b.typ != "traf" {
		return nil
	}
	var (
		t           *track
		defDuration uint32
		haveDefault bool
	)
	return p.walk(b.body, b.end, 2, func(c box) error {
		switch c.typ {
		case "tfhd":
			d, err := p.payload(c, 8)
			if err != nil {
				return err
			}
			flags := binary.BigEndian.Uint32(d[0:4]) & 0xffffff
			t = p.byID[binary.BigEndian.Uint32(d[4:8])]
			pos := 8
			if flags&0x01 != 0 {
				pos += 8 // base_data_offset
			}
			if flags&0x02 != 0 {
				pos += 4 // sample_description_index
			}
			if flags&0x08 != 0 {
				if len(d) < pos+4 {
					return &FormatError{Box: "tfhd", Offset: c.start, Msg: "too short"}
				}
				defDuration, haveDefault = binary.BigEndian.Uint32(d[pos:pos+4]), true
			}
		case "trun":
			if t == nil {
				return nil // a track we do not know (or tfhd missing)
			}
			dflt := p.trex[t.id]
			if haveDefault {
				dflt = defDuration
			}
			return p.trun(t, c, dflt)
		}
		return nil
	})
}

// trun adds one track run's samples and durations to t.
func (p *parser) trun(t *track, b box, dflt uint32) error {
	d, err := p.payload(b, 8)
	if err != nil {
		return err
	}
	flags := binary.BigEndian.Uint32(d[0:4]) & 0xffffff
	n := int64(binary.BigEndian.Uint32(d[4:8]))
	pos := int64(8)
	if flags&0x01 != 0 {
		pos += 4 // data_offset
	}
	if flags&0x04 != 0 {
		pos += 4 // first_sample_flags
	}
	per := int64(0)
	for _, f := range []uint32{0x100, 0x200, 0x400, 0x800} {
		if flags&f != 0 {
			per += 4
		}
	}
	if pos > b.end-b.body || n*per > b.end-b.body-pos {
		return &FormatError{Box: "trun", Offset: b.start, Msg: "sample count larger than its table"}
	}
	if p.entries += n; p.entries > maxEntries {
		return &FormatError{Box: "trun", Offset: b.start, Msg: "too many entries"}
	}
	if !t.fragSeen {
		t.fragSeen, t.fragUniform = true, true
		t.fragDelta = 0
	}
	record := func(delta uint32) {
		if t.fragSamples == 0 {
			t.fragDelta = delta
		} else if delta != t.fragDelta {
			t.fragUniform = false
		}
		t.fragSamples++
		t.fragDuration += uint64(delta)
	}
	if flags&0x100 == 0 {
		// Every sample has the default duration.
		if n > 0 {
			record(dflt)
			t.fragSamples += uint64(n - 1)
			t.fragDuration += uint64(n-1) * uint64(dflt)
		}
		return nil
	}
	off := b.body + pos
	perChunk := int64(len(p.buf)) / per
	for left := n; left > 0; {
		k := min(left, perChunk)
		chunk := p.buf[:k*per]
		if err := p.readAt(chunk, off); err != nil {
			return err
		}
		for i := int64(0); i < k; i++ {
			record(binary.BigEndian.Uint32(chunk[i*per:]))
		}
		left -= k
		off += k * per
	}
	return nil
}

// info picks the first video track and turns what it says into Info.
func (p *parser) info() (Info, error) {
	var v *track
	for _, t := range p.tracks {
		if t.handler == "vide" {
			v = t
			break
		}
	}
	if v == nil {
		return Info{}, ErrNoVideo
	}
	info := Info{Codec: codecName(v.codec), MimeType: "video/mp4"}
	if p.brand == "qt  " {
		info.MimeType = "video/quicktime"
	}
	info.Width, info.Height = v.entryW, v.entryH
	if info.Width == 0 || info.Height == 0 {
		info.Width, info.Height = v.tkhdW, v.tkhdH
	}

	var (
		frames  uint64
		ticks   uint64 // duration in media timescale units
		delta   uint32
		uniform bool
	)
	switch {
	case v.fragSeen && v.fragSamples > 0:
		// Fragmented: the samples in moov (usually none) plus those in the fragments.
		frames = v.samples + v.fragSamples
		ticks = v.sttsTotal + v.fragDuration
		delta, uniform = v.fragDelta, v.fragUniform
		if v.sttsCount > 0 && (!v.sttsUniform || v.sttsDelta != v.fragDelta) {
			uniform = false
		}
	default:
		frames = v.samples
		if !v.haveSamples {
			frames = v.sttsCount
		}
		ticks = v.sttsTotal
		delta, uniform = v.sttsDelta, v.sttsUniform
	}
	if ticks == 0 {
		ticks = v.mdhdDur
	}
	if ticks == 0 && p.mehd > 0 && p.mvhdTS > 0 && v.timescale > 0 {
		ticks = uint64(float64(p.mehd) / float64(p.mvhdTS) * float64(v.timescale))
	}
	if frames > math.MaxInt32 {
		return Info{}, &FormatError{Box: "stsz", Msg: fmt.Sprintf("%d samples", frames)}
	}
	info.Frames = int(frames)
	if v.timescale > 0 {
		info.Duration = float64(ticks) / float64(v.timescale)
	}
	switch {
	case uniform && delta > 0 && v.timescale > 0:
		info.FrameRate = float64(v.timescale) / float64(delta)
	case info.Duration > 0:
		info.FrameRate = float64(info.Frames) / info.Duration
	}
	return info, nil
}

// codecName maps a sample entry code to the name ffprobe uses.
func codecName(fourcc string) string {
	switch fourcc {
	case "avc1", "avc2", "avc3", "avc4":
		return "h264"
	case "hvc1", "hev1":
		return "hevc"
	case "av01":
		return "av1"
	case "vp08":
		return "vp8"
	case "vp09":
		return "vp9"
	case "mp4v":
		return "mpeg4"
	case "mjpa", "mjpb", "jpeg":
		return "mjpeg"
	case "":
		return ""
	}
	return printable(fourcc)
}

// printable keeps a four-character code readable in messages.
func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
