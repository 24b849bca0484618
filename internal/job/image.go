package job

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"net/url"
	"strings"

	"golang.org/x/image/webp"

	"github.com/wan22-worker/wan22-worker/internal/apperr"
)

// Where the image came from (ImageInfo.Source).
const (
	SourceBase64  = "base64"
	SourceDataURI = "data_uri"
	SourceURL     = "url"
)

// The formats the worker reads (ImageInfo.Format), recognised by content.
const (
	FormatJPEG = "jpeg"
	FormatPNG  = "png"
	FormatWebP = "webp"
)

const imageHint = "send JPEG, PNG or WebP as base64, a data:image/...;base64, URI or an http(s) URL"

// imageSource is the image field, classified: inline bytes (already decoded
// from base64) or a URL still to fetch.
type imageSource struct {
	kind string
	data []byte
	url  string
}

// classifyImage reads the image field: an http(s) URL, a data URI or base64.
// Inline images are decoded here, with the byte limit checked before
// decoding.
func classifyImage(v string, lim Limits) (imageSource, *apperr.Error) {
	t := strings.TrimSpace(v)
	lower := strings.ToLower(t[:min(len(t), 16)])
	switch {
	case t == "":
		return imageSource{}, apperr.Field(apperr.InvalidInput, "image", "image is empty", imageHint)
	case strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://"):
		u, err := url.Parse(t)
		if err != nil || u.Host == "" || u.Hostname() == "" {
			return imageSource{}, apperr.Field(apperr.InvalidInput, "image", "image is not a valid URL",
				"give a full http(s) URL such as https://example.com/cat.jpg")
		}
		return imageSource{kind: SourceURL, url: t}, nil
	case strings.HasPrefix(lower, "data:"):
		data, err := decodeDataURI(t, lim)
		return imageSource{kind: SourceDataURI, data: data}, err
	}
	if scheme, ok := urlScheme(t); ok {
		return imageSource{}, apperr.Field(apperr.InvalidInput, "image",
			fmt.Sprintf("image URLs with scheme %q are not supported", scheme),
			"use an http(s) URL (for a bucket, a presigned https URL), base64 or a data: URI")
	}
	data, err := decodeBase64(t, lim)
	return imageSource{kind: SourceBase64, data: data}, err
}

// urlScheme reports whether s starts like a URL ("scheme://"). Base64 never
// contains ':'.
func urlScheme(s string) (string, bool) {
	i := strings.Index(s, "://")
	if i <= 0 || i > 32 {
		return "", false
	}
	for j, r := range s[:i] {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || j > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')
		if !ok {
			return "", false
		}
	}
	return strings.ToLower(s[:i]), true
}

// decodeDataURI decodes data:[<media type>][;base64],<data>.
func decodeDataURI(s string, lim Limits) ([]byte, *apperr.Error) {
	rest := s[len("data:"):]
	comma := strings.IndexByte(rest, ',')
	if comma < 0 {
		return nil, apperr.Field(apperr.ImageInvalid, "image", "image is a data URI without ',' before its data",
			"write it as data:image/png;base64,<base64 data>")
	}
	params := strings.Split(rest[:comma], ";")
	media := strings.ToLower(strings.TrimSpace(params[0]))
	if media != "" && !strings.HasPrefix(media, "image/") {
		return nil, apperr.Field(apperr.ImageInvalid, "image",
			fmt.Sprintf("image is a data URI of type %q, not an image", media), imageHint)
	}
	payload := rest[comma+1:]
	if strings.EqualFold(strings.TrimSpace(params[len(params)-1]), "base64") {
		return decodeBase64(payload, lim)
	}
	if int64(len(payload)) > 3*lim.MaxImageBytes {
		return nil, tooManyBytes(int64(len(payload)/3), lim)
	}
	data, err := url.PathUnescape(payload)
	if err != nil {
		return nil, apperr.Field(apperr.ImageInvalid, "image", "image is a data URI with bad %-escapes",
			"use a base64 data URI: data:image/png;base64,<base64 data>")
	}
	if int64(len(data)) > lim.MaxImageBytes {
		return nil, tooManyBytes(int64(len(data)), lim)
	}
	return []byte(data), nil
}

func tooManyBytes(n int64, lim Limits) *apperr.Error {
	return apperr.Field(apperr.ImageTooLarge, "image",
		fmt.Sprintf("the image is %d bytes; this server accepts at most %d (MAX_IMAGE_BYTES)", n, lim.MaxImageBytes),
		"send a smaller file: downscale it (2048 pixels on the long side is plenty) or re-encode it as JPEG")
}

