package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sample returns tensors covering every dtype, a scalar, an empty tensor,
// partial data (zero tail), nil data (all zeros) and Fill.
func sample() []Tensor {
	return []Tensor{
		{Name: "w.f32", DType: F32, Shape: []int64{2, 3}, Data: EncodeFloats(F32, []float32{1, 2, 3, 4, 5, 6})},
		{Name: "w.f16", DType: F16, Shape: []int64{3}, Data: EncodeFloats(F16, []float32{0.5, -1, 2})},
		{Name: "w.bf16", DType: BF16, Shape: []int64{2}, Data: EncodeFloats(BF16, []float32{3, -4})},
		{Name: "w.f8", DType: F8E4M3, Shape: []int64{4}, Data: EncodeFloats(F8E4M3, []float32{1, 2, 0.25, -448})},
		{Name: "scale", DType: F32, Shape: []int64{}, Data: EncodeFloats(F32, []float32{1})},
		{Name: "marker", DType: F8E4M3, Shape: []int64{0}},
		{Name: "ids", DType: I64, Shape: []int64{2}, Data: binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 7), 1<<40)},
		{Name: "bytes", DType: U8, Shape: []int64{5}, Data: []byte("hello")},
		{Name: "partial", DType: F16, Shape: []int64{4, 2}, Data: EncodeFloats(F16, []float32{9, 9})},
		{Name: "zeros", DType: F16, Shape: []int64{3, 3}},
		{Name: "filled", DType: U8, Shape: []int64{3}, Fill: func(b []byte) { copy(b, "abc") }},
	}
}

// want is the full content a tensor should read back as.
func want(t Tensor) []byte {
	out := make([]byte, t.ByteSize())
	if t.Fill != nil {
		t.Fill(out)
	} else {
		copy(out, t.Data)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	meta := map[string]string{"format": "pt", "note": "<&>"}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := WriteFile(path, sample(), meta); err != nil {
		t.Fatal(err)
	}
	var dense bytes.Buffer
	if err := Encode(&dense, sample(), meta); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, dense.Bytes()) {
		t.Fatal("WriteFile and Encode produced different bytes")
	}
	hdrLen := binary.LittleEndian.Uint64(onDisk)
	if hdrLen%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", hdrLen)
	}
	if !strings.Contains(string(onDisk[8:8+hdrLen]), `"note":"<&>"`) {
		t.Errorf("metadata not written verbatim: %s", onDisk[8:8+hdrLen])
	}

	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Header.Metadata; len(got) != 2 || got["format"] != "pt" || got["note"] != "<&>" {
		t.Errorf("metadata = %v", got)
	}
	if len(f.Header.Tensors) != len(sample()) {
		t.Errorf("%d tensors, want %d", len(f.Header.Tensors), len(sample()))
	}
	for _, st := range sample() {
		info, ok := f.Header.Lookup(st.Name)
		if !ok {
			t.Errorf("%s: missing", st.Name)
			continue
		}
		if info.DType != st.DType || len(info.Shape) != len(st.Shape) {
			t.Errorf("%s: %s%v, want %s%v", st.Name, info.DType, info.Shape, st.DType, st.Shape)
		}
		if size := int64(info.DType.Size()); (f.Header.DataStart+info.Begin)%size != 0 {
			t.Errorf("%s: offset %d not aligned to %d", st.Name, f.Header.DataStart+info.Begin, size)
		}
		got, err := f.Tensor(st.Name)
		if err != nil {
			t.Errorf("%s: %v", st.Name, err)
			continue
		}
		if !bytes.Equal(got, want(st)) {
			t.Errorf("%s: read %v, want %v", st.Name, got, want(st))
		}
	}
	if _, err := f.Tensor("nope"); err == nil {
		t.Error("Tensor(nope) succeeded")
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name    string
		tensors []Tensor
		want    string
	}{
		{"duplicate", []Tensor{{Name: "a", DType: F32}, {Name: "a", DType: F32}}, "duplicate"},
		{"empty name", []Tensor{{Name: "", DType: F32}}, "invalid tensor name"},
		{"metadata name", []Tensor{{Name: MetadataKey, DType: F32}}, "invalid tensor name"},
		{"dtype", []Tensor{{Name: "a", DType: "F64"}}, "unsupported dtype"},
		{"too much data", []Tensor{{Name: "a", DType: F16, Shape: []int64{1}, Data: []byte{1, 2, 3}}}, "3 bytes of data for 2"},
		{"negative", []Tensor{{Name: "a", DType: F16, Shape: []int64{-1}}}, "negative dimension"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.safetensors")
			err := WriteFile(path, tc.tensors, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("file left behind: %v", err)
			}
			if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
				t.Errorf("temporary files left behind: %v", entries)
			}
		})
	}
}

func header(json string) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(json)))
	return append(b, json...)
}

func TestReadHeaderErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"short", []byte{1, 2}, "header length"},
		{"zero length", header(""), "header length 0"},
		{"huge length", binary.LittleEndian.AppendUint64(nil, 1<<40), "header length"},
		{"truncated", header(`{"a":`)[:10], "reading the header"},
		{"not object", header(`[1]     `), "does not start"},
		{"bad json", header(`{"a":}  `), "header JSON"},
		{"dtype", header(`{"a":{"dtype":"X","shape":[1],"data_offsets":[0,1]}}`), "unknown dtype"},
		{"offsets count", header(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}}`), "2 numbers"},
		{"size mismatch", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`), "do not match"},
		{"gap", header(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`), "gap or overlap"},
		{"overlap", header(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`), "gap or overlap"},
		{"metadata", header(`{"__metadata__":{"a":1}}`), "__metadata__"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadHeader(bytes.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrFormat) {
				t.Fatalf("error = %v, want ErrFormat containing %q", err, tc.want)
			}
		})
	}
}

func TestOpenChecksLength(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := WriteFile(path, sample(), nil); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()-1); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); !errors.Is(err, ErrFormat) {
		t.Fatalf("Open of a truncated file: %v, want ErrFormat", err)
	}
}
