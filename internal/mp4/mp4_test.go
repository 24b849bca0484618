package mp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/mp4/mp4test"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the committed FuzzParse seed corpus from MP4s made with ffmpeg")

func probeFile(t *testing.T, path string) (Info, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return Probe(f, st.Size())
}

// TestProbeMatchesFFprobe encodes real MP4s and compares Probe with ffprobe.
func TestProbeMatchesFFprobe(t *testing.T) {
	mp4test.Need(t)
	specs := []mp4test.Spec{
		{Width: 64, Height: 64, Frames: 5, FPS: "16"},
		{Width: 64, Height: 64, Frames: 5, FPS: "16", FastStart: true},
		{Width: 832, Height: 480, Frames: 81, FPS: "16"},
		{Width: 832, Height: 480, Frames: 81, FPS: "16", FastStart: true},
		{Width: 1280, Height: 720, Frames: 121, FPS: "24", FastStart: true},
		{Width: 320, Height: 240, Frames: 37, FPS: "30"},
		{Width: 320, Height: 240, Frames: 47, FPS: "30000/1001", FastStart: true},
		{Width: 176, Height: 144, Frames: 13, FPS: "30", GOP: 4},
		{Width: 480, Height: 832, Frames: 33, FPS: "16", Fragmented: true, GOP: 8},
		{Width: 96, Height: 64, Frames: 9, FPS: "25", Codec: "mpeg4"},
		{Width: 128, Height: 96, Frames: 17, FPS: "16", Codec: "libx265", FastStart: true},
	}
	dir := t.TempDir()
	for _, s := range specs {
		t.Run(s.Name(), func(t *testing.T) {
			if s.Codec != "" && !mp4test.HasEncoder(s.Codec) {
				t.Skipf("ffmpeg built without %s", s.Codec)
			}
			path := mp4test.Make(t, dir, s)
			want := mp4test.FFprobe(t, path)
			got, err := probeFile(t, path)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if got.Width != want.Width || got.Height != want.Height {
				t.Errorf("size %dx%d, ffprobe %dx%d", got.Width, got.Height, want.Width, want.Height)
			}
			if got.Frames != want.Frames || got.Frames != s.Frames {
				t.Errorf("frames %d, ffprobe %d, encoded %d", got.Frames, want.Frames, s.Frames)
			}
			if got.Codec != want.Codec {
				t.Errorf("codec %q, ffprobe %q", got.Codec, want.Codec)
			}
			if math.Abs(got.FrameRate-want.FrameRate) > 1e-3*want.FrameRate {
				t.Errorf("frame rate %v, ffprobe %v", got.FrameRate, want.FrameRate)
			}
			if math.Abs(got.Duration-want.Duration) > 1/want.FrameRate+1e-6 {
				t.Errorf("duration %v, ffprobe %v", got.Duration, want.Duration)
			}
			if got.MimeType != "video/mp4" {
				t.Errorf("mime type %q", got.MimeType)
			}
		})
	}
}

