package runpod_test

import (
	"testing"

	"github.com/wan22-worker/wan22-worker/internal/runpod"
)

func TestURLTemplates(t *testing.T) {
	const pod, job = "pod9", "2f1c-e1"
	tests := []struct {
		name, got, want string
	}{
		{"take $ID", runpod.WorkerURL("https://api.runpod.ai/v2/ep/job-take/$ID?gpu=A", pod),
			"https://api.runpod.ai/v2/ep/job-take/pod9?gpu=A"},
		{"take $RUNPOD_POD_ID", runpod.WorkerURL("https://h/v2/ep/job-take/$RUNPOD_POD_ID?gpu=A", pod),
			"https://h/v2/ep/job-take/pod9?gpu=A"},
		{"ping", runpod.WorkerURL("https://h/v2/ep/ping/$RUNPOD_POD_ID?gpu=NVIDIA+RTX+A5000", pod),
			"https://h/v2/ep/ping/pod9?gpu=NVIDIA+RTX+A5000"},
		{"done", runpod.JobURL("https://h/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=A", pod, job),
			"https://h/v2/ep/job-done/pod9/2f1c-e1?gpu=A"},
		{"stream", runpod.JobURL("https://h/v2/ep/job-stream/$RUNPOD_POD_ID/$ID?", pod, job),
			"https://h/v2/ep/job-stream/pod9/2f1c-e1?"},
		{"done without pod placeholder", runpod.JobURL("https://h/job-done/$ID", pod, job), "https://h/job-done/2f1c-e1"},
		{"stop", runpod.StopURL("https://h/v2/ep/job-take/pod9?gpu=A"), "https://h/v2/ep/job-stop/pod9?gpu=A"},
		{"stop off", runpod.StopURL("https://h/v2/ep/take/pod9"), ""},
		{"query &", runpod.AppendQuery("https://h/x?gpu=A", "job_in_progress=0"), "https://h/x?gpu=A&job_in_progress=0"},
		{"query ?", runpod.AppendQuery("https://h/x", "a=1", "b=2"), "https://h/x?a=1&b=2"},
		{"query trailing ?", runpod.AppendQuery("https://h/x?", "a=1"), "https://h/x?a=1"},
		{"query trailing &", runpod.AppendQuery("https://h/x?g=1&", "a=1"), "https://h/x?g=1&a=1"},
		{"query none", runpod.AppendQuery("https://h/x"), "https://h/x"},
		{"no re-encoding", runpod.WorkerURL("https://h/v2/ep/job-take/$ID?gpu=NVIDIA%20A40", pod),
			"https://h/v2/ep/job-take/pod9?gpu=NVIDIA%20A40"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, tc.got, tc.want)
		}
	}
}
