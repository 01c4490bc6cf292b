//! The model of one kind serving in this process, swapped atomically on promotion: a request
//! takes the current model once and uses it to the end, so no answer mixes two versions.

use std::sync::{Arc, RwLock};

#[derive(Debug)]
pub struct ServingSlot<M> {
    serving: RwLock<Option<Arc<M>>>,
    /// Held while the registry reads which version is active and installs it, or activates
    /// one: a replica re-reading the registry cannot install what it read after an
    /// activation made here replaced it.
    activation: tokio::sync::Mutex<()>,
}

impl<M> Default for ServingSlot<M> {
    fn default() -> Self {
        Self {
            serving: RwLock::new(None),
            activation: tokio::sync::Mutex::new(()),
        }
    }
}

impl<M> ServingSlot<M> {
    pub fn current(&self) -> Option<Arc<M>> {
        // A poisoned lock only means a writer panicked between two plain assignments; the
        // value inside is still a whole `Option<Arc<_>>`.
        self.serving
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn replace(&self, model: Arc<M>) {
        *self
            .serving
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(model);
    }

    /// Taken by the registry around reading or changing the active version and installing it.
    pub(crate) fn activation(&self) -> &tokio::sync::Mutex<()> {
        &self.activation
    }
}
