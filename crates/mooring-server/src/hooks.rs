//! Incoming webhooks: GitHub, GitLab, Gitea/Forgejo, Bitbucket and a generic
//! HMAC-SHA256 form. Every delivery must be signed (or carry the token, for GitLab);
//! signatures are checked in constant time; bodies are capped by the router; delivery
//! ids are remembered so a replay is refused. A verified push names a repository (and
//! a ref); the apps whose source matches are refreshed.

use crate::config::{Secret, WebhookConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The largest body accepted (bytes).
pub const MAX_BODY: usize = 1 << 20;

/// Providers, as they appear in `/hooks/<provider>`.
pub const PROVIDERS: [&str; 6] = [
    "github",
    "gitlab",
    "gitea",
    "forgejo",
    "bitbucket",
    "generic",
];

/// A verified push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// Repository URLs the payload names (clone, ssh, web).
    pub repositories: Vec<String>,
    /// Pushed ref (`refs/heads/main`), when the payload says.
    pub reference: Option<String>,
    /// The provider's delivery id, for replay protection.
    pub delivery: Option<String>,
}

/// Why a delivery was refused; `status` is the HTTP status to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HookError {
    pub status: u16,
    pub message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> HookError {
    HookError {
        status,
        message: message.into(),
    }
}

/// Header lookup (case-insensitive names).
pub trait Headers {
    fn header(&self, name: &str) -> Option<&str>;
}

impl Headers for axum::http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Checks the signature or token of a delivery and extracts the push.
pub fn verify(
    provider: &str,
    config: &WebhookConfig,
    headers: &dyn Headers,
    body: &[u8],
) -> Result<Push, HookError> {
    let secret = match provider {
        "github" => &config.github,
        "gitlab" => &config.gitlab,
        "gitea" | "forgejo" => &config.gitea,
        "bitbucket" => &config.bitbucket,
        "generic" => &config.generic,
        other => return Err(refuse(404, format!("unknown webhook provider {other:?}"))),
    };
    let secret = secret
        .as_ref()
        .ok_or_else(|| refuse(403, format!("webhooks.{provider} is not configured")))?;
    let delivery = match provider {
        "github" => {
            check_hmac(
                secret,
                body,
                headers.header("x-hub-signature-256"),
                Some("sha256="),
            )?;
            Some(required_delivery(
                headers.header("x-github-delivery"),
                "X-GitHub-Delivery",
            )?)
        }
        "gitlab" => {
            let token = headers
                .header("x-gitlab-token")
                .ok_or_else(|| refuse(401, "missing X-Gitlab-Token"))?;
            if !constant_time_eq(token.as_bytes(), secret.expose().as_bytes()) {
                return Err(refuse(401, "wrong X-Gitlab-Token"));
            }
            headers
                .header("x-gitlab-event-uuid")
                .or_else(|| headers.header("x-gitlab-webhook-uuid"))
        }
        "gitea" | "forgejo" => {
            let sig = headers
                .header("x-gitea-signature")
                .or_else(|| headers.header("x-forgejo-signature"));
            check_hmac(secret, body, sig, None)?;
            Some(required_delivery(
                headers
                    .header("x-gitea-delivery")
                    .or_else(|| headers.header("x-forgejo-delivery")),
                "X-Gitea-Delivery (or X-Forgejo-Delivery)",
            )?)
        }
        "bitbucket" => {
            check_hmac(
                secret,
                body,
                headers.header("x-hub-signature"),
                Some("sha256="),
            )?;
            headers
                .header("x-request-uuid")
                .or_else(|| headers.header("x-request-id"))
        }
        _ => {
            check_hmac(
                secret,
                body,
                headers.header("x-mooring-signature"),
                Some("sha256="),
            )?;
            Some(required_delivery(
                headers.header("x-mooring-delivery"),
                "X-Mooring-Delivery",
            )?)
        }
    };
    if let Some(d) = delivery {
        if d.len() > 200 {
            return Err(refuse(400, "delivery id too long"));
        }
    }
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| refuse(400, format!("body is not JSON: {e}")))?;
    let mut push = parse_push(provider, &json)?;
    push.delivery = delivery.map(str::to_string);
    Ok(push)
}

/// The delivery id of a provider that always sends one: without it a signed delivery
/// could be replayed, so its absence is a refusal, not a skipped check.
fn required_delivery<'a>(value: Option<&'a str>, header: &str) -> Result<&'a str, HookError> {
    value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
        refuse(
            400,
            format!("missing {header} (a unique id per delivery, checked against replays); send it with every delivery"),
        )
    })
}

