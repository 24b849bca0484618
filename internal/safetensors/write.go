// Package safetensors writes and reads files in the safetensors format: an
// 8-byte little-endian header length, a JSON header that gives every tensor's
// dtype, shape and data_offsets (plus an optional "__metadata__" map of
// strings), padded with spaces to a multiple of 8, then the tensors' bytes,
// contiguous and in the order of their offsets.
//
// The writer is made for model fixtures: WriteFile leaves every all-zero
// region of the data as a hole in the file, so a file whose big tensors are
// zeros has its full apparent size but costs little disk, and reads back as
// zeros everywhere the holes are.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// Tensor is one tensor to write.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	// Data is the tensor's leading bytes, little-endian. It may be shorter
	// than the tensor (even nil): the rest reads as zeros.
	Data []byte
	// Fill, when set, is used instead of Data: it is called once with a
	// zeroed buffer of exactly ByteSize bytes to fill. It lets a big tensor be
	// generated while it is written instead of being held in memory with the
	// others.
	Fill func(dst []byte)
}

// Elements is the number of elements: the product of the shape (1 for a scalar).
func (t *Tensor) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// ByteSize is the size of the tensor's data in bytes.
func (t *Tensor) ByteSize() int64 { return t.Elements() * int64(t.DType.Size()) }

// MetadataKey is the header key that holds the file's string metadata.
const MetadataKey = "__metadata__"

// maxHeader is the largest header the reader accepts (the reference
// implementation's limit).
const maxHeader = 100 << 20

// layout checks the tensors and returns them in file order (element size
// descending, then name, as the reference writer does, so that every tensor
// is aligned to its element size) with the encoded, padded header.
func layout(tensors []Tensor, metadata map[string]string) ([]*Tensor, []byte, error) {
	order := make([]*Tensor, len(tensors))
	seen := map[string]bool{}
	for i := range tensors {
		t := &tensors[i]
		for _, d := range t.Shape {
			if d < 0 {
				return nil, nil, fmt.Errorf("safetensors: tensor %q: negative dimension in %v", t.Name, t.Shape)
			}
		}
		switch {
		case t.Name == "" || t.Name == MetadataKey:
			return nil, nil, fmt.Errorf("safetensors: invalid tensor name %q", t.Name)
		case seen[t.Name]:
			return nil, nil, fmt.Errorf("safetensors: duplicate tensor %q", t.Name)
		case t.DType.Size() == 0:
			return nil, nil, fmt.Errorf("safetensors: tensor %q: unsupported dtype %q", t.Name, t.DType)
		case int64(len(t.Data)) > t.ByteSize():
			return nil, nil, fmt.Errorf("safetensors: tensor %q: %d bytes of data for %d", t.Name, len(t.Data), t.ByteSize())
		}
		seen[t.Name] = true
		order[i] = t
	}
	sort.SliceStable(order, func(i, j int) bool {
		if a, b := order[i].DType.Size(), order[j].DType.Size(); a != b {
			return a > b
		}
		return order[i].Name < order[j].Name
	})

	type entry struct {
		DType       DType    `json:"dtype"`
		Shape       []int64  `json:"shape"`
		DataOffsets [2]int64 `json:"data_offsets"`
	}
	head := make(map[string]any, len(order)+1)
	var off int64
	for _, t := range order {
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		head[t.Name] = entry{t.DType, shape, [2]int64{off, off + t.ByteSize()}}
		off += t.ByteSize()
	}
	if len(metadata) > 0 {
		head[MetadataKey] = metadata
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(head); err != nil {
		return nil, nil, fmt.Errorf("safetensors: header: %w", err)
	}
	hdr := bytes.TrimRight(buf.Bytes(), "\n")
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	if len(hdr) > maxHeader {
		return nil, nil, fmt.Errorf("safetensors: header of %d bytes is too large", len(hdr))
	}
	out := make([]byte, 8, 8+len(hdr))
	binary.LittleEndian.PutUint64(out, uint64(len(hdr)))
	return order, append(out, hdr...), nil
}

// EncodeHeader returns the file's header as Encode and WriteFile write it:
// the 8-byte length, then the padded JSON. No Fill function is called.
func EncodeHeader(tensors []Tensor, metadata map[string]string) ([]byte, error) {
	_, hdr, err := layout(tensors, metadata)
	return hdr, err
}

// Encode writes the file densely to w: holes are written as zeros.
func Encode(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	order, hdr, err := layout(tensors, metadata)
	if err != nil {
		return err
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	zeros := make([]byte, 64<<10)
	for _, t := range order {
		data := t.Data
		if t.Fill != nil {
			data = make([]byte, t.ByteSize())
			t.Fill(data)
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
		for rest := t.ByteSize() - int64(len(data)); rest > 0; {
			n := min(rest, int64(len(zeros)))
			if _, err := w.Write(zeros[:n]); err != nil {
				return err
			}
			rest -= n
		}
	}
	return nil
}

// WriteFile writes the file at path, atomically (a temporary file in the same
// folder, renamed into place). Every all-zero, block-aligned run of the data
// is skipped rather than written, so it stays a hole on file systems that
// support sparse files; the file is then extended to its full size.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) (err error) {
	order, hdr, err := layout(tensors, metadata)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	sw := &sparseWriter{f: f}
	if err := sw.write(hdr); err != nil {
		return err
	}
	for _, t := range order {
		data := t.Data
		if t.Fill != nil {
			data = make([]byte, t.ByteSize())
			t.Fill(data)
		}
		if err := sw.write(data); err != nil {
			return fmt.Errorf("safetensors: writing %q: %w", t.Name, err)
		}
		sw.skip(t.ByteSize() - int64(len(data)))
	}
	if err := f.Truncate(sw.off); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// sparseBlock is the granularity of hole detection: a file-system block.
const sparseBlock = 4096

// sparseWriter writes at increasing offsets, seeking over block-aligned
// all-zero runs instead of writing them.
type sparseWriter struct {
	f   *os.File
	off int64
}

func (w *sparseWriter) skip(n int64) { w.off += n }

func (w *sparseWriter) write(p []byte) error {
	for len(p) > 0 {
		// The chunk ends at the next block boundary of the file.
		n := int(min(int64(len(p)), sparseBlock-w.off%sparseBlock))
		if n == sparseBlock && allZero(p[:n]) {
			w.off += int64(n)
			p = p[n:]
			continue
		}
		// Write a run of chunks that are not all-zero blocks in one call.
		end := n
		for end < len(p) {
			m := min(len(p)-end, sparseBlock)
			if m == sparseBlock && allZero(p[end:end+m]) {
				break
			}
			end += m
		}
		if _, err := w.f.WriteAt(p[:end], w.off); err != nil {
			return err
		}
		w.off += int64(end)
		p = p[end:]
	}
	return nil
}

func allZero(p []byte) bool {
	for len(p) >= 8 {
		if binary.LittleEndian.Uint64(p) != 0 {
			return false
		}
		p = p[8:]
	}
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}
