//! Image digests for a Swarm stack, as `docker stack deploy` (its default
//! `--resolve-image always`) pins them: each service's image is asked of its registry
//! through the manager (`GET /distribution/{image}/json`, with the registry's
//! credentials), and the service runs `image:tag@sha256:…` on every node, with the
//! platforms the registry lists. A tag moved in the registry is then a changed spec,
//! rolled out at the next sync; a node that has the pinned image starts it without
//! asking the registry again.
//!
//! Resolving is I/O (`Provider::resolve_images`); pinning a spec is pure (`pin`).
//! Where `docker stack deploy` would unpin a service when its registry does not answer,
//! Mooring keeps the digest the service already runs: an outage is not a rollout.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::Provider;

/// What a registry says of an image: its digest and the platforms it is built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub digest: String,
    /// As a service's `Placement.Platforms` takes them (`Architecture`, `OS`).
    pub platforms: Vec<Value>,
}

/// The outcome of resolving each image, by the reference the project writes; an error
/// says why the registry gave no digest.
pub type Resolved = BTreeMap<String, Result<Pin, String>>;

/// `image` names a digest already (`…@sha256:…`): nothing to resolve.
pub fn has_digest(image: &str) -> bool {
    image.contains('@')
}

/// Only what an image reference may hold goes into a request path: a hostile
/// `image:` must not name another endpoint of the Engine.
fn resolvable(image: &str) -> bool {
    !image.is_empty()
        && !image.contains("..")
        && image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c))
}

/// The platforms of a `/distribution` answer as a service's placement takes them;
/// `arm` without its architecture, as the Docker CLI does (nodes report `armv7l`).
fn platforms(answer: &Value) -> Vec<Value> {
    answer["Platforms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let arch = p["architecture"].as_str().unwrap_or_default();
            let arch = if arch.eq_ignore_ascii_case("arm") {
                ""
            } else {
                arch
            };
            json!({"Architecture": arch, "OS": p["os"].as_str().unwrap_or_default()})
        })
        .collect()
}

impl Provider {
    /// Each image of `images` (those without a digest) asked of its registry through
    /// this manager, `AT_ONCE` at a time, each given `ASK_FOR` to answer (a registry
    /// that takes the connection and never answers must not hold the sync).
    pub async fn resolve_images<'a>(&self, images: impl IntoIterator<Item = &'a str>) -> Resolved {
        let mut wanted: Vec<&str> = images.into_iter().filter(|i| !has_digest(i)).collect();
        wanted.sort();
        wanted.dedup();
        let each: Vec<_> = wanted
            .into_iter()
            .map(|image| async move {
                let answer = if resolvable(image) {
                    let path = format!("/distribution/{image}/json");
                    let asked = self.swarm_api_as("GET", &path, None, self.registry_auth(image));
                    tokio::time::timeout(ASK_FOR, asked)
                        .await
                        .unwrap_or_else(|_| Err(format!("no answer within {}s", ASK_FOR.as_secs())))
                } else {
                    Err("not an image reference".to_string())
                };
                let pin = answer.and_then(|a| {
                    let digest = a
                        .pointer("/Descriptor/digest")
                        .and_then(Value::as_str)
                        .filter(|d| d.starts_with("sha256:"))
                        .ok_or("the registry's answer has no digest")?;
                    Ok(Pin {
                        digest: digest.to_string(),
                        platforms: platforms(&a),
                    })
                });
                (image.to_string(), pin)
            })
            .collect();
        use futures_util::StreamExt;
        futures_util::stream::iter(each)
            .buffer_unordered(AT_ONCE)
            .collect()
            .await
    }
}

/// How long a registry is given to say an image's digest.
const ASK_FOR: std::time::Duration = std::time::Duration::from_secs(20);

/// How many images are asked of their registries at once.
const AT_ONCE: usize = 4;

/// The digest (as `image@…`) and platforms a service's spec `live` runs `image` pinned
/// to, if it does.
pub fn running(image: &str, live: Option<&Value>) -> Option<(String, Vec<Value>)> {
    let have = live?
        .pointer("/TaskTemplate/ContainerSpec/Image")?
        .as_str()?;
    let digest = have.strip_prefix(image)?.strip_prefix('@')?;
    let platforms = live?
        .pointer("/TaskTemplate/Placement/Platforms")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Some((format!("{image}@{digest}"), platforms))
}

