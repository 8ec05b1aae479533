//! The user's cache and settings folders (XDG on Linux, the usual places elsewhere).

use std::path::PathBuf;

fn user_dir(xdg: &str, under_home: &str, windows: &str) -> Option<PathBuf> {
    std::env::var_os(xdg)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(under_home)))
        .or_else(|| std::env::var_os(windows).map(PathBuf::from))
}

/// `$XDG_CACHE_HOME/frameline`, `~/.cache/frameline` or `%LOCALAPPDATA%\frameline`.
pub fn cache_dir() -> Option<PathBuf> {
    user_dir("XDG_CACHE_HOME", ".cache", "LOCALAPPDATA").map(|d| d.join("frameline"))
}

/// `$XDG_CONFIG_HOME/frameline`, `~/.config/frameline` or `%APPDATA%\frameline`.
pub fn config_dir() -> Option<PathBuf> {
    user_dir("XDG_CONFIG_HOME", ".config", "APPDATA").map(|d| d.join("frameline"))
}
