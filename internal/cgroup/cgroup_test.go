package cgroup

import (
	"errors"
	"strings"
	"testing"
)

// Mount tables as /proc/self/mountinfo prints them.
const (
	hybrid = `22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
23 28 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
28 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
31 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 31 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
36 31 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
`
	pureV2 = `22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
23 28 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
28 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
	v1Only = `23 28 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
31 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
33 31 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
`
)

func TestParseMountinfo(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		{"hybrid: cgroup2 at unified", hybrid, "/sys/fs/cgroup/unified", nil},
		{"pure v2", pureV2, "/sys/fs/cgroup", nil},
		{"escaped space", "40 28 0:40 / /mnt/my\\040cgroup rw,relatime - cgroup2 none rw\n", "/mnt/my cgroup", nil},
		{"escaped tab, newline and backslash", "40 28 0:40 / /mnt/a\\011b\\012c\\134d rw - cgroup2 cgroup2 rw\n", "/mnt/a\tb\nc\\d", nil},
		{"not an escape", "40 28 0:40 / /mnt/x\\999 rw - cgroup2 cgroup2 rw\n", "/mnt/x\\999", nil},
		{"escape at the end", "40 28 0:40 / /mnt/x\\040 rw - cgroup2 cgroup2 rw\n", "/mnt/x ", nil},
		{"no optional fields", "30 23 0:26 / /cg rw - cgroup2 cgroup2 rw\n", "/cg", nil},
		{"several optional fields", "30 23 0:26 / /cg rw shared:4 master:1 propagate_from:2 - cgroup2 cgroup2 rw\n", "/cg", nil},
		{"the first of two", "30 23 0:26 / /first rw - cgroup2 cgroup2 rw\n31 23 0:26 / /second rw - cgroup2 cgroup2 rw\n", "/first", nil},
		{"no trailing newline", "30 23 0:26 / /cg rw - cgroup2 cgroup2 rw", "/cg", nil},
		{"malformed lines are skipped", "garbage\n1 2 3 - cgroup2\n - cgroup2 x y\n" + pureV2, "/sys/fs/cgroup", nil},
		{"cgroup2 as the source, not the type", "30 23 0:26 / /x rw - tmpfs cgroup2 rw\n", "", ErrNoCgroup2},
		{"v1 only", v1Only, "", ErrNoCgroup2},
		{"empty", "", "", ErrNoCgroup2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMountinfo(strings.NewReader(tc.in))
			if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("parseMountinfo = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseMountinfoLongLine(t *testing.T) {
	// Lines longer than bufio's default 64 KiB token (many mount options).
	long := "30 23 0:26 / /cg rw - cgroup2 cgroup2 rw," + strings.Repeat("x", 100<<10) + "\n"
	if got, err := parseMountinfo(strings.NewReader(long)); got != "/cg" || err != nil {
		t.Errorf("parseMountinfo(long line) = %q, %v", got, err)
	}
}