fn check_hmac(
    secret: &Secret,
    body: &[u8],
    header: Option<&str>,
    prefix: Option<&str>,
) -> Result<(), HookError> {
    let header = header.ok_or_else(|| refuse(401, "missing signature header"))?;
    let hex = match prefix {
        Some(p) => header
            .strip_prefix(p)
            .ok_or_else(|| refuse(401, format!("signature must start with {p}")))?,
        None => header,
    };
    let given = decode_hex(hex).ok_or_else(|| refuse(401, "signature is not hex"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .map_err(|_| refuse(500, "bad secret"))?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given)
        .map_err(|_| refuse(401, "signature does not match"))
}

/// A minimal push delivery as `provider` sends it for `repository` at `reference`
/// (`refs/heads/main`), signed with `secret` (GitLab: the token) and carrying
/// `delivery` as its id: the headers and the body. `mooring app hook-test` sends it;
/// README documents the payloads this reads.
pub fn sample(
    provider: &str,
    repository: &str,
    reference: &str,
    secret: &str,
    delivery: &str,
) -> Result<Delivery, HookError> {
    let branch = reference.strip_prefix("refs/heads/").unwrap_or(reference);
    let body = match provider {
        "github" | "gitea" | "forgejo" => serde_json::json!({
            "ref": reference,
            "repository": {"clone_url": repository},
        }),
        "gitlab" => serde_json::json!({
            "ref": reference,
            "project": {"git_http_url": repository},
        }),
        "bitbucket" => serde_json::json!({
            "repository": {"links": {"clone": [{"href": repository, "name": "https"}]}},
            "push": {"changes": [{"new": {"name": branch}}]},
        }),
        "generic" => serde_json::json!({"repository": repository, "ref": reference}),
        other => {
            return Err(refuse(
                404,
                format!(
                    "unknown webhook provider {other:?} (one of {})",
                    PROVIDERS.join(", ")
                ),
            ))
        }
    }
    .to_string()
    .into_bytes();
    let signature = sign(secret, &body);
    let headers = match provider {
        "github" => vec![
            ("x-hub-signature-256", format!("sha256={signature}")),
            ("x-github-delivery", delivery.to_string()),
            ("x-github-event", "push".to_string()),
        ],
        "gitlab" => vec![
            ("x-gitlab-token", secret.to_string()),
            ("x-gitlab-event-uuid", delivery.to_string()),
            ("x-gitlab-event", "Push Hook".to_string()),
        ],
        "gitea" | "forgejo" => vec![
            ("x-gitea-signature", signature),
            ("x-gitea-delivery", delivery.to_string()),
        ],
        "bitbucket" => vec![
            ("x-hub-signature", format!("sha256={signature}")),
            ("x-request-uuid", delivery.to_string()),
        ],
        _ => vec![
            ("x-mooring-signature", format!("sha256={signature}")),
            ("x-mooring-delivery", delivery.to_string()),
        ],
    };
    Ok(Delivery { headers, body })
}

/// A webhook delivery as a provider sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// HMAC-SHA256 of `body` as lower-case hex (what senders put in the signature header).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    mooring_core::hash::hex(&mac.finalize().into_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Compare HMACs of both under a fixed key: equal-length digests, constant-time check.
    let digest = |x: &[u8]| {
        let mut m = Hmac::<Sha256>::new_from_slice(b"mooring-token-compare")
            .unwrap_or_else(|_| unreachable!("any key length"));
        m.update(x);
        m
    };
    digest(a)
        .verify_slice(&digest(b).finalize().into_bytes())
        .is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn strings(values: &[Option<&serde_json::Value>]) -> Vec<String> {
    values
        .iter()
        .filter_map(|v| v.and_then(|v| v.as_str()))
        .map(str::to_string)
        .collect()
}

fn parse_push(provider: &str, j: &serde_json::Value) -> Result<Push, HookError> {
    let p = |path: &str| j.pointer(path);
    let (repositories, reference) = match provider {
        "github" | "gitea" | "forgejo" => (
            strings(&[
                p("/repository/clone_url"),
                p("/repository/ssh_url"),
                p("/repository/git_url"),
                p("/repository/html_url"),
            ]),
            p("/ref").and_then(|r| r.as_str()).map(str::to_string),
        ),
        "gitlab" => (
            strings(&[
                p("/project/git_http_url"),
                p("/project/git_ssh_url"),
                p("/project/web_url"),
                p("/repository/git_http_url"),
            ]),
            p("/ref").and_then(|r| r.as_str()).map(str::to_string),
        ),
        "bitbucket" => {
            let mut repos = strings(&[p("/repository/links/html/href")]);
            if let Some(links) = p("/repository/links/clone").and_then(|c| c.as_array()) {
                repos.extend(
                    links
                        .iter()
                        .filter_map(|l| l.pointer("/href")?.as_str().map(str::to_string)),
                );
            }
            let reference = p("/push/changes/0/new/name")
                .and_then(|r| r.as_str())
                .map(|n| format!("refs/heads/{n}"))
                .or_else(|| {
                    p("/changes/0/refId")
                        .and_then(|r| r.as_str())
                        .map(str::to_string)
                });
            (repos, reference)
        }
        _ => (
            strings(&[p("/repository")]),
            p("/ref").and_then(|r| r.as_str()).map(str::to_string),
        ),
    };
    if repositories.is_empty() {
        return Err(refuse(400, "the payload names no repository"));
    }
    Ok(Push {
        repositories,
        reference,
        delivery: None,
    })
}

/// A repository URL reduced to `host/path` (no scheme, user, `.git`, trailing slash;
/// lower-case host) so clone, SSH and web URLs of one repository compare equal.
pub fn normalize_repository(url: &str) -> String {
    let mut s = url.trim().trim_end_matches('/');
    if let Some((_, rest)) = s.split_once("://") {
        s = rest;
    }
    let s = s.rsplit_once('@').map(|(_, r)| r).unwrap_or(s);
    // scp-like `host:owner/repo` → `host/owner/repo`; keep `host:port/…` as host/…
    let (host, path) = match s.find(['/', ':']) {
        Some(i) if s[i..].starts_with(':') => {
            let rest = &s[i + 1..];
            // `host:2222/path` has a port; `host:owner/repo` is scp-like.
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let rest = if digits > 0 && rest[digits..].starts_with('/') {
                &rest[digits + 1..]
            } else {
                rest
            };
            (&s[..i], rest)
        }
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let path = path.strip_suffix(".git").unwrap_or(path);
    format!("{}/{}", host.to_lowercase(), path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct H(HashMap<&'static str, String>);
    impl Headers for H {
        fn header(&self, name: &str) -> Option<&str> {
            self.0.get(name).map(String::as_str)
        }
    }

    fn config() -> WebhookConfig {
        let s = |v: &str| {
            crate::config::parse(
                &format!("webhooks: {{ generic: {{ secret: {v} }} }}"),
                "t",
                std::path::Path::new("/"),
            )
            .unwrap()
            .webhooks
            .generic
        };
        WebhookConfig {
            github: s("gh"),
            gitlab: s("gl"),
            gitea: s("gt"),
            bitbucket: s("bb"),
            generic: s("gen"),
        }
    }

    const GH: &str = r#"{"ref":"refs/heads/main","repository":{"clone_url":"https://github.com/ops/infra.git","ssh_url":"git@github.com:ops/infra.git"}}"#;

    #[test]
    fn every_providers_sample_delivery_verifies_and_names_the_push() {
        let cfg = config();
        for (provider, secret) in [
            ("github", "gh"),
            ("gitlab", "gl"),
            ("gitea", "gt"),
            ("forgejo", "gt"),
            ("bitbucket", "bb"),
            ("generic", "gen"),
        ] {
            let d = sample(
                provider,
                "https://git.example/ops/infra.git",
                "refs/heads/main",
                secret,
                "d-1",
            )
            .unwrap();
            let h = H(d.headers.into_iter().collect());
            let push =
                verify(provider, &cfg, &h, &d.body).unwrap_or_else(|e| panic!("{provider}: {e}"));
            assert_eq!(
                push.repositories,
                ["https://git.example/ops/infra.git"],
                "{provider}"
            );
            assert_eq!(
                push.reference.as_deref(),
                Some("refs/heads/main"),
                "{provider}"
            );
            assert_eq!(push.delivery.as_deref(), Some("d-1"), "{provider}");
            // Signed with another secret, it is refused.
            let d = sample(provider, "x", "refs/heads/main", "wrong", "d-2").unwrap();
            assert!(verify(provider, &cfg, &H(d.headers.into_iter().collect()), &d.body).is_err());
        }
        assert!(sample("svn", "x", "y", "z", "d").is_err());
    }

    #[test]
    fn github_signature() {
        let h = H(HashMap::from([
            (
                "x-hub-signature-256",
                format!("sha256={}", sign("gh", GH.as_bytes())),
            ),
            ("x-github-delivery", "d1".into()),
        ]));
        let push = verify("github", &config(), &h, GH.as_bytes()).unwrap();
        assert_eq!(push.reference.as_deref(), Some("refs/heads/main"));
        assert_eq!(push.delivery.as_deref(), Some("d1"));
        assert_eq!(
            normalize_repository(&push.repositories[0]),
            "github.com/ops/infra"
        );
        assert_eq!(
            normalize_repository(&push.repositories[1]),
            "github.com/ops/infra"
        );
        // Signed but without a delivery id: no replay protection, so refused.
        let no_id = H(HashMap::from([(
            "x-hub-signature-256",
            format!("sha256={}", sign("gh", GH.as_bytes())),
        )]));
        let refused = verify("github", &config(), &no_id, GH.as_bytes()).unwrap_err();
        assert_eq!(refused.status, 400);
        assert!(refused.message.contains("X-GitHub-Delivery"), "{refused}");
        let forged = H(HashMap::from([(
            "x-hub-signature-256",
            format!("sha256={}", sign("other", GH.as_bytes())),
        )]));
        assert_eq!(
            verify("github", &config(), &forged, GH.as_bytes())
                .unwrap_err()
                .status,
            401
        );
        let none = H(HashMap::new());
        assert_eq!(
            verify("github", &config(), &none, GH.as_bytes())
                .unwrap_err()
                .status,
            401
        );
        let tampered = GH.replace("main", "evil");
        assert_eq!(
            verify(
                "github",
                &config(),
                &H(HashMap::from([(
                    "x-hub-signature-256",
                    format!("sha256={}", sign("gh", GH.as_bytes()))
                )])),
                tampered.as_bytes()
            )
            .unwrap_err()
            .status,
            401
        );
    }

    #[test]
    fn gitlab_token_gitea_bitbucket_generic() {
        let gl = r#"{"ref":"refs/heads/main","project":{"git_http_url":"https://gitlab.com/ops/infra.git"}}"#;
        assert!(verify(
            "gitlab",
            &config(),
            &H(HashMap::from([("x-gitlab-token", "gl".into())])),
            gl.as_bytes()
        )
        .is_ok());
        assert_eq!(
            verify(
                "gitlab",
                &config(),
                &H(HashMap::from([("x-gitlab-token", "nope".into())])),
                gl.as_bytes()
            )
            .unwrap_err()
            .status,
            401
        );
        let gt = GH;
        let mut forgejo = HashMap::from([("x-forgejo-signature", sign("gt", gt.as_bytes()))]);
        assert_eq!(
            verify("forgejo", &config(), &H(forgejo.clone()), gt.as_bytes())
                .unwrap_err()
                .status,
            400,
            "delivery id required"
        );
        forgejo.insert("x-forgejo-delivery", "f1".into());
        assert!(verify("forgejo", &config(), &H(forgejo), gt.as_bytes()).is_ok());
        let bb = r#"{"repository":{"links":{"html":{"href":"https://bitbucket.org/ops/infra"}}},"push":{"changes":[{"new":{"name":"main"}}]}}"#;
        let push = verify(
            "bitbucket",
            &config(),
            &H(HashMap::from([(
                "x-hub-signature",
                format!("sha256={}", sign("bb", bb.as_bytes())),
            )])),
            bb.as_bytes(),
        )
        .unwrap();
        assert_eq!(push.reference.as_deref(), Some("refs/heads/main"));
        let g = r#"{"repository":"git://127.0.0.1:9418/infra.git"}"#;
        let signed = HashMap::from([(
            "x-mooring-signature",
            format!("sha256={}", sign("gen", g.as_bytes())),
        )]);
        assert_eq!(
            verify("generic", &config(), &H(signed.clone()), g.as_bytes())
                .unwrap_err()
                .status,
            400,
            "delivery id required"
        );
        let mut with_id = signed;
        with_id.insert("x-mooring-delivery", "1".into());
        let push = verify("generic", &config(), &H(with_id), g.as_bytes()).unwrap();
        assert_eq!(push.reference, None);
        assert_eq!(
            verify("nope", &config(), &H(HashMap::new()), b"{}")
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            verify(
                "github",
                &WebhookConfig::default(),
                &H(HashMap::new()),
                b"{}"
            )
            .unwrap_err()
            .status,
            403
        );
    }

    #[test]
    fn repository_normalization() {
        assert_eq!(
            normalize_repository("git://127.0.0.1:9418/infra.git"),
            "127.0.0.1/infra"
        );
        assert_eq!(
            normalize_repository("https://user:pw@Git.Example.com/ops/infra/"),
            "git.example.com/ops/infra"
        );
        assert_eq!(
            normalize_repository("ssh://git@git.example.com:2222/ops/infra.git"),
            "git.example.com/ops/infra"
        );
        assert_eq!(
            normalize_repository("git@git.example.com:ops/infra.git"),
            "git.example.com/ops/infra"
        );
        assert_eq!(
            normalize_repository("https://github.com/1password/op"),
            "github.com/1password/op"
        );
    }
}