/// `spec` (a service's, as `stack::spec` builds it for `image`) with its image pinned:
/// to the digest the registry gave, else to the one `live` (the service's spec now)
/// runs for the same reference. What to note of it when the registry gave none.
pub fn pin(
    spec: &mut Value,
    image: &str,
    resolved: &Resolved,
    live: Option<&Value>,
) -> Option<String> {
    let (pinned, platforms, why) = match resolved.get(image) {
        Some(Ok(p)) => (format!("{image}@{}", p.digest), p.platforms.clone(), None),
        // Not asked (`ReconcileOptions::resolve_images`): what runs stays.
        None => running(image, live).map(|(i, p)| (i, p, None))?,
        Some(Err(e)) => match running(image, live) {
            Some((pinned, platforms)) => (
                pinned,
                platforms,
                Some(format!(
                    "its registry gave no digest ({e}): the one the service runs is kept"
                )),
            ),
            None => {
                return Some(format!(
                    "no digest from its registry ({e}): each node runs what the tag names when it pulls"
                ))
            }
        },
    };
    spec["TaskTemplate"]["ContainerSpec"]["Image"] = json!(pinned);
    if !platforms.is_empty() {
        spec["TaskTemplate"]["Placement"]["Platforms"] = json!(platforms);
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(image: &str) -> Value {
        json!({"TaskTemplate": {"ContainerSpec": {"Image": image}}})
    }

    #[test]
    fn an_image_is_pinned_to_its_registrys_digest_and_platforms() {
        let resolved = Resolved::from([(
            "reg:5000/app:1".to_string(),
            Ok(Pin {
                digest: "sha256:aa".into(),
                platforms: platforms(&json!({"Platforms": [
                    {"architecture": "amd64", "os": "linux"},
                    {"architecture": "arm", "os": "linux", "variant": "v7"}
                ]})),
            }),
        )]);
        let mut s = spec("reg:5000/app:1");
        assert_eq!(pin(&mut s, "reg:5000/app:1", &resolved, None), None);
        assert_eq!(
            s,
            json!({"TaskTemplate": {
                "ContainerSpec": {"Image": "reg:5000/app:1@sha256:aa"},
                "Placement": {"Platforms": [
                    {"Architecture": "amd64", "OS": "linux"},
                    {"Architecture": "", "OS": "linux"}
                ]}
            }})
        );
    }

    #[test]
    fn a_registry_that_does_not_answer_keeps_the_digest_a_service_runs() {
        let resolved = Resolved::from([("app:1".to_string(), Err("no such host".to_string()))]);
        let live = json!({"TaskTemplate": {
            "ContainerSpec": {"Image": "app:1@sha256:bb"},
            "Placement": {"Platforms": [{"Architecture": "amd64", "OS": "linux"}]}
        }});
        let mut s = spec("app:1");
        let why = pin(&mut s, "app:1", &resolved, Some(&live)).unwrap();
        assert!(
            why.contains("no such host") && why.contains("kept"),
            "{why}"
        );
        assert_eq!(s, live);
        // Another tag's digest is not this one's; nothing running: unpinned, saying why.
        for other in [
            json!({"TaskTemplate": {"ContainerSpec": {"Image": "app:10@sha256:bb"}}}),
            Value::Null,
        ] {
            let mut s = spec("app:1");
            let why = pin(&mut s, "app:1", &resolved, Some(&other)).unwrap();
            assert!(
                why.contains("no such host") && why.contains("each node runs what the tag names"),
                "{why}"
            );
            assert_eq!(s, spec("app:1"));
        }
    }

    #[test]
    fn only_an_image_reference_reaches_a_request_path() {
        assert!(resolvable("127.0.0.1:5000/team/app:1.2-rc_3"));
        for hostile in ["../containers/json?", "app:1#x", "a b", "app/../../x", ""] {
            assert!(!resolvable(hostile), "{hostile}");
        }
        assert!(has_digest("app@sha256:aa") && !has_digest("app:1"));
    }

    #[test]
    fn an_image_not_asked_runs_what_it_ran() {
        let live = json!({"TaskTemplate": {"ContainerSpec": {"Image": "app:1@sha256:bb"}}});
        let mut s = spec("app:1");
        assert_eq!(pin(&mut s, "app:1", &Resolved::new(), Some(&live)), None);
        assert_eq!(s, live);
        let mut s = spec("app:1");
        assert_eq!(pin(&mut s, "app:1", &Resolved::new(), None), None);
        assert_eq!(s, spec("app:1"));
        assert!(running("app:1", Some(&live)).is_some());
        assert!(running("app:10", Some(&live)).is_none());
    }
}