// TestProbe64BitSizes rewrites a real file so that moov and every box in it
// use 64-bit size headers and the chunk table is co64, then checks that
// Probe reads the same metadata and that ffprobe still accepts the file.
func TestProbe64BitSizes(t *testing.T) {
	s := mp4test.Spec{Width: 160, Height: 96, Frames: 21, FPS: "16"} // moov after mdat
	path := mp4test.Make(t, t.TempDir(), s)
	orig := mp4test.ReadFile(t, path)
	want, err := Probe(bytes.NewReader(orig), int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	rewritten := rewrite64(t, orig)
	if bytes.Equal(rewritten, orig) {
		t.Fatal("rewrite changed nothing")
	}
	if !bytes.Contains(rewritten, []byte("co64")) {
		t.Fatal("no co64 box after rewrite")
	}
	got, err := Probe(bytes.NewReader(rewritten), int64(len(rewritten)))
	if err != nil {
		t.Fatalf("Probe of the 64-bit file: %v", err)
	}
	if got != want {
		t.Errorf("64-bit file: %+v, want %+v", got, want)
	}
	out := filepath.Join(t.TempDir(), "co64.mp4")
	if err := os.WriteFile(out, rewritten, 0o644); err != nil {
		t.Fatal(err)
	}
	if p := mp4test.FFprobe(t, out); p.Frames != s.Frames || p.Width != s.Width {
		t.Errorf("ffprobe of the rewritten file: %+v", p)
	}
}

// rewrite64 rewrites the top-level moov (which must follow mdat, so that no
// chunk offset moves) with 64-bit headers everywhere and stco turned into co64.
func rewrite64(t *testing.T, file []byte) []byte {
	t.Helper()
	var out []byte
	for off := 0; off < len(file); {
		size := int(binary.BigEndian.Uint32(file[off:]))
		typ := string(file[off+4 : off+8])
		if typ == "moov" {
			out = append(out, large(typ, rewriteChildren(file[off+8:off+size]))...)
		} else {
			out = append(out, file[off:off+size]...)
		}
		off += size
	}
	return out
}

func rewriteChildren(body []byte) []byte {
	containers := map[string]bool{"trak": true, "mdia": true, "minf": true, "stbl": true, "edts": true, "dinf": true, "udta": true}
	var out []byte
	for off := 0; off+8 <= len(body); {
		size := int(binary.BigEndian.Uint32(body[off:]))
		typ := string(body[off+4 : off+8])
		payload := body[off+8 : off+size]
		switch {
		case containers[typ]:
			out = append(out, large(typ, rewriteChildren(payload))...)
		case typ == "stco":
			n := binary.BigEndian.Uint32(payload[4:8])
			p := append([]byte{}, payload[:8]...)
			for i := range n {
				p = binary.BigEndian.AppendUint64(p, uint64(binary.BigEndian.Uint32(payload[8+4*i:])))
			}
			out = append(out, large("co64", p)...)
		default:
			out = append(out, large(typ, payload)...)
		}
		off += size
	}
	return out
}

// --- synthetic files ----------------------------------------------------------

func bx(typ string, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	return append(append(b, typ...), body...)
}

func large(typ string, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	b := binary.BigEndian.AppendUint32(nil, 1)
	b = append(b, typ...)
	b = binary.BigEndian.AppendUint64(b, uint64(16+len(body)))
	return append(b, body...)
}

func u32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

func u16(vs ...uint16) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

func tkhd(id uint32, w, h int) []byte {
	p := u32(0x00000003, 0, 0, id, 0, 0)
	p = append(p, make([]byte, 8+2+2+2+2+36)...)
	return bx("tkhd", p, u32(uint32(w)<<16, uint32(h)<<16))
}

func mdhd(timescale, duration uint32) []byte {
	return bx("mdhd", u32(0, 0, 0, timescale, duration), u16(0x55c4, 0))
}

func hdlr(kind string) []byte {
	return bx("hdlr", u32(0, 0), []byte(kind), u32(0, 0, 0), []byte("h\x00"))
}

func stsd(fourcc string, w, h int) []byte {
	entry := bx(fourcc, make([]byte, 6), u16(1), make([]byte, 16), u16(uint16(w), uint16(h)), make([]byte, 50))
	return bx("stsd", u32(0, 1), entry)
}

type run struct{ count, delta uint32 }

func stts(runs ...run) []byte {
	p := u32(0, uint32(len(runs)))
	for _, r := range runs {
		p = append(p, u32(r.count, r.delta)...)
	}
	return bx("stts", p)
}

func stsz(n int) []byte { return bx("stsz", u32(0, 100, uint32(n))) }

func ftyp(brand string) []byte {
	return bx("ftyp", []byte(brand), u32(0x200), []byte("isomiso2avc1mp41"))
}

func videoTrak(id uint32, timescale, duration uint32, stbl ...[]byte) []byte {
	return bx("trak", tkhd(id, 64, 48), bx("mdia", mdhd(timescale, duration), hdlr("vide"),
		bx("minf", bx("stbl", append([][]byte{stsd("avc1", 64, 48)}, stbl...)...))))
}

func audioTrak(id uint32) []byte {
	return bx("trak", tkhd(id, 0, 0), bx("mdia", mdhd(48000, 48000), hdlr("soun"),
		bx("minf", bx("stbl", bx("stsd", u32(0, 1), bx("mp4a", make([]byte, 28))), stts(run{47, 1024}), stsz(47)))))
}

func mvhd() []byte { return bx("mvhd", u32(0, 0, 0, 1000, 0), make([]byte, 80)) }

func TestProbeSynthetic(t *testing.T) {
	simple := bytes.Join([][]byte{ftyp("isom"), bx("moov", mvhd(), audioTrak(2),
		videoTrak(1, 16384, 81*1024, stts(run{81, 1024}), stsz(81), bx("stco", u32(0, 0))))}, nil)
	variable := bytes.Join([][]byte{ftyp("isom"), bx("moov", mvhd(),
		videoTrak(1, 1000, 0, stts(run{10, 40}, run{10, 60}), bx("stz2", u32(0, 8, 20), make([]byte, 20))))}, nil)
	quicktime := bytes.Join([][]byte{ftyp("qt  "), bx("moov", mvhd(),
		videoTrak(1, 600, 0, stts(run{24, 25}), stsz(24)))}, nil)
	// A fragmented file: empty sample tables in moov, trex defaults, two fragments.
	traf := func(n uint32, withDurations bool) []byte {
		tfhd := bx("tfhd", u32(0x020000, 1)) // default-base-is-moof
		if !withDurations {
			return bx("traf", tfhd, bx("trun", u32(0x000001, n, 0)))
		}
		p := u32(0x000101, n, 0)
		for range n {
			p = append(p, u32(512)...)
		}
		return bx("traf", tfhd, bx("trun", p))
	}
	fragmented := bytes.Join([][]byte{ftyp("iso5"), bx("moov", mvhd(),
		videoTrak(1, 8192, 0, stts(), stsz(0)),
		bx("mvex", bx("trex", u32(0, 1, 1, 512, 0, 0)))),
		bx("moof", bx("mfhd", u32(0, 1)), traf(8, false)), bx("mdat"),
		bx("moof", bx("mfhd", u32(0, 2)), traf(9, true)), bx("mdat")}, nil)
	sixtyFour := bytes.Join([][]byte{large("ftyp", []byte("isom"), u32(0)), large("moov", mvhd(),
		videoTrak(1, 16, 5, stts(run{5, 1}), stsz(5), bx("co64", u32(0, 1), make([]byte, 8)))),
		bx("mdat", make([]byte, 100))}, nil)
	// mdat claiming more than the file holds (a truncated download) after moov.
	truncatedMdat := append(append([]byte{}, simple...), bx("mdat", make([]byte, 64))[:40]...)
	// mdat of size 0 ("to the end of the file") before moov would hide moov;
	// at the end it is fine.
	sizeZeroMdat := append(append([]byte{}, simple...), append(u32(0), []byte("mdat....")...)...)

	tests := []struct {
		name string
		in   []byte
		want Info
	}{
		{"constant rate with audio", simple, Info{Width: 64, Height: 48, Frames: 81, FrameRate: 16, Duration: 81.0 / 16, Codec: "h264", MimeType: "video/mp4"}},
		{"variable rate, stz2", variable, Info{Width: 64, Height: 48, Frames: 20, FrameRate: 20, Duration: 1, Codec: "h264", MimeType: "video/mp4"}},
		{"quicktime brand", quicktime, Info{Width: 64, Height: 48, Frames: 24, FrameRate: 24, Duration: 1, Codec: "h264", MimeType: "video/quicktime"}},
		{"fragmented", fragmented, Info{Width: 64, Height: 48, Frames: 17, FrameRate: 16, Duration: 17.0 / 16, Codec: "h264", MimeType: "video/mp4"}},
		{"64-bit headers and co64", sixtyFour, Info{Width: 64, Height: 48, Frames: 5, FrameRate: 16, Duration: 5.0 / 16, Codec: "h264", MimeType: "video/mp4"}},
		{"truncated mdat", truncatedMdat, Info{Width: 64, Height: 48, Frames: 81, FrameRate: 16, Duration: 81.0 / 16, Codec: "h264", MimeType: "video/mp4"}},
		{"size-0 mdat at the end", sizeZeroMdat, Info{Width: 64, Height: 48, Frames: 81, FrameRate: 16, Duration: 81.0 / 16, Codec: "h264", MimeType: "video/mp4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Probe(bytes.NewReader(tt.in), int64(len(tt.in)))
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestProbeErrors(t *testing.T) {
	good := bytes.Join([][]byte{ftyp("isom"), bx("moov", mvhd(),
		videoTrak(1, 16, 5, stts(run{5, 1}), stsz(5)))}, nil)
	var fe *FormatError
	tests := []struct {
		name string
		in   []byte
		size int64 // 0: len(in)
		is   error
		as   any
	}{
		{"empty", nil, 0, ErrNotMP4, nil},
		{"text", []byte("this is not a video, just some text"), 0, ErrNotMP4, nil},
		{"png header", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"), 0, ErrNotMP4, nil},
		{"audio only", bytes.Join([][]byte{ftyp("M4A "), bx("moov", mvhd(), audioTrak(1))}, nil), 0, ErrNoVideo, nil},
		{"no moov", bytes.Join([][]byte{ftyp("isom"), bx("mdat", make([]byte, 32))}, nil), 0, ErrNoVideo, nil},
		{"box smaller than its header", append(ftyp("isom"), u32(4, 0x6d6f6f76)...), 0, nil, &fe},
		{"moov past the end", append(ftyp("isom"), good[len(ftyp("isom")):len(good)-10]...), 0, nil, &fe},
		{"64-bit size past the end", append(ftyp("isom"), append(u32(1), append([]byte("moov"), 0xff, 0, 0, 0, 0, 0, 0, 0)...)...), 0, nil, &fe},
		{"stts count beyond its table", bytes.Join([][]byte{ftyp("isom"), bx("moov", mvhd(),
			videoTrak(1, 16, 5, bx("stts", u32(0, 0xffffffff, 5, 1)), stsz(5)))}, nil), 0, nil, &fe},
		{"stsz count beyond its table", bytes.Join([][]byte{ftyp("isom"), bx("moov", mvhd(),
			videoTrak(1, 16, 5, stts(run{5, 1}), bx("stsz", u32(0, 0, 0xfffffff0))))}, nil), 0, nil, &fe},
		{"trun count beyond its table", bytes.Join([][]byte{ftyp("isom"), bx("moov", mvhd(),
			videoTrak(1, 16, 0, stts(), stsz(0))), bx("moof", bx("traf", bx("tfhd", u32(0, 1)),
			bx("trun", u32(0x100, 0x7fffffff))))}, nil), 0, nil, &fe},
		{"reader shorter than size", good, int64(len(good)) + 100, nil, &fe},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := tt.size
			if size == 0 {
				size = int64(len(tt.in))
			}
			info, err := Probe(bytes.NewReader(tt.in), size)
			if err == nil {
				t.Fatalf("no error; got %+v", info)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v, want %v", err, tt.is)
			}
			if tt.as != nil && !errors.As(err, tt.as) {
				t.Errorf("error %v (%T), want a %T", err, err, tt.as)
			}
		})
	}
}

// TestProbeDeepNesting checks the nesting bound.
func TestProbeDeepNesting(t *testing.T) {
	inner := bx("stbl")
	for range 40 {
		inner = bx("minf", inner)
	}
	in := bytes.Join([][]byte{ftyp("isom"), bx("moov", bx("trak", bx("mdia", inner)))}, nil)
	_, err := Probe(bytes.NewReader(in), int64(len(in)))
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v, want a FormatError", err)
	}
}

// TestProbeEveryPrefix probes every truncation of a real file: each must
// either fail cleanly or, once moov is complete, give the full answer.
func TestProbeEveryPrefix(t *testing.T) {
	path := mp4test.Make(t, t.TempDir(), mp4test.Spec{Width: 32, Height: 32, Frames: 3, FPS: "8", FastStart: true})
	file := mp4test.ReadFile(t, path)
	want, err := Probe(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(file); n++ {
		got, err := Probe(bytes.NewReader(file[:n]), int64(n))
		if err == nil && got != want {
			t.Fatalf("prefix %d: %+v, want %+v or an error", n, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Join([][]byte{ftyp("isom"), bx("moov", mvhd(), videoTrak(1, 16, 5, stts(run{5, 1}), stsz(5)))}, nil))
	f.Add(bytes.Join([][]byte{ftyp("iso5"), bx("moov", mvhd(), videoTrak(1, 8192, 0, stts(), stsz(0)),
		bx("mvex", bx("trex", u32(0, 1, 1, 512, 0, 0)))),
		bx("moof", bx("traf", bx("tfhd", u32(0x08, 1, 256)), bx("trun", u32(0x301, 2, 0, 10, 100, 20, 100)))),
		bx("mdat")}, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Probe(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if info.Width < 0 || info.Height < 0 || info.Frames < 0 || info.Duration < 0 || info.FrameRate < 0 ||
			math.IsNaN(info.Duration) || math.IsNaN(info.FrameRate) || math.IsInf(info.FrameRate, 0) {
			t.Fatalf("nonsense metadata %+v", info)
		}
	})
}

// TestUpdateSeedCorpus rewrites testdata/fuzz/FuzzParse from small real MP4s
// when run with -update-corpus.
func TestUpdateSeedCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to regenerate the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	for _, s := range []mp4test.Spec{
		{Width: 16, Height: 16, Frames: 2, FPS: "16", CRF: 51},
		{Width: 16, Height: 16, Frames: 2, FPS: "16", CRF: 51, FastStart: true},
		{Width: 16, Height: 16, Frames: 3, FPS: "24", CRF: 51, Fragmented: true, GOP: 1},
	} {
		b := mp4test.ReadFile(t, mp4test.Make(t, tmp, s))
		text := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, "ffmpeg_"+strings.ReplaceAll(s.Name(), "@", "_")), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
