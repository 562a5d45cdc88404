//! One app's failure stays that app's: a panic while reconciling or rendering it is
//! turned into an error message for that app's operation, never a dead task or daemon.

use std::any::Any;

/// The text of a panic's payload (`panic!("...")` gives a `&str` or a `String`).
pub fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// The error of a blocking task that did not finish: what was being done, and the
/// panic's message when it panicked.
pub fn join_error(doing: &str, e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => format!(
            "{doing} failed unexpectedly (a bug in Mooring; please report it with this message): {}",
            message(&*payload)
        ),
        Err(e) => format!("{doing} was interrupted: {e}"),
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_panicking_task_becomes_a_message() {
        let e = tokio::task::spawn_blocking(|| -> u32 { panic!("boom {}", 7) })
            .await
            .unwrap_err();
        let m = super::join_error("rendering app blog", e);
        assert_eq!(
            m,
            "rendering app blog failed unexpectedly (a bug in Mooring; please report it with this message): boom 7"
        );
        let e = tokio::task::spawn_blocking(|| -> u32 { std::panic::panic_any(3u8) })
            .await
            .unwrap_err();
        assert!(super::join_error("x", e).ends_with("a panic without a message"));
    }
}
