package admintoken_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/couponq/couponq/examples/internal/admintoken"
)

func parse(t *testing.T, args ...string) *admintoken.Source {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	s := admintoken.Register(fs)
	require.NoError(t, fs.Parse(args))
	return s
}

func TestTokenFromTheEnvironment(t *testing.T) {
	t.Setenv(admintoken.EnvVar, "from-the-environment")
	s := parse(t)
	tok, err := s.Token()
	require.NoError(t, err)
	assert.Equal(t, "from-the-environment", tok)
	assert.False(t, s.Deprecated)
}

func TestTokenFromAFileWinsOverTheEnvironment(t *testing.T) {
	t.Setenv(admintoken.EnvVar, "from-the-environment")
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte("  from-the-file-0123\n"), 0o600))
	s := parse(t, "-admin-token-file", file)
	tok, err := s.Token()
	require.NoError(t, err)
	assert.Equal(t, "from-the-file-0123", tok, "surrounding whitespace trimmed")
	assert.False(t, s.Deprecated)
}

func TestTokenFileErrors(t *testing.T) {
	_, err := parse(t, "-admin-token-file", filepath.Join(t.TempDir(), "missing")).Token()
	assert.Error(t, err)
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	_, err = parse(t, "-admin-token-file", empty).Token()
	assert.ErrorContains(t, err, "empty")
}

func TestDeprecatedFlagStillWorks(t *testing.T) {
	t.Setenv(admintoken.EnvVar, "from-the-environment")
	s := parse(t, "-admin-token", "from-the-command-line")
	tok, err := s.Token()
	require.NoError(t, err)
	assert.Equal(t, "from-the-command-line", tok)
	assert.True(t, s.Deprecated, "the caller warns")
}

func TestBothFlagsRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte("from-the-file-0123"), 0o600))
	_, err := parse(t, "-admin-token-file", file, "-admin-token", "from-the-command-line").Token()
	assert.Error(t, err)
}
