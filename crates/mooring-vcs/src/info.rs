//! [`RevisionInfo`]: who made a revision, when, and its whole message — for the web
//! UI. See [`Cache::revision_info`](crate::Cache::revision_info).
//!
//! - Git: `git log -1 --no-walk --format=%aN%x00%aE%x00%at%x00%B` in the cache
//!   repository (local only; the author and author time).
//! - Subversion: `svn log -r REV --xml` of the source URL pegged at the revision
//!   (the server is asked once; the answer never changes and is kept in
//!   `svn/<key>/info/<rev>`).
//! - Mercurial: `hg log -r NODE --template '{author}\0{date|hgdate}\0{desc}'` in the
//!   cache repository (local only).
//! - Directory: nothing is known (every field `None`).
//!
//! Control characters other than newlines and tabs are removed from what the tools
//! answer; the message keeps its lines.

use std::fs;
use std::path::Path;

/// Who made a revision, when, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevisionInfo {
    /// The author: `Name <email>` for Git and Mercurial (as recorded), the user
    /// name for Subversion.
    pub author: Option<String>,
    /// When: Unix time in milliseconds (Git: the author time; Subversion: the
    /// commit time; Mercurial: the changeset date).
    pub time_ms: Option<i64>,
    /// The whole message, trailing newlines removed.
    pub message: Option<String>,
}

/// `text` without control characters other than `\n` and `\t`.
pub(crate) fn clean(text: &str) -> String {
    text.chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect()
}

/// A message as [`RevisionInfo::message`] keeps it.
pub(crate) fn message(text: &str) -> String {
    clean(text).trim_end_matches(['\n', ' ']).to_string()
}

/// A field that is `None` when empty.
pub(crate) fn non_empty(text: &str) -> Option<String> {
    let text = clean(text).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// Unix milliseconds of an RFC 3339 UTC time as Subversion writes it
/// (`2026-12-01T18:00:00.123456Z`); `None` if it is not one.
pub(crate) fn rfc3339_utc_ms(text: &str) -> Option<i64> {
    let text = text.trim().strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis: i64 = format!("{fraction:0<3}")[..3].parse().ok()?;
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The text of the first `<name>…</name>` element in `xml`, unescaped; `None` if
/// there is none.
pub(crate) fn xml_element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(xml_unescape(&xml[start..end]))
}

/// Replaces XML's predefined entities and numeric character references.
fn xml_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(semi) = after.find(';').filter(|&s| s <= 10) else {
            out.push('&');
            rest = after;
            continue;
        };
        let entity = &after[..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Reads what [`store`] wrote; `None` if missing or malformed.
pub(crate) fn load(file: &Path) -> Option<RevisionInfo> {
    let text = fs::read_to_string(file).ok()?;
    let mut parts = text.splitn(3, '\0');
    let field = |p: Option<&str>| -> Option<Option<String>> {
        let p = p?;
        Some(p.strip_prefix('+').map(str::to_string))
    };
    let author = field(parts.next())?;
    let time = field(parts.next())?;
    let message = field(parts.next())?;
    let time_ms = match time {
        Some(t) => Some(t.parse().ok()?),
        None => None,
    };
    Some(RevisionInfo {
        author,
        time_ms,
        message,
    })
}

/// Remembers `info` in `file` (best effort: a temporary file renamed into place).
pub(crate) fn store(file: &Path, info: &RevisionInfo) {
    let field = |v: Option<&str>| v.map_or_else(|| "-".to_string(), |v| format!("+{v}"));
    let text = format!(
        "{}\0{}\0{}",
        field(info.author.as_deref()),
        field(info.time_ms.map(|t| t.to_string()).as_deref()),
        field(info.message.as_deref())
    );
    let _ = crate::memo::write_file(file, &text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_subversion_times() {
        assert_eq!(rfc3339_utc_ms("1970-01-01T00:00:00.000000Z"), Some(0));
        assert_eq!(
            rfc3339_utc_ms("2026-12-01T18:30:05.123456Z"),
            Some(1_796_149_805_123)
        );
        assert_eq!(
            rfc3339_utc_ms("2000-02-29T00:00:00Z"),
            Some(951_782_400_000)
        );
        assert_eq!(rfc3339_utc_ms("yesterday"), None);
        assert_eq!(rfc3339_utc_ms("2026-13-01T00:00:00Z"), None);
    }

    #[test]
    fn reads_xml_elements() {
        let xml = "<log><logentry revision=\"5\"><author>ann &amp; bob</author>\
                   <msg>a &lt;b&gt; &#233;&#x21;\nline 2</msg></logentry></log>";
        assert_eq!(xml_element(xml, "author").as_deref(), Some("ann & bob"));
        assert_eq!(xml_element(xml, "msg").as_deref(), Some("a <b> é!\nline 2"));
        assert_eq!(xml_element(xml, "date"), None);
        assert_eq!(xml_unescape("AT&T &bogus; &"), "AT&T &bogus; &");
    }

    #[test]
    fn remembers_infos() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("info/5");
        for info in [
            RevisionInfo {
                author: Some("ann".into()),
                time_ms: Some(1_700_000_000_000),
                message: Some("one\n\ntwo\0three".into()),
            },
            RevisionInfo::default(),
        ] {
            store(&file, &info);
            assert_eq!(load(&file), Some(info));
        }
        assert_eq!(load(&dir.path().join("nope")), None);
    }
}
