//! The one-shot `mooring sync` pulls with the credentials `docker login` stored, as
//! Compose does: the `auths` of the Docker CLI's `config.json` (`$DOCKER_CONFIG`, else
//! `~/.docker`), each `auth` being base64 of `username:password`. Credentials a
//! credential helper keeps (`credsStore`, `credHelpers`) are not read: those registries
//! get no credentials here (the daemon's `registries` do not depend on this file).

use base64::Engine as _;
use mooring_docker::{Registries, RegistryAuth};
use std::path::PathBuf;

/// The registries `docker login` stored credentials for, in `config.json`; none when
/// the file is missing or unreadable (a pull then goes without, as before).
pub fn registries() -> Registries {
    let folder = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
    let Some(text) = folder.and_then(|f| std::fs::read_to_string(f.join("config.json")).ok())
    else {
        return Registries::default();
    };
    parse(&text)
}

fn parse(text: &str) -> Registries {
    let Ok(config) = serde_json::from_str::<serde_json::Value>(text) else {
        return Registries::default();
    };
    let Some(auths) = config["auths"].as_object() else {
        return Registries::default();
    };
    Registries::new(auths.iter().filter_map(|(registry, entry)| {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(entry["auth"].as_str()?)
            .ok()?;
        let (username, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        Some((
            registry.clone(),
            RegistryAuth {
                username: username.to_string(),
                password: password.to_string(),
            },
        ))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auths_docker_login_stored_are_read() {
        let r = parse(
            r#"{"auths": {"127.0.0.1:5000": {"auth": "bW9vcmluZzpzZWNyZXQ="}, "ghcr.io": {}}, "credsStore": "desktop"}"#,
        );
        assert!(r.header_for("127.0.0.1:5000/app:1").is_some());
        assert!(r.header_for("ghcr.io/me/app").is_none(), "a helper's: none");
        assert_eq!(parse("not json"), Registries::default());
    }
}
