//! `registries`: credentials for the registries images are pulled from, as `docker
//! login` keeps them for the Docker CLI — `{ REGISTRY: { username, password } }`, the
//! registry as an image reference names it (`ghcr.io`, `registry.example.com:5000`,
//! `docker.io`), the password a secret (`env:NAME`, `file:PATH` or inline). Every
//! Engine pulls with them, and a Swarm's nodes get them with each service.

use mooring_compose::decode::{check_keys, err, string};
use mooring_compose::yaml::{Node, Value};
use mooring_compose::LoadError;
use mooring_docker::{Registries, RegistryAuth};
use std::path::Path;

/// `registries: { REGISTRY: { username: U, password: SECRET } }`.
pub(super) fn registries(doc: &Node, base: &Path) -> Result<Registries, LoadError> {
    let Some(n) = doc.get("registries") else {
        return Ok(Registries::default());
    };
    let Value::Map(entries) = &n.value else {
        return Err(err(
            n,
            "registries must map a registry (ghcr.io, registry.example.com:5000, docker.io) to { username, password }",
        ));
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        let name = string(k, "registries")?;
        let what = format!("registries.{name}");
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('@') {
            return Err(err(
                k,
                format!("{what}: name a registry as an image reference does (ghcr.io, host:port)"),
            ));
        }
        check_keys(v, &what, &["username", "password"])?;
        let field = |key: &str| {
            v.get(key)
                .ok_or_else(|| err(v, format!("{what}.{key} is required")))
        };
        let username = string(field("username")?, &format!("{what}.username"))?;
        let password = super::secret(field("password")?, &format!("{what}.password"), base)?;
        out.push((
            name,
            RegistryAuth {
                username,
                password: password.expose().to_string(),
            },
        ));
    }
    Ok(Registries::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Registries, String> {
        let doc = mooring_compose::yaml::parse(text, &std::sync::Arc::from("m.yaml"))
            .map_err(|e| e.to_string())?;
        registries(&doc, Path::new("/")).map_err(|e| e.to_string())
    }

    #[test]
    fn credentials_are_read_and_checked() {
        std::env::set_var("MOORING_TEST_REGISTRY_PW", "s3cret");
        let r = load(
            "registries:\n  ghcr.io: { username: me, password: env:MOORING_TEST_REGISTRY_PW }\n",
        )
        .unwrap();
        assert!(r.header_for("ghcr.io/me/app:1").is_some());
        assert!(r.header_for("nginx").is_none());
        assert!(!format!("{r:?}").contains("s3cret"));
        let e = load("registries:\n  ghcr.io: { username: me }\n").unwrap_err();
        assert!(e.contains("registries.ghcr.io.password is required"), "{e}");
        let e =
            load("registries:\n  ghcr.io: { username: me, password: x, token: y }\n").unwrap_err();
        assert!(e.contains("token"), "{e}");
    }
}
