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
	"reflect"
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

// decodeYAML decodes data into v. A file that is not YAML is a parse
// error; one whose fields or values do not fit v's type (a typo in a key,
// a word where a number goes) is Problems, every one at once and named by
// its path in the file (checkYAML), so that a typo is a problem rather than
// a silently ignored setting. What does fit is decoded, so that the
// caller's validation can add its own problems.
func decodeYAML(data []byte, v any) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	var p Problems
	checkYAML(&doc, reflect.TypeOf(v).Elem(), &p)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(v)
	var te *yaml.TypeError
	switch {
	case err == nil, errors.Is(err, io.EOF):
	case errors.As(err, &te) && len(p) > 0:
		// checkYAML reported these in the file's terms.
	default:
		return fmt.Errorf("parse: %w", err)
	}
	return p.err()
}

// decodeAndValidate decodes data over v and validates it, returning every
// problem of both steps at once.
func decodeAndValidate(data []byte, v any, applyAndValidate func() error) error {
	err := decodeYAML(data, v)
	var p Problems
	if err != nil && !errors.As(err, &p) {
		return err
	}
	var more Problems
	if verr := applyAndValidate(); errors.As(verr, &more) {
		p = append(p, more...)
	} else if verr != nil {
		return verr
	}
	return p.err()
}

func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return data, nil
}
