// Package secret holds the Secret string type: masked wherever it is printed.
package secret

import "log/slog"

// Secret is a string that must never be shown: String, LogValue and JSON
// all mask it. Reveal returns the real value for the one place that needs it.
type Secret string

const masked = "****"

// String masks the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return masked
}

// LogValue masks the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText masks the secret in JSON and text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// GoString masks the secret in %#v.
func (s Secret) GoString() string { return s.String() }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }
