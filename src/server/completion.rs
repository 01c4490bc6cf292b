//! Completes, in the background, the serving state of customers whose rows the store does
//! not trust yet — customers stored before serving states were kept, or under an older
//! encoding — so a database upgraded in place reaches one-read scoring without downtime.
//! Until a customer's row is complete, their reads go to the tables and give the same answer.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::CustomerId;
use crate::store::Store;

/// Customers rebuilt per store call: small enough that a pass never holds the database long.
const PAGE: usize = 200;
/// How long to wait before another pass, after a database error or when some customers
/// were written to while being rebuilt.
const RETRY: Duration = Duration::from_secs(1);

/// Passes over every customer whose serving state is not complete until none is left.
pub(super) async fn complete_serving_states(store: Arc<dyn Store>) {
    let mut completed = 0usize;
    loop {
        let mut after: Option<CustomerId> = None;
        let mut left = 0usize;
        loop {
            match store.complete_serving_states(after.as_ref(), PAGE).await {
                Ok(page) if page.examined == 0 => break,
                Ok(page) => {
                    completed += page.completed;
                    left += page.examined - page.completed;
                    after = page.last;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot complete serving states yet; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
        if left == 0 {
            if completed > 0 {
                tracing::info!(
                    customers = completed,
                    "completed serving states from the tables"
                );
            }
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}