// decodeBase64 decodes standard or URL-safe base64, with or without padding,
// ignoring whitespace (line breaks included).
func decodeBase64(s string, lim Limits) ([]byte, *apperr.Error) {
	clean := make([]byte, 0, len(s))
	var std, urlSafe bool
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\r', '\n', '\f', '\v':
		default:
			std = std || c == '+' || c == '/'
			urlSafe = urlSafe || c == '-' || c == '_'
			clean = append(clean, c)
		}
	}
	body := bytes.TrimRight(clean, "=")
	if int64(len(body))/4*3 > lim.MaxImageBytes {
		return nil, tooManyBytes(int64(len(body))/4*3, lim)
	}
	bad := func(msg string) *apperr.Error {
		hint := imageHint
		if looksLikePath(s) {
			hint = "the image must be the file's content (base64), a data: URI or an http(s) URL, not a file name or path"
		}
		return apperr.Field(apperr.ImageInvalid, "image", "image is not valid base64: "+msg, hint)
	}
	if std && urlSafe {
		return nil, bad("it mixes the standard (+/) and URL-safe (-_) alphabets")
	}
	if len(clean)-len(body) > 2 {
		return nil, bad("it has too much '=' padding")
	}
	if len(body)%4 == 1 {
		return nil, bad("its length is not possible for base64 (truncated?)")
	}
	enc := base64.RawStdEncoding
	if urlSafe {
		enc = base64.RawURLEncoding
	}
	out := make([]byte, enc.DecodedLen(len(body)))
	n, err := enc.Decode(out, body)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) && int(ce) < len(body) {
			return nil, bad(fmt.Sprintf("unexpected character %q", body[ce]))
		}
		return nil, bad(err.Error())
	}
	return out[:n], nil
}

// looksLikePath guesses that a short, undecodable image value is a file
// name or path.
func looksLikePath(s string) bool {
	if len(s) > 512 {
		return false
	}
	l := strings.ToLower(s)
	for _, ext := range []string{".png", ".jpg", ".jpeg", ".webp", ".gif"} {
		if strings.HasSuffix(l, ext) {
			return true
		}
	}
	return strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "~")
}

// header is what is known about an image before its pixels are decoded.
type header struct {
	format      string
	width       int // as stored, before orientation
	height      int
	orientation int // EXIF orientation, 1 to 8
}

// decoded is a fully decoded image.
type decoded struct {
	img  image.Image
	hdr  header
	data []byte // the file it was decoded from
}

// orientedSize is the size after EXIF orientation.
func (d *decoded) orientedSize() (int, int) { return d.hdr.orientedSize() }

func (h header) orientedSize() (int, int) {
	if h.orientation >= 5 {
		return h.height, h.width
	}
	return h.width, h.height
}

// sniff names the format of data by its first bytes. ok is false for a
// format the worker does not read; name then says what it is, if known.
func sniff(data []byte) (name string, ok bool) {
	has := func(off int, sig string) bool {
		return len(data) >= off+len(sig) && string(data[off:off+len(sig)]) == sig
	}
	switch {
	case has(0, "\xff\xd8\xff"):
		return FormatJPEG, true
	case has(0, "\x89PNG\r\n\x1a\n"):
		return FormatPNG, true
	case has(0, "RIFF") && has(8, "WEBP"):
		return FormatWebP, true
	case has(0, "GIF87a") || has(0, "GIF89a"):
		return "GIF", false
	case has(0, "BM"):
		return "BMP", false
	case has(0, "II*\x00") || has(0, "MM\x00*"):
		return "TIFF", false
	case has(4, "ftypavif") || has(4, "ftypavis"):
		return "AVIF", false
	case has(4, "ftyphe") || has(4, "ftypmif1") || has(4, "ftypmsf1") || has(4, "ftyphevc"):
		return "HEIC/HEIF", false
	case has(0, "\xff\x0a") || has(0, "\x00\x00\x00\x0cJXL "):
		return "JPEG XL", false
	case has(0, "8BPS"):
		return "PSD", false
	case has(0, "%PDF"):
		return "PDF", false
	case has(0, "\x00\x00\x01\x00"):
		return "ICO", false
	}
	head := strings.ToLower(strings.TrimSpace(string(data[:min(len(data), 256)])))
	switch {
	case strings.HasPrefix(head, "<svg") || strings.HasPrefix(head, "<?xml") && strings.Contains(head, "<svg"):
		return "SVG", false
	case strings.HasPrefix(head, "<!doctype html") || strings.HasPrefix(head, "<html"):
		return "HTML", false
	}
	return "", false
}

