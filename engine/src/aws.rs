//! S3 settings: explicit options (typed in by the user for one session, never written to disk)
//! over the AWS environment variables, over the AWS profile files (`~/.aws/credentials`,
//! `~/.aws/config`, `AWS_PROFILE`, `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`).

use std::collections::HashMap;
use std::path::PathBuf;

/// S3 connection settings that override the environment.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub allow_http: Option<bool>,
    /// A named profile of the AWS files (default: `AWS_PROFILE`, else `default`).
    pub profile: Option<String>,
}

impl std::fmt::Debug for S3Options {
    // Never print secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("profile", &self.profile)
            .finish()
    }
}

/// The settings of one profile, from the text of the credentials and config files.
pub fn profile_settings(credentials: &str, config: &str, profile: &str) -> HashMap<String, String> {
    let mut settings = HashMap::new();
    // In the config file, profiles other than `default` are `[profile name]`.
    let config_section = if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    };
    for (text, section) in [(config, config_section.as_str()), (credentials, profile)] {
        let mut in_section = false;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                in_section = name.trim() == section;
                continue;
            }
            if in_section && let Some((key, value)) = line.split_once('=') {
                settings.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
    }
    settings
}

fn aws_file(env: &str, name: &str) -> Option<PathBuf> {
    std::env::var_os(env).map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME")
            .or_else(|| std::env::var_os("USERPROFILE"))
            .map(|home| PathBuf::from(home).join(".aws").join(name))
    })
}

impl S3Options {
    /// Fills what is missing from the AWS profile files (values already set, or set in the
    /// environment, win).
    pub fn with_profile_files(mut self) -> S3Options {
        let profile = self
            .profile
            .clone()
            .or_else(|| std::env::var("AWS_PROFILE").ok())
            .unwrap_or_else(|| "default".to_owned());
        let read = |path: Option<PathBuf>| {
            path.and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default()
        };
        let credentials = read(aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"));
        let config = read(aws_file("AWS_CONFIG_FILE", "config"));
        let settings = profile_settings(&credentials, &config, &profile);
        let env_has = |name: &str| std::env::var_os(name).is_some();
        let pick = |slot: &mut Option<String>, env: &str, key: &str| {
            if slot.is_none() && !env_has(env) {
                *slot = settings.get(key).cloned();
            }
        };
        pick(
            &mut self.access_key_id,
            "AWS_ACCESS_KEY_ID",
            "aws_access_key_id",
        );
        pick(
            &mut self.secret_access_key,
            "AWS_SECRET_ACCESS_KEY",
            "aws_secret_access_key",
        );
        pick(
            &mut self.session_token,
            "AWS_SESSION_TOKEN",
            "aws_session_token",
        );
        if self.region.is_none() && !env_has("AWS_REGION") && !env_has("AWS_DEFAULT_REGION") {
            self.region = settings.get("region").cloned();
        }
        if self.endpoint.is_none() && !env_has("AWS_ENDPOINT_URL") && !env_has("AWS_ENDPOINT") {
            self.endpoint = settings.get("endpoint_url").cloned();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_come_from_both_files() {
        let credentials = "[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key = s1\n\n[studio]\naws_access_key_id=AKSTUDIO\naws_secret_access_key = s2\n";
        let config = "[default]\nregion = us-east-1\n[profile studio]\nregion = eu-west-3\nendpoint_url = http://minio:9000\n";
        let studio = profile_settings(credentials, config, "studio");
        assert_eq!(
            studio.get("aws_access_key_id").map(String::as_str),
            Some("AKSTUDIO")
        );
        assert_eq!(
            studio.get("aws_secret_access_key").map(String::as_str),
            Some("s2")
        );
        assert_eq!(studio.get("region").map(String::as_str), Some("eu-west-3"));
        assert_eq!(
            studio.get("endpoint_url").map(String::as_str),
            Some("http://minio:9000")
        );
        let default = profile_settings(credentials, config, "default");
        assert_eq!(
            default.get("aws_access_key_id").map(String::as_str),
            Some("AKDEFAULT")
        );
        assert_eq!(default.get("region").map(String::as_str), Some("us-east-1"));
        assert!(profile_settings(credentials, config, "missing").is_empty());
    }

    #[test]
    fn secrets_are_not_printed() {
        let options = S3Options {
            secret_access_key: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{options:?}").contains("hunter2"));
    }
}
