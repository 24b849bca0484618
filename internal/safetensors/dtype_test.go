package safetensors

import (
	"encoding/binary"
	"math"
	"testing"
)

func TestPutFloat(t *testing.T) {
	tests := []struct {
		dt   DType
		in   float32
		want uint64
	}{
		{F32, 1, 0x3F800000},
		{F16, 1, 0x3C00},
		{F16, -2, 0xC000},
		{F16, 65504, 0x7BFF},
		{F16, 65520, 0x7C00},                           // rounds up to infinity
		{F16, 0.1, 0x2E66},                             // nearest
		{F16, float32(math.Ldexp(1, -24)), 0x0001},     // smallest subnormal
		{F16, float32(math.Ldexp(1, -25)), 0x0000},     // tie with 0: even
		{F16, float32(math.Ldexp(1.5, -25)), 0x0001},   // above the tie
		{F16, float32(math.Ldexp(1, -14)), 0x0400},     // smallest normal
		{F16, 1 + float32(math.Ldexp(1, -11)), 0x3C00}, // tie: even mantissa
		{F16, 1 + float32(math.Ldexp(3, -11)), 0x3C02}, // tie: rounds up to even
		{F16, float32(math.Inf(-1)), 0xFC00},           //
		{BF16, 1, 0x3F80},                              //
		{BF16, -1.5, 0xBFC0},                           //
		{BF16, 1 + float32(math.Ldexp(1, -8)), 0x3F80}, // tie: even
		{BF16, 1 + float32(math.Ldexp(3, -8)), 0x3F82}, // tie: up to even
		{F8E4M3, 1, 0x38},                              //
		{F8E4M3, 448, 0x7E},                            // largest finite
		{F8E4M3, 1000, 0x7E},                           // saturates
		{F8E4M3, -2, 0xC0},                             //
		{F8E4M3, 0.5, 0x30},                            //
		{F8E4M3, float32(math.Ldexp(1, -9)), 0x01},     // smallest subnormal
		{F8E4M3, float32(math.Ldexp(1, -10)), 0x00},    // tie with 0: even
		{F8E4M3, 1.0625, 0x38},                         // tie between 1 and 1.125: even
		{F8E4M3, 1.1875, 0x3A},                         // tie between 1.125 and 1.25: even
		{F8E4M3, 0.02, 0x0A},                           // 0.01953125
		{F8E4M3, float32(math.NaN()), 0x7F},            //
	}
	for _, tc := range tests {
		buf := make([]byte, 8)
		PutFloat(tc.dt, buf, tc.in)
		var got uint64
		switch tc.dt.Size() {
		case 1:
			got = uint64(buf[0])
		case 2:
			got = uint64(binary.LittleEndian.Uint16(buf))
		case 4:
			got = uint64(binary.LittleEndian.Uint32(buf))
		}
		if got != tc.want {
			t.Errorf("PutFloat(%s, %g) = %#x, want %#x", tc.dt, tc.in, got, tc.want)
		}
	}
}

// Every finite code decodes to a value that encodes back to the same code.
func TestFloatRoundTripAllCodes(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := []byte{byte(c)}
		v := Float(F8E4M3, b)
		if v != v {
			continue
		}
		if got := f8e4m3Bits(v); got != byte(c) && !(v == 0 && c&0x7F == 0) {
			t.Errorf("F8_E4M3 code %#x -> %g -> %#x", c, v, got)
		}
	}
	for c := 0; c < 1<<16; c++ {
		b := binary.LittleEndian.AppendUint16(nil, uint16(c))
		if v := Float(F16, b); v == v {
			if got := f16Bits(v); got != uint16(c) {
				t.Errorf("F16 code %#x -> %g -> %#x", c, v, got)
			}
		}
		if v := Float(BF16, b); v == v {
			if got := bf16Bits(v); got != uint16(c) {
				t.Errorf("BF16 code %#x -> %g -> %#x", c, v, got)
			}
		}
	}
}

func TestDecodeFloats(t *testing.T) {
	in := []float32{0, 1, -0.5, 3.25}
	for _, dt := range []DType{F32, F16, BF16, F8E4M3} {
		got, err := DecodeFloats(dt, EncodeFloats(dt, in))
		if err != nil {
			t.Fatal(err)
		}
		for i := range in {
			if got[i] != in[i] {
				t.Errorf("%s: [%d] = %g, want %g", dt, i, got[i], in[i])
			}
		}
	}
	if _, err := DecodeFloats(U8, []byte{1}); err == nil {
		t.Error("DecodeFloats(U8) succeeded")
	}
	if _, err := DecodeFloats(F16, []byte{1}); err == nil {
		t.Error("DecodeFloats(F16, 1 byte) succeeded")
	}
}
