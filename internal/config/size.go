package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

var sizeUnits = []struct {
	name  string
	bytes int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// ParseSize parses a byte count: an integer with an optional unit B, KiB,
// MiB or GiB ("128MiB", "4096", "1 GiB"). Decimal units (KB, MB) are
// refused rather than guessed at.
func ParseSize(s string) (int64, error) {
	n, err := parseSize(s)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	return n, nil
}

func parseSize(s string) (int64, error) {
	text := strings.TrimSpace(s)
	digits := len(text) - len(strings.TrimLeft(text, "0123456789"))
	switch {
	case strings.HasPrefix(text, "-"):
		return 0, errors.New("must not be negative")
	case digits == 0:
		return 0, errors.New("want an integer with an optional unit B, KiB, MiB or GiB, such as 128MiB")
	}
	n, err := strconv.ParseInt(text[:digits], 10, 64)
	if err != nil {
		return 0, errors.New("too large")
	}
	unit := strings.TrimSpace(text[digits:])
	multiple := int64(0)
	if unit == "" {
		multiple = 1
	}
	for _, u := range sizeUnits {
		if u.name == unit {
			multiple = u.bytes
		}
	}
	if multiple == 0 {
		return 0, fmt.Errorf("unknown unit %q (use B, KiB, MiB or GiB)", unit)
	}
	if n > math.MaxInt64/multiple {
		return 0, errors.New("too large")
	}
	return n * multiple, nil
}

// formatSize writes n with the largest unit that divides it.
func formatSize(n int64) string {
	for _, u := range sizeUnits[:3] {
		if n != 0 && n%u.bytes == 0 {
			return fmt.Sprintf("%d%s", n/u.bytes, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
