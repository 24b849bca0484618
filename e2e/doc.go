// Package e2e holds the end-to-end tests against the real ComfyUI (build tag
// e2e; see docs/e2e.md). They generate tiny stand-ins for the WAN 2.2 model
// files (internal/testmodels), run the production graph on a CPU at 64×64,
// 5 frames and 2 steps, and check the MP4 and the worker's results. They
// skip unless COMFYUI_DIR points at a ComfyUI v0.3.64 checkout whose Python
// imports torch:
//
//	COMFYUI_DIR=/path/to/ComfyUI make e2e
package e2e
