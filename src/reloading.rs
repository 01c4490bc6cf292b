//! What the server reads again while it runs — the recovery program, the credentials — in
//! one shape: a value swapped whole (a request keeps the version it took), and a checker that
//! reloads it every interval and logs a refused version once per change, keeping the one
//! serving.

use std::fmt::Display;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// A value replaced whole by a reload while readers hold the version they took.
#[derive(Debug)]
pub struct Swappable<T> {
    current: RwLock<Arc<T>>,
}

impl<T> Swappable<T> {
    pub fn new(value: T) -> Self {
        Self {
            current: RwLock::new(Arc::new(value)),
        }
    }

    /// The version serving now.
    pub fn current(&self) -> Arc<T> {
        match self.current.read() {
            Ok(current) => Arc::clone(&current),
            // A writer panicked mid-swap: the slot still holds one whole version.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn replace(&self, value: Arc<T>) {
        match self.current.write() {
            Ok(mut slot) => *slot = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

/// Runs `reload` every `interval` until dropped. A refusal is logged once until it changes
/// (a bad file stays bad between checks); `what` names the file in the log.
pub async fn reload_every<E: Display>(
    interval: Duration,
    what: &'static str,
    mut reload: impl FnMut() -> Result<(), E>,
) {
    let mut last_refused: Option<String> = None;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match reload() {
            Ok(()) => last_refused = None,
            Err(error) => {
                let text = error.to_string();
                if last_refused.as_deref() != Some(text.as_str()) {
                    tracing::error!(error = %text, file = what, "file refused; the version serving stays");
                    last_refused = Some(text);
                }
            }
        }
    }
}
