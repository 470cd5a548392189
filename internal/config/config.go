// Package config is Headroom's typed configuration tree: the YAML file
// formats of `headroom emulate` and `headroom serve`, their defaults, and
// validation that reports every problem at once. It is loaded once, in the
// cli package, and handed to other packages in pieces. It reads no
// environment variables and starts nothing.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problems is every validation problem found in a configuration, each one a
// sentence that names the field.
type Problems []string

func (p Problems) Error() string {
	if len(p) == 1 {
		return "invalid configuration: " + p[0]
	}
	return fmt.Sprintf("invalid configuration (%d problems):\n  - %s", len(p), strings.Join(p, "\n  - "))
}

// add records a problem.
func (p *Problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// err returns nil when there are no problems.
func (p Problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return p
}

// decodeYAML decodes data into v, refusing unknown fields so that a typo is a
// problem rather than a silently ignored setting.
func decodeYAML(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("parse: %w", err)
	}
	return nil
}

func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return data, nil
}