// inspect reads what can be known without decoding the pixels: format, size,
// orientation; and checks the limits.
func inspect(data []byte, lim Limits) (header, error) {
	fail := func(code apperr.Code, msg, hint string) (header, error) {
		return header{}, apperr.Field(code, "image", msg, hint)
	}
	if len(data) == 0 {
		return fail(apperr.ImageInvalid, "the image is empty (0 bytes)", imageHint)
	}
	if int64(len(data)) > lim.MaxImageBytes {
		return header{}, tooManyBytes(int64(len(data)), lim)
	}
	format, ok := sniff(data)
	if !ok {
		switch format {
		case "":
			n := min(len(data), 8)
			return fail(apperr.ImageInvalid,
				fmt.Sprintf("the image is not JPEG, PNG or WebP (it starts with % x)", data[:n]), imageHint)
		case "GIF":
			return fail(apperr.ImageInvalid, "the image is a GIF, which is not supported",
				"convert it to PNG or JPEG first; for an animated GIF, export the frame to start from")
		case "HTML":
			return fail(apperr.ImageInvalid, "the image is an HTML page, not an image",
				"if it came from a URL, use the URL of the image file itself, not of a page showing it")
		}
		return fail(apperr.ImageInvalid, fmt.Sprintf("the image is %s, which is not supported", format),
			"convert it to JPEG, PNG or WebP first")
	}
	var (
		cfg image.Config
		err error
	)
	switch format {
	case FormatJPEG:
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
	case FormatPNG:
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
	case FormatWebP:
		if webpAnimated(data) {
			return fail(apperr.ImageInvalid, "the image is an animated WebP, which is not supported",
				"send a still image: export the frame to start from as PNG, JPEG or still WebP")
		}
		cfg, err = webp.DecodeConfig(bytes.NewReader(data))
	}
	if err != nil {
		return fail(apperr.ImageInvalid, fmt.Sprintf("the image looks like %s but its header cannot be read: %v",
			strings.ToUpper(format), err), "the file is damaged or truncated; export it again")
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return fail(apperr.ImageInvalid, fmt.Sprintf("the image has no pixels (%d×%d)", cfg.Width, cfg.Height),
			"the file is damaged; export it again")
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > lim.MaxImagePixels {
		return fail(apperr.ImageTooLarge, fmt.Sprintf("the image is %d×%d = %d pixels; this server accepts at most %d (MAX_IMAGE_PIXELS)",
			cfg.Width, cfg.Height, px, lim.MaxImagePixels),
			"downscale it before sending; 2048 pixels on the long side is plenty for a video")
	}
	return header{format: format, width: cfg.Width, height: cfg.Height, orientation: exifOrientation(format, data)}, nil
}

// decodeImage checks the header (limits first) and then decodes the pixels.
func decodeImage(data []byte, lim Limits) (*decoded, error) {
	hdr, err := inspect(data, lim)
	if err != nil {
		return nil, err
	}
	d := &decoded{hdr: hdr, data: data}
	if err := d.decodePixels(); err != nil {
		return nil, err
	}
	return d, nil
}

// decodePixels decodes the pixels of an inspected image into d.img.
func (d *decoded) decodePixels() error {
	var (
		img image.Image
		err error
	)
	r := bytes.NewReader(d.data)
	switch d.hdr.format {
	case FormatJPEG:
		img, err = jpeg.Decode(r)
	case FormatPNG:
		img, err = png.Decode(r)
	case FormatWebP:
		img, err = webp.Decode(r)
	}
	if err != nil {
		return apperr.Field(apperr.ImageInvalid, "image",
			fmt.Sprintf("the %s image cannot be decoded: %v", strings.ToUpper(d.hdr.format), err),
			"the file is damaged, truncated or uses an unusual encoding; export it again as PNG or baseline JPEG")
	}
	if b := img.Bounds(); b.Dx() != d.hdr.width || b.Dy() != d.hdr.height {
		return apperr.Field(apperr.ImageInvalid, "image",
			fmt.Sprintf("the %s image says it is %d×%d but decodes to %d×%d", strings.ToUpper(d.hdr.format),
				d.hdr.width, d.hdr.height, b.Dx(), b.Dy()),
			"the file is damaged; export it again")
	}
	d.img = img
	return nil
}
