//! Giving up a training half-way: its caller went away, so nobody wants the model. A fit is
//! one long computation on a blocking thread; the training looks at its [`Cancellation`]
//! between fits (each candidate learner, each bootstrap replicate) and stops at the next one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::ModelError;

/// Shared between whoever may cancel a training and the training itself; never cancelled
/// unless told.
#[derive(Debug, Clone, Default)]
pub struct Cancellation(Arc<AtomicBool>);

impl Cancellation {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// [`ModelError::Cancelled`] once cancelled: `?` between fits.
    pub fn check(&self) -> Result<(), ModelError> {
        if self.is_cancelled() {
            Err(ModelError::Cancelled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_sees_the_cancellation() {
        let cancellation = Cancellation::default();
        let training = cancellation.clone();
        assert!(training.check().is_ok());
        cancellation.cancel();
        assert!(matches!(training.check(), Err(ModelError::Cancelled)));
    }
}
