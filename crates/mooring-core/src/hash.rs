//! The spec hash: sha256 over the canonical JSON of a desired [`Service`] (which
//! includes `files_hash`, the hash of repository files it mounts). A container whose
//! `io.mooring.spec-hash` label differs from it is recreated.
//!
//! Fields that do not change the container (`depends_on`, `pull_policy`, `profiles`,
//! `scale`) are left out, so editing them does not recreate anything.

use crate::desired::Service;
use sha2::{Digest, Sha256};

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// sha256 of `bytes` as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The spec a container records (label `io.mooring.spec`): the canonical service
/// without the environment (`Config.Env` holds that) and without what does not change
/// the container.
pub fn spec_record(service: &Service) -> serde_json::Value {
    let mut canonical = service.clone();
    canonical.depends_on.clear();
    canonical.pull_policy = Default::default();
    canonical.profiles.clear();
    canonical.scale = None;
    canonical.environment.clear();
    serde_json::to_value(&canonical).unwrap_or_default()
}

/// The spec hash of a service's container.
pub fn spec_hash(service: &Service) -> String {
    let mut canonical = service.clone();
    canonical.depends_on.clear();
    canonical.pull_policy = Default::default();
    canonical.profiles.clear();
    canonical.scale = None;
    // Serializing plain data with BTreeMaps cannot fail and is deterministic.
    let json = serde_json::to_vec(&canonical).unwrap_or_default();
    sha256_hex(&json)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::desired::*;
    use std::collections::BTreeMap;

    pub(crate) fn service() -> Service {
        Service {
            name: "web".into(),
            image: "busybox:1".into(),
            command: Some(vec!["sleep".into(), "1000".into()]),
            entrypoint: None,
            environment: BTreeMap::from([("A".into(), "1".into())]),
            ports: vec![],
            mounts: vec![],
            networks: BTreeMap::new(),
            labels: BTreeMap::new(),
            restart: "no".into(),
            healthcheck: None,
            depends_on: BTreeMap::new(),
            working_dir: None,
            user: None,
            hostname: None,
            stop_grace_period: None,
            stop_signal: None,
            tmpfs: vec![],
            read_only: false,
            cap_add: vec![],
            cap_drop: vec![],
            extra_hosts: vec![],
            init: None,
            pull_policy: PullPolicy::Missing,
            nano_cpus: None,
            memory: None,
            files_hash: None,
            container_name: None,
            scale: None,
            replicas: Replicas(1),
            seccomp_profile: None,
            written: Default::default(),
            profiles: vec![],
            links: vec![],
            post_start: vec![],
            pre_stop: vec![],
            secrets: vec![],
            configs: vec![],
            inline_files: vec![],
            swarm_files: vec![],
            external_links: vec![],
            settings: Default::default(),
            host: Default::default(),
            build: None,
        }
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let a = service();
        assert_eq!(spec_hash(&a), spec_hash(&a.clone()));
        assert_eq!(spec_hash(&a).len(), 64);
        let mut b = a.clone();
        b.environment.insert("A".into(), "2".into());
        assert_ne!(spec_hash(&a), spec_hash(&b));
        let mut c = a.clone();
        c.files_hash = Some("x".into());
        assert_ne!(spec_hash(&a), spec_hash(&c));
    }

    #[test]
    fn hash_ignores_depends_on_and_pull_policy() {
        let a = service();
        let mut b = a.clone();
        b.pull_policy = PullPolicy::Always;
        b.depends_on.insert(
            "db".into(),
            DependsOn {
                condition: DependsOnCondition::ServiceStarted,
                required: true,
                restart: false,
            },
        );
        assert_eq!(spec_hash(&a), spec_hash(&b));
    }

    #[test]
    fn hex_encodes() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
