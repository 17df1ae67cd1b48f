package export

import (
	"slices"
	"testing"
)

func TestThin(t *testing.T) {
	list := make([]int, 1000)
	for i := range list {
		list[i] = i
	}
	for _, tc := range []struct {
		n    int
		want []int
	}{
		{2000, list},
		{1000, list},
		{5, []int{0, 249, 499, 749, 999}},
		{2, []int{0, 999}},
	} {
		if got := thin(list, tc.n); !slices.Equal(got, tc.want) {
			t.Errorf("thin(0..999, %d) = %v…, want %v…", tc.n, got[:min(len(got), 6)], tc.want[:min(len(tc.want), 6)])
		}
	}
	if got := thin([]int(nil), 10); got == nil || len(got) != 0 {
		t.Errorf("thin(nil) = %#v, want an empty slice (JSON [])", got)
	}
}
