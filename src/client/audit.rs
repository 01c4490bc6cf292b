//! `rescue-client audit`: the audit trail from a terminal, newest first, as text for people
//! and as JSON (`--json`) for scripts.

use std::fmt::Write as _;

use super::columns::format_time;
use super::connection::Connection;
use super::retry::call_error;
use crate::proto::v1::{self as proto, audit_client::AuditClient};

/// The most events one answer of the server holds.
const PAGE: u32 = 1_000;

/// `rescue-client audit` options.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Only this caller's calls, e.g. key:ops or jwt:alice.
    #[arg(long)]
    pub caller: Option<String>,
    /// Only calls of this RPC, e.g. PromoteModel.
    #[arg(long)]
    pub method: Option<String>,
    /// At most this many events, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

/// Reads up to `args.limit` events, page by page, and renders them.
pub async fn audit(channel: Connection, args: &AuditArgs, json: bool) -> anyhow::Result<String> {
    anyhow::ensure!(args.limit > 0, "--limit must be at least 1");
    let mut client = AuditClient::new(channel);
    let mut events = Vec::new();
    let mut page_token = String::new();
    while events.len() < args.limit as usize {
        let wanted = (args.limit - events.len() as u32).min(PAGE);
        let page = client
            .list_audit_events(proto::ListAuditEventsRequest {
                caller: args.caller.clone().unwrap_or_default(),
                method: args.method.clone().unwrap_or_default(),
                page_size: wanted,
                page_token: page_token.clone(),
            })
            .await
            .map_err(|status| call_error("ListAuditEvents", &status))?
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(if json {
        serde_json::to_string_pretty(&events.iter().map(event_json).collect::<Vec<_>>())?
    } else {
        text(&events)
    })
}

fn event_json(event: &proto::AuditEvent) -> serde_json::Value {
    serde_json::json!({
        "event_id": event.event_id,
        "at": event.at.map(format_time),
        "caller": event.caller,
        "method": event.method,
        "target": event.target,
        "changed": event.changed,
        "code": event.code,
        "message": event.message,
    })
}

fn text(events: &[proto::AuditEvent]) -> String {
    if events.is_empty() {
        return "no audited calls".into();
    }
    let mut text = String::new();
    for event in events {
        let at = event.at.map(format_time).unwrap_or_default();
        let _ = write!(
            text,
            "{at}  {:<18} {:<22} {:<16} {}",
            event.caller, event.method, event.code, event.target
        );
        if !event.changed.is_empty() {
            let _ = write!(text, " -> {}", event.changed);
        }
        if !event.message.is_empty() {
            let _ = write!(text, " ({})", event.message);
        }
        text.push('\n');
    }
    text.trim_end().to_owned()
}
