package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
)

// DType is a safetensors element type, spelled as in the header.
type DType string

// The element types the writer and reader support.
const (
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	F8E4M3 DType = "F8_E4M3" // float8_e4m3fn: no infinities, 0x7F/0xFF are NaN, largest finite 448
	I64    DType = "I64"
	U8     DType = "U8"
)

// Size is the size of one element in bytes, or 0 for an unknown type.
func (d DType) Size() int {
	switch d {
	case I64:
		return 8
	case F32:
		return 4
	case F16, BF16:
		return 2
	case F8E4M3, U8:
		return 1
	}
	return 0
}

// Float reports whether the type holds floating-point numbers.
func (d DType) Float() bool {
	switch d {
	case F32, F16, BF16, F8E4M3:
		return true
	}
	return false
}

// PutFloat stores v as one element of type d at the start of dst
// (little-endian, rounded to nearest even; F8_E4M3 saturates at ±448).
// It panics if d is not a float type or dst is too short, like
// binary.LittleEndian.PutUint32.
func PutFloat(d DType, dst []byte, v float32) {
	switch d {
	case F32:
		binary.LittleEndian.PutUint32(dst, math.Float32bits(v))
	case F16:
		binary.LittleEndian.PutUint16(dst, f16Bits(v))
	case BF16:
		binary.LittleEndian.PutUint16(dst, bf16Bits(v))
	case F8E4M3:
		dst[0] = f8e4m3Bits(v)
	default:
		panic("safetensors: PutFloat on non-float dtype " + string(d))
	}
}

// Float reads one element of float type d from the start of src.
func Float(d DType, src []byte) float32 {
	switch d {
	case F32:
		return math.Float32frombits(binary.LittleEndian.Uint32(src))
	case F16:
		return f16Value(binary.LittleEndian.Uint16(src))
	case BF16:
		return math.Float32frombits(uint32(binary.LittleEndian.Uint16(src)) << 16)
	case F8E4M3:
		return f8e4m3Value(src[0])
	}
	panic("safetensors: Float on non-float dtype " + string(d))
}

// EncodeFloats returns vals encoded as type d.
func EncodeFloats(d DType, vals []float32) []byte {
	n := d.Size()
	out := make([]byte, len(vals)*n)
	for i, v := range vals {
		PutFloat(d, out[i*n:], v)
	}
	return out
}

// DecodeFloats decodes a float tensor's bytes.
func DecodeFloats(d DType, b []byte) ([]float32, error) {
	if !d.Float() {
		return nil, fmt.Errorf("safetensors: %s is not a float type", d)
	}
	n := d.Size()
	if len(b)%n != 0 {
		return nil, fmt.Errorf("safetensors: %d bytes is not a whole number of %s elements", len(b), d)
	}
	out := make([]float32, len(b)/n)
	for i := range out {
		out[i] = Float(d, b[i*n:])
	}
	return out, nil
}

// bf16Bits rounds to nearest even, keeping NaN a NaN.
func bf16Bits(v float32) uint16 {
	b := math.Float32bits(v)
	if v != v {
		return uint16(b>>16) | 0x40
	}
	b += 0x7FFF + (b>>16)&1
	return uint16(b >> 16)
}

// f16Bits converts to IEEE half precision, rounding to nearest even.
func f16Bits(v float32) uint16 {
	b := math.Float32bits(v)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xFF
	mant := b & 0x7FFFFF
	switch {
	case exp == 0xFF: // inf or NaN
		if mant != 0 {
			return sign | 0x7E00
		}
		return sign | 0x7C00
	case exp-127 > 15: // overflow
		return sign | 0x7C00
	}
	e := exp - 127 + 15
	if e <= 0 { // subnormal half (or zero)
		if e < -10 {
			return sign
		}
		m := mant | 0x800000
		shift := uint(14 - e)
		half := uint32(1) << (shift - 1)
		r := m >> shift
		rem := m & (1<<shift - 1)
		if rem > half || rem == half && r&1 == 1 {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | mant>>13
	rem := mant & 0x1FFF
	if rem > 0x1000 || rem == 0x1000 && r&1 == 1 {
		r++ // may carry into the exponent, up to infinity: correct
	}
	return sign | uint16(r)
}

func f16Value(h uint16) float32 {
	sign := float32(1)
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1F
	mant := float32(h & 0x3FF)
	switch exp {
	case 0:
		return sign * mant * float32(math.Ldexp(1, -24))
	case 0x1F:
		if mant != 0 {
			return float32(math.NaN())
		}
		return sign * float32(math.Inf(1))
	}
	return sign * (1 + mant/1024) * float32(math.Ldexp(1, exp-15))
}

// f8e4m3Value decodes float8_e4m3fn: bias 7, 3 mantissa bits, no infinities.
func f8e4m3Value(b uint8) float32 {
	sign := float32(1)
	if b&0x80 != 0 {
		sign = -1
	}
	exp := int(b>>3) & 0xF
	mant := float32(b & 7)
	if exp == 0xF && b&7 == 7 {
		return float32(math.NaN())
	}
	if exp == 0 {
		return sign * mant / 8 * float32(math.Ldexp(1, -6))
	}
	return sign * (1 + mant/8) * float32(math.Ldexp(1, exp-7))
}

// f8e4m3Bits encodes to float8_e4m3fn by searching the 127 finite positive
// values (0x00..0x7E, increasing with the code), rounding to nearest and ties
// to the even code. Values beyond 448 saturate; NaN maps to 0x7F.
func f8e4m3Bits(v float32) uint8 {
	if v != v {
		return 0x7F
	}
	var sign uint8
	if v < 0 || v == 0 && math.Signbit(float64(v)) {
		sign, v = 0x80, -v
	}
	// i is the first code whose value is >= v.
	i := sort.Search(0x7F, func(i int) bool { return f8e4m3Value(uint8(i)) >= v })
	if i == 0x7F {
		return sign | 0x7E
	}
	if i > 0 {
		lo, hi := f8e4m3Value(uint8(i-1)), f8e4m3Value(uint8(i))
		if d1, d2 := v-lo, hi-v; d1 < d2 || d1 == d2 && (i-1)&1 == 0 {
			i--
		}
	}
	return sign | uint8(i)
}
