package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// The CLI keeps the session tokens of `mortar login` in the user's config
// directory, one per node URL, readable only by the user.
const credentialsFile = "credentials.json"

type savedLogin struct {
	User    string    `json:"user"`
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// credentialsPath is $XDG_CONFIG_HOME/mortar/credentials.json (or the
// platform's equivalent).
func credentialsPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory for the login: %w", err)
	}
	return filepath.Join(dir, "mortar", credentialsFile), nil
}

func loadLogins() (map[string]savedLogin, error) {
	logins := map[string]savedLogin{}
	path, err := credentialsPath()
	if err != nil {
		return logins, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return logins, nil
	}
	if err != nil {
		return logins, err
	}
	if err := json.Unmarshal(b, &logins); err != nil {
		return map[string]savedLogin{}, fmt.Errorf("%s: %w (delete it and log in again)", path, err)
	}
	return logins, nil
}

func saveLogins(logins map[string]savedLogin) error {
	path, err := credentialsPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(logins, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// savedToken returns the unexpired login token for url, if any.
func savedToken(url string) string {
	logins, err := loadLogins()
	if err != nil {
		return ""
	}
	l, ok := logins[url]
	if !ok || !time.Now().Before(l.Expires) {
		return ""
	}
	return l.Token
}

// readSecret reads a password: a line of stdin with --password-stdin,
// else from the terminal without echo.
func readSecret(cmd *cobra.Command, stderr io.Writer, prompt string, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		if line = strings.TrimRight(line, "\r\n"); line == "" {
			return "", usagef("--password-stdin: stdin held no password")
		}
		return line, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", usagef("no terminal to ask for the password on: pass it on stdin with --password-stdin")
	}
	fmt.Fprint(stderr, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	if len(b) == 0 {
		return "", usagef("empty password")
	}
	return string(b), nil
}
