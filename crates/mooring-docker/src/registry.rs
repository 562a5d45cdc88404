//! Registry credentials: the username and password Mooring gives the Engine for an
//! image's registry, as `docker login` would have given the Docker CLI — for a pull on
//! an Engine, and for a Swarm service (its nodes pull with them). Keyed by the registry
//! as an image reference names it (`ghcr.io`, `registry.example.com:5000`; Docker Hub
//! as `docker.io`). Sent only in the `X-Registry-Auth` header the Engine reads,
//! base64url-encoded JSON as the Docker CLI encodes it; never printed.

use std::collections::BTreeMap;

use base64::Engine as _;

/// A username and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RegistryAuth {{ username: {:?}, password: *** }}",
            self.username
        )
    }
}

/// The credentials of each registry, by its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registries(BTreeMap<String, RegistryAuth>);

impl Registries {
    /// `registries` by name, Docker Hub's aliases (`index.docker.io`,
    /// `registry-1.docker.io`, `https://index.docker.io/v1/`) as `docker.io`.
    pub fn new(registries: impl IntoIterator<Item = (String, RegistryAuth)>) -> Registries {
        Registries(
            registries
                .into_iter()
                .map(|(name, auth)| (canonical(&name), auth))
                .collect(),
        )
    }

    /// The `X-Registry-Auth` header's value for pulling `image`, when its registry has
    /// credentials.
    pub fn header_for(&self, image: &str) -> Option<String> {
        let registry = registry_of(image);
        let auth = self.0.get(&registry)?;
        let json = serde_json::json!({
            "username": auth.username,
            "password": auth.password,
            "serveraddress": registry,
        });
        Some(base64::engine::general_purpose::URL_SAFE.encode(json.to_string()))
    }
}

/// The registry an image reference names: its first component when that has a `.` or
/// a `:` or is `localhost` (as Docker reads a reference), else Docker Hub.
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => canonical(first),
        _ => "docker.io".into(),
    }
}

/// Docker Hub's names as one.
fn canonical(name: &str) -> String {
    let name = name
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let name = name.strip_suffix("/v1").unwrap_or(name);
    match name {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_names_its_registry_as_docker_reads_it() {
        for (image, registry) in [
            ("nginx", "docker.io"),
            ("library/nginx:1", "docker.io"),
            ("me/app@sha256:abc", "docker.io"),
            ("ghcr.io/me/app:1", "ghcr.io"),
            ("127.0.0.1:5000/app", "127.0.0.1:5000"),
            ("localhost/app", "localhost"),
            ("registry-1.docker.io/me/app", "docker.io"),
        ] {
            assert_eq!(registry_of(image), registry, "{image}");
        }
    }

    #[test]
    fn credentials_go_to_their_registry_only_and_are_never_printed() {
        let auth = RegistryAuth {
            username: "me".into(),
            password: "p+w/?~".into(),
        };
        let r = Registries::new([("https://index.docker.io/v1/".to_string(), auth.clone())]);
        assert!(r.header_for("ghcr.io/me/app").is_none());
        let header = r.header_for("me/app:1").unwrap();
        assert!(!header.contains(['+', '/']), "base64url: {header}");
        let json: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE
                .decode(&header)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(json["password"], "p+w/?~");
        assert_eq!(json["serveraddress"], "docker.io");
        assert!(!format!("{r:?}").contains("p+w"));
    }
}
