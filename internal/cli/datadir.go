package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// defaultDataDir is the per-user directory for the embedded store when
// neither --data-dir nor the configuration's data_dir names one:
// $XDG_DATA_HOME/headroom, else ~/.local/share/headroom on Unix, else the
// OS's per-user config directory (macOS Application Support, Windows
// AppData) + /headroom.
func defaultDataDir() (string, error) {
	if x := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "headroom"), nil
	}
	if runtime.GOOS != "darwin" && runtime.GOOS != "windows" {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, ".local", "share", "headroom"), nil
		}
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no per-user data directory (%w); pass --data-dir", err)
	}
	return filepath.Join(dir, "headroom"), nil
}

// resolveDataDir picks the data directory: the --data-dir flag, else the
// configuration file's data_dir, else defaultDataDir.
func resolveDataDir(flagValue, configValue string) (string, error) {
	switch {
	case flagValue != "":
		return flagValue, nil
	case configValue != "":
		return configValue, nil
	}
	return defaultDataDir()
}
