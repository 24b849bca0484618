package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// ErrFormat is wrapped by every reader error about a malformed file.
var ErrFormat = errors.New("safetensors: malformed file")

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

// Info describes one tensor of a file.
type Info struct {
	Name  string
	DType DType
	Shape []int64
	// Begin and End are the data_offsets: relative to the start of the data.
	Begin, End int64
}

// Elements is the number of elements: the product of the shape.
func (i Info) Elements() int64 {
	n := int64(1)
	for _, d := range i.Shape {
		n *= d
	}
	return n
}

// Header is a parsed, validated header.
type Header struct {
	// Tensors are in file order (by offset).
	Tensors  []Info
	Metadata map[string]string
	// DataStart is the absolute file offset of the data: 8 + header length.
	DataStart int64
	// DataSize is the length of the data section the offsets describe.
	DataSize int64
}

// Lookup returns the tensor named name.
func (h *Header) Lookup(name string) (Info, bool) {
	for _, t := range h.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Info{}, false
}

// ReadHeader reads and checks the header at the start of r with the reference
// implementation's rules: a known dtype for every tensor, data_offsets that
// match the shape, and offsets that tile the data section with no gap or
// overlap.
func ReadHeader(r io.Reader) (*Header, error) {
	var lenBuf [8]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, formatErr("reading the header length: %v", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n == 0 || n > maxHeader {
		return nil, formatErr("header length %d", n)
	}
	raw := make([]byte, n)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, formatErr("reading the header: %v", err)
	}
	if raw[0] != '{' {
		return nil, formatErr("header does not start with '{'")
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&fields); err != nil {
		return nil, formatErr("header JSON: %v", err)
	}
	h := &Header{DataStart: 8 + int64(n)}
	for name, v := range fields {
		if name == MetadataKey {
			if err := json.Unmarshal(v, &h.Metadata); err != nil {
				return nil, formatErr("%s: %v", MetadataKey, err)
			}
			continue
		}
		var e struct {
			DType       DType   `json:"dtype"`
			Shape       []int64 `json:"shape"`
			DataOffsets []int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, formatErr("tensor %q: %v", name, err)
		}
		if e.DType.Size() == 0 {
			return nil, formatErr("tensor %q: unknown dtype %q", name, e.DType)
		}
		if len(e.DataOffsets) != 2 {
			return nil, formatErr("tensor %q: data_offsets must have 2 numbers", name)
		}
		t := Info{Name: name, DType: e.DType, Shape: e.Shape, Begin: e.DataOffsets[0], End: e.DataOffsets[1]}
		if t.End < t.Begin || t.End-t.Begin != t.Elements()*int64(t.DType.Size()) {
			return nil, formatErr("tensor %q: data_offsets %v do not match %s%v", name, e.DataOffsets, t.DType, t.Shape)
		}
		h.Tensors = append(h.Tensors, t)
	}
	sort.Slice(h.Tensors, func(i, j int) bool {
		a, b := h.Tensors[i], h.Tensors[j]
		if a.Begin != b.Begin {
			return a.Begin < b.Begin
		}
		return a.End < b.End
	})
	for _, t := range h.Tensors {
		if t.Begin != h.DataSize {
			return nil, formatErr("tensor %q starts at %d, want %d (gap or overlap)", t.Name, t.Begin, h.DataSize)
		}
		h.DataSize = t.End
	}
	return h, nil
}

// File is an open safetensors file.
type File struct {
	Header *Header
	f      *os.File
}

// Open opens path and reads its header. It also checks that the file is as
// long as the header says.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	h, err := ReadHeader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if want := h.DataStart + h.DataSize; st.Size() != want {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, formatErr("file is %d bytes, header says %d", st.Size(), want))
	}
	return &File{Header: h, f: f}, nil
}

// Tensor returns the bytes of the tensor named name.
func (f *File) Tensor(name string) ([]byte, error) {
	t, ok := f.Header.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("safetensors: no tensor %q", name)
	}
	buf := make([]byte, t.End-t.Begin)
	if _, err := f.f.ReadAt(buf, f.Header.DataStart+t.Begin); err != nil {
		return nil, err
	}
	return buf, nil
}

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }
