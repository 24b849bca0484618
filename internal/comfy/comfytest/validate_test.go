package comfytest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// Validation rules beyond the recorded cases, with the shapes execution.py
// produces (reference: comfyui-api.md §3).
func TestValidationRules(t *testing.T) {
	base := func(extra string) string {
		return `{"client_id": "t", "prompt": {
		  "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors", "weight_dtype": "default"}},
		  "2": {"class_type": "ModelSamplingSD3", "inputs": {"model": ["1", 0], "shift": 8.0}},
		  "3": {"class_type": "ModelSave", "inputs": {"model": ["2", 0], "filename_prefix": "x"}}` + extra + `}}`
	}
	for _, tc := range []struct {
		name   string
		body   string
		status int
		node   string // the node whose first error is checked
		want   string // JSON of that error
	}{
		{"valid", base(""), 200, "", ""},
		{"required input missing", strings.Replace(base(""), `"model": ["2", 0], `, "", 1), 400, "3",
			`{"type":"required_input_missing","message":"Required input is missing","details":"model","extra_info":{"input_name":"model"}}`},
		{"number above max", strings.Replace(base(""), `"shift": 8.0`, `"shift": 150`, 1), 400, "2",
			`{"type":"value_bigger_than_max","message":"Value 150.0 bigger than max of 100.0","details":"shift","extra_info":{"input_name":"shift","input_config":["FLOAT",{"default":3.0,"max":100.0,"min":0.0,"step":0.01}],"received_value":150.0}}`},
		{"number below min", strings.Replace(base(""), `"shift": 8.0`, `"shift": -1`, 1), 400, "2",
			`{"type":"value_smaller_than_min","message":"Value -1.0 smaller than min of 0.0","details":"shift","extra_info":{"input_name":"shift","input_config":["FLOAT",{"default":3.0,"max":100.0,"min":0.0,"step":0.01}],"received_value":-1.0}}`},
		{"not a number", strings.Replace(base(""), `"shift": 8.0`, `"shift": "eight"`, 1), 400, "2",
			`{"type":"invalid_input_type","message":"Failed to convert an input value to a FLOAT value","details":"shift, eight, could not convert string to float: 'eight'","extra_info":{"input_name":"shift","input_config":["FLOAT",{"default":3.0,"max":100.0,"min":0.0,"step":0.01}],"received_value":"eight","exception_message":"could not convert string to float: 'eight'"}}`},
		{"link to the wrong type (one output still valid)", base(`, "4": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "y"}}`), 200, "4",
			`{"type":"return_type_mismatch","message":"Return type mismatch between linked nodes","details":"images, received_type(MODEL) mismatch input_type(IMAGE)","extra_info":{"input_name":"images","input_config":["IMAGE",{"tooltip":"The images to save."}],"received_type":"MODEL","linked_node":["1",0]}}`},
		{"bad link", strings.Replace(base(""), `"model": ["2", 0]`, `"model": ["2", 0, 1]`, 1), 400, "3",
			`{"type":"bad_linked_input","message":"Bad linked input, must be a length-2 list of [node_id, slot_index]","details":"model","extra_info":{"input_name":"model","input_config":["MODEL",{}],"received_value":["2",0,1]}}`},
		{"combo value not listed", strings.Replace(base(""), `"weight_dtype": "default"`, `"weight_dtype": "fp4"`, 1), 400, "1",
			`{"type":"value_not_in_list","message":"Value not in list","details":"weight_dtype: 'fp4' not in ['default', 'fp8_e4m3fn', 'fp8_e4m3fn_fast', 'fp8_e5m2']","extra_info":{"input_name":"weight_dtype","input_config":[["default","fp8_e4m3fn","fp8_e4m3fn_fast","fp8_e5m2"],{}],"received_value":"fp4"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{})
			defer s.Close()
			status, body := postJSON(t, s.URL+"/prompt", []byte(tc.body))
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if tc.node == "" {
				return
			}
			var r struct {
				NodeErrors map[string]struct {
					Errors []json.RawMessage `json:"errors"`
				} `json:"node_errors"`
			}
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			ne, ok := r.NodeErrors[tc.node]
			if !ok || len(ne.Errors) == 0 {
				t.Fatalf("no errors for node %s: %s", tc.node, body)
			}
			if !reflect.DeepEqual(canonical(t, ne.Errors[0]), canonical(t, []byte(tc.want))) {
				t.Errorf("error\n got %s\nwant %s", ne.Errors[0], tc.want)
			}
		})
	}
}

func TestPadMP4(t *testing.T) {
	b := PadMP4([]byte("12345678"), 20)
	if len(b) != 20 || string(b[8:16]) != "\x00\x00\x00\x0cfree" {
		t.Errorf("%q", b)
	}
	if got := PadMP4([]byte("1234"), 6); string(got) != "1234" {
		t.Errorf("no room for a box: %q", got)
	}
}
