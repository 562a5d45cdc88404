//! What a request may see and do beyond its role: a token (or the session made from
//! it) may be limited to some apps. Such a token sees only those apps in lists, the
//! event stream and operations; a route naming another app is refused (403); global
//! routes (token management, reload, `/metrics`) need a token for every app. Also the
//! parsing of token lifetimes (`30d`) shared by the CLI and the API.

use mooring_store::{Role, TokenInfo, TokenOptions};
use std::time::Duration;

/// The role and app limit of an authenticated request (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub role: Role,
    /// `None`: every app.
    pub apps: Option<Vec<String>>,
    /// The token's name (a web UI session's is the token it was opened with): who asks,
    /// as the history records it.
    pub name: String,
}

impl Access {
    pub fn of(info: &TokenInfo) -> Access {
        Access {
            role: info.role,
            apps: info.apps.clone(),
            name: info.name.clone(),
        }
    }

    /// Whether the request may see app `name` (a token limited to app `web` sees each
    /// of its instances on several hosts, `web@a`, `web@b`).
    pub fn sees(&self, name: &str) -> bool {
        let base = name.split_once('@').map_or(name, |(base, _)| base);
        self.apps
            .as_ref()
            .is_none_or(|apps| apps.iter().any(|a| a == name || a == base))
    }

    /// Why app `name` is refused, or `None` when it is not.
    pub fn refusal(&self, name: &str) -> Option<String> {
        match &self.apps {
            Some(apps) if !self.sees(name) => Some(format!(
                "this token is limited to app(s) {}; app {name} is not one of them",
                apps.join(", ")
            )),
            _ => None,
        }
    }

    /// Why a global route (not about one app) is refused, or `None` when it is not.
    pub fn global_refusal(&self) -> Option<String> {
        self.apps.as_ref().map(|apps| {
            format!(
                "this token is limited to app(s) {}; this route concerns every app and needs a token without an app limit",
                apps.join(", ")
            )
        })
    }

    /// Keeps the items of `items` whose app (`app` names it) this request sees (items
    /// naming no app are dropped when the request is limited).
    pub fn retain<T>(&self, items: &mut Vec<T>, app: impl Fn(&T) -> Option<&str>) {
        if self.apps.is_none() {
            return;
        }
        items.retain(|item| app(item).is_some_and(|name| self.sees(name)));
    }
}

/// A token lifetime as given to `mooring token create --expires` and the API:
/// a whole number and a unit, `s`, `m`, `h`, `d` or `w`, possibly several (`1d12h`).
pub fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid lifetime {text:?}: use a number and a unit s, m, h, d or w, e.g. 30d, 12h, 1w"
        )
    };
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = rest[digits..].chars().next().ok_or_else(bad)?;
        let seconds = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        total = number
            .checked_mul(seconds)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    if total == 0 {
        return Err(format!(
            "invalid lifetime {text:?}: it must be longer than zero"
        ));
    }
    if total > 100 * 365 * 86_400 {
        return Err(format!("invalid lifetime {text:?}: at most 100 years; omit --expires for a token that does not expire"));
    }
    Ok(Duration::from_secs(total))
}

/// The limits of a new token from what a person gave: a lifetime (`30d`) from `now`
/// and the apps, each of which must be `configured`.
pub fn token_options(
    expires: Option<&str>,
    apps: Option<Vec<String>>,
    configured: &[String],
    now: i64,
) -> Result<TokenOptions, String> {
    let expires_at = expires
        .map(|e| parse_lifetime(e).map(|d| now.saturating_add(d.as_millis() as i64)))
        .transpose()?;
    if let Some(apps) = &apps {
        if apps.is_empty() {
            return Err("a token limited to apps needs at least one app name".into());
        }
        if let Some(unknown) = apps.iter().find(|a| !configured.contains(a)) {
            return Err(format!(
                "app {unknown} is not configured (configured: {}); a token can be limited to configured apps only",
                if configured.is_empty() { "none".to_string() } else { configured.join(", ") }
            ));
        }
    }
    Ok(TokenOptions { expires_at, apps })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_lifetime("1d12h"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse_lifetime("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_lifetime("90s"), Ok(Duration::from_secs(90)));
        for bad in [
            "",
            "30",
            "d",
            "30x",
            "-1d",
            "1.5d",
            "0d",
            "99999999999999999999d",
            "1000000w",
        ] {
            let err = parse_lifetime(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_limited_token_sees_its_apps_only() {
        let all = Access {
            role: Role::Viewer,
            apps: None,
            name: "viewer".into(),
        };
        let some = Access {
            role: Role::Operator,
            apps: Some(vec!["blog".into()]),
            name: "blog-ci".into(),
        };
        assert!(all.sees("shop") && some.sees("blog") && !some.sees("shop"));
        assert_eq!(all.refusal("shop"), None);
        assert!(some
            .refusal("shop")
            .unwrap()
            .contains("limited to app(s) blog"));
        assert_eq!(some.refusal("blog"), None);
        assert!(all.global_refusal().is_none() && some.global_refusal().is_some());
        let configured = ["blog".to_string()];
        let options = token_options(Some("1d"), Some(vec!["blog".into()]), &configured, 5).unwrap();
        assert_eq!(options.expires_at, Some(5 + 86_400_000));
        let err = token_options(None, Some(vec!["shop".into()]), &configured, 5).unwrap_err();
        assert!(
            err.contains("app shop is not configured (configured: blog)"),
            "{err}"
        );
        assert!(token_options(None, Some(vec![]), &configured, 5).is_err());
        assert!(token_options(Some("soon"), None, &configured, 5).is_err());
        let list = vec![Some("blog"), Some("shop"), None];
        let mut seen = list.clone();
        some.retain(&mut seen, |a| *a);
        assert_eq!(seen, [Some("blog")]);
        let mut seen = list.clone();
        all.retain(&mut seen, |a| *a);
        assert_eq!(seen, list);
    }
}
