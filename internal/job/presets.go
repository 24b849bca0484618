package job

// Preset is a named set of defaults for the sampling options.
type Preset string

// The presets.
const (
	// PresetFast is the default: the step-distill LoRA on both experts, 6
	// steps split 3/3, cfg 1.
	PresetFast Preset = "fast"
	// PresetBalanced: the step-distill LoRA on the low-noise expert only,
	// the high-noise expert at cfg 3.5 (the low-noise one at 1), 10 steps
	// split 5/5.
	PresetBalanced Preset = "balanced"
	// PresetQuality: no step-distill LoRA, 20 steps split 10/10, cfg 3.5 on
	// both experts, shift 8.
	PresetQuality Preset = "quality"
)

// Presets returns the preset names in documentation order.
func Presets() []string {
	return []string{string(PresetFast), string(PresetBalanced), string(PresetQuality)}
}

// PresetValues are the defaults a preset sets. Options given in the job win
// over them.
type PresetValues struct {
	Steps       int
	CFGHigh     float64
	CFGLow      float64
	Shift       float64
	DistillLoRA DistillLoRA
}

// Values returns the defaults of a preset ("" is fast).
func (p Preset) Values() PresetValues {
	switch p {
	case PresetBalanced:
		return PresetValues{Steps: 10, CFGHigh: 3.5, CFGLow: 1, Shift: DefaultShift, DistillLoRA: DistillLow}
	case PresetQuality:
		return PresetValues{Steps: 20, CFGHigh: 3.5, CFGLow: 3.5, Shift: DefaultShift, DistillLoRA: DistillNone}
	}
	return PresetValues{Steps: DefaultSteps, CFGHigh: DefaultCFG, CFGLow: DefaultCFG, Shift: DefaultShift, DistillLoRA: DistillBoth}
}

// DistillLoRA says which experts get the server's step-distill LoRA (the
// profile's LORA_HIGH and LORA_LOW).
type DistillLoRA string

// The step-distill LoRA placements.
const (
	DistillBoth DistillLoRA = "both" // LORA_HIGH on the high-noise expert, LORA_LOW on the low-noise one
	DistillLow  DistillLoRA = "low"  // LORA_LOW on the low-noise expert only
	DistillNone DistillLoRA = "none" // neither
)

// DistillLoRAs returns the placements in documentation order.
func DistillLoRAs() []string {
	return []string{string(DistillBoth), string(DistillLow), string(DistillNone)}
}

// OnHigh and OnLow report whether the step-distill LoRA goes on an expert
// ("" counts as both).
func (d DistillLoRA) OnHigh() bool { return d == DistillBoth || d == "" }

// OnLow: see OnHigh.
func (d DistillLoRA) OnLow() bool { return d != DistillNone }

// VideoQuality is a named H.264 quality, mapped to a CRF.
type VideoQuality string

// The video qualities.
const (
	QualityLow     VideoQuality = "low"
	QualityMedium  VideoQuality = "medium"
	QualityHigh    VideoQuality = "high"
	QualityMaximum VideoQuality = "maximum"
)

// VideoQualities returns the quality names in documentation order.
func VideoQualities() []string {
	return []string{string(QualityLow), string(QualityMedium), string(QualityHigh), string(QualityMaximum)}
}

// CRF is the x264 CRF of a quality: low 28, medium 23, high 19 (the default
// CRF), maximum 12; 0 for an unknown name.
func (q VideoQuality) CRF() int {
	switch q {
	case QualityLow:
		return 28
	case QualityMedium:
		return 23
	case QualityHigh:
		return 19
	case QualityMaximum:
		return 12
	}
	return 0
}
