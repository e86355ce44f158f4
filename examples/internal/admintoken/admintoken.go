// Package admintoken reads the examples' admin token from where no output
// derived from the command line shows it: the COUPONQ_ADMIN_TOKEN
// environment variable, or a file (-admin-token-file). A token given as a
// flag is in the process's argv, which every local user reads (ps,
// /proc/PID/cmdline) and which expvar publishes as "cmdline" on
// /debug/vars — to whoever scrapes the operations port. The -admin-token
// flag therefore stays only as a deprecated fallback: it still works, and
// the caller warns (Source.Deprecated).
package admintoken

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvVar is the environment variable the token is read from by default.
const EnvVar = "COUPONQ_ADMIN_TOKEN"

// MinLen is the shortest admin token the examples accept.
const MinLen = 16

// DeprecationWarning is what a program logs when the token came from the
// deprecated flag.
const DeprecationWarning = "-admin-token is deprecated: the command line is visible to ps and on /debug/vars; set $" + EnvVar + " or -admin-token-file"

// Source is where a program's admin token comes from: the flags Register
// defines, then the environment.
type Source struct {
	file, value string
	// Deprecated reports, after Token, that the token came from the
	// deprecated -admin-token flag.
	Deprecated bool
}

// Register defines -admin-token-file and the deprecated -admin-token on fs.
func Register(fs *flag.FlagSet) *Source {
	s := &Source{}
	fs.StringVar(&s.file, "admin-token-file", "", "read the admin token from this file (its whitespace trimmed); default $"+EnvVar)
	fs.StringVar(&s.value, "admin-token", "", "DEPRECATED, visible to ps and on /debug/vars: the admin token itself; use $"+EnvVar+" or -admin-token-file")
	return s
}

// Token returns the admin token: the contents of -admin-token-file if set,
// else -admin-token if set (Deprecated then reports it), else
// $COUPONQ_ADMIN_TOKEN. It may be empty or short: the caller checks MinLen.
func (s *Source) Token() (string, error) {
	s.Deprecated = false
	switch {
	case s.file != "" && s.value != "":
		return "", errors.New("give the admin token once: -admin-token-file or (deprecated) -admin-token")
	case s.file != "":
		tok, err := ReadFile(s.file)
		if err != nil {
			return "", fmt.Errorf("-admin-token-file: %w", err)
		}
		return tok, nil
	case s.value != "":
		s.Deprecated = true
		return s.value, nil
	}
	return os.Getenv(EnvVar), nil
}

// ReadFile returns a secret kept in a file: its contents with surrounding
// whitespace (a trailing newline, say) trimmed. An empty file is an error.
func ReadFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return secret, nil
}
