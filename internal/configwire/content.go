package configwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"
)

// ValidContentType reports whether t is a known content type.
func ValidContentType(t string) bool { return slices.Contains(ContentTypes, t) }

// CheckContent returns why data does not parse as contentType, or nil.
// text and properties accept anything (a properties file has no
// syntax errors: every line is a pair, a comment or a continuation).
func CheckContent(contentType string, data []byte) error {
	switch contentType {
	case TypeJSON:
		if !json.Valid(data) {
			var v any
			err := json.Unmarshal(data, &v)
			return fmt.Errorf("value is not valid JSON: %v", err)
		}
	case TypeYAML:
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var v any
			err := dec.Decode(&v)
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("value is not valid YAML: %v", err)
			}
		}
	case TypeTOML:
		var v map[string]any
		if err := toml.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("value is not valid TOML: %v", err)
		}
	}
	return nil
}
