//! `rescue-client recommend` and `rescue-client funnel`: the recovery decision for one
//! customer, and how the program's decisions turned out over a window, as text for people and
//! as JSON (`--json`) for scripts.

use std::fmt::Write as _;

use super::connection::Connection;
use serde_json::{Value, json};

use std::path::PathBuf;

use tokio_stream::wrappers::ReceiverStream;

use super::batch::{self, BatchCall, BatchFiles, BatchSummary, DEFAULT_IN_FLIGHT};
use super::columns::{enum_name, format_time, parse_time};
use super::format::Format;
use super::retry::call_error;
use super::summary::thousands;
use crate::proto::v1::{
    self as proto, program_client::ProgramClient, recommend_recovery_request::Trigger,
    scoring_client::ScoringClient,
};

/// `rescue-client recommend` options.
#[derive(Debug, Clone, clap::Args)]
pub struct RecommendArgs {
    /// A stored customer.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub customer_id: Option<String>,
    /// Recommend for every customer of this file instead (ids one per line, or a CSV file with
    /// a `customer_id` column; optionally gzip-compressed), through `RecommendRecoveries`.
    #[arg(long, requires = "out", conflicts_with_all = ["interaction", "survey"])]
    pub file: Option<PathBuf>,
    /// With --file: where to write the recommendations: .csv or .jsonl (with .gz to compress).
    #[arg(long, requires = "file")]
    pub out: Option<PathBuf>,
    /// With --file: the output's format [default: from its name].
    #[arg(long, value_enum, requires = "file")]
    pub format: Option<Format>,
    /// With --file: requests sent ahead of the answers.
    #[arg(long, default_value_t = DEFAULT_IN_FLIGHT, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub in_flight: u64,
    /// The failed interaction that flagged the customer [default: the latest qualifying one].
    #[arg(long, conflicts_with = "survey")]
    pub interaction: Option<String>,
    /// The survey answer that flagged the customer.
    #[arg(long)]
    pub survey: Option<String>,
    /// The issue's tag, in the serving program's words, e.g. billing [default: the trigger's].
    #[arg(long)]
    pub tag: Option<String>,
    /// Decide as of this time (RFC 3339) [default: now].
    #[arg(long, value_parser = parse_time)]
    pub as_of: Option<prost_types::Timestamp>,
    /// The 1–7 recovery rating the acting team usually gets [default: the program's mix].
    #[arg(long)]
    pub expected_quality: Option<u32>,
    /// Answer without storing a decision, for analysis (the funnel never counts it).
    #[arg(long)]
    pub what_if: bool,
}

/// `RecommendRecoveries` for stored customers, each after their latest qualifying trigger.
struct RecommendCall {
    template: proto::RecommendRecoveryRequest,
}

const RECOMMENDATION_CSV_HEADER: [&str; 14] = [
    "customer_id",
    "eligible",
    "invest",
    "holdout",
    "action",
    "cost",
    "expected_uplift",
    "net_value",
    "uplift_source",
    "approval",
    "respond_by",
    "decision_id",
    "reasons",
    "error",
];

impl BatchCall for RecommendCall {
    type Request = proto::RecommendRecoveriesRequest;
    type Response = proto::RecommendRecoveriesResponse;
    const RPC: &'static str = "RecommendRecoveries";
    const DONE: &'static str = "recommended";
    const CSV_HEADER: &'static [&'static str] = &RECOMMENDATION_CSV_HEADER;

    fn request(&self, id: String) -> Self::Request {
        proto::RecommendRecoveriesRequest {
            request_id: id.clone(),
            request: Some(proto::RecommendRecoveryRequest {
                customer_id: id,
                ..self.template.clone()
            }),
        }
    }

    async fn call(
        channel: Connection,
        requests: ReceiverStream<Self::Request>,
    ) -> Result<tonic::Streaming<Self::Response>, tonic::Status> {
        Ok(ScoringClient::new(channel)
            .recommend_recoveries(requests)
            .await?
            .into_inner())
    }

    fn csv_row(response: Self::Response) -> (Vec<String>, bool) {
        use proto::recommend_recoveries_response::Result as Answer;
        let mut row = vec![String::new(); RECOMMENDATION_CSV_HEADER.len()];
        row[0] = response.request_id;
        match response.result {
            Some(Answer::Recommendation(r)) => {
                row[1] = r.eligible.to_string();
                row[2] = r.invest.to_string();
                row[3] = r.holdout.to_string();
                if let Some(best) = &r.recommended {
                    row[4] = action(best);
                    row[5] = format!("{:.2}", best.cost);
                    row[6] = format!("{:.4}", best.expected_uplift);
                    row[7] = format!("{:.2}", best.net_value);
                    row[8] = uplift_source(best.uplift_source);
                    row[9] = approval(r.approval);
                }
                row[10] = r.respond_by.map(format_time).unwrap_or_default();
                row[11] = r.decision_id;
                row[12] = r.reasons.join("; ");
                (row, true)
            }
            Some(Answer::Error(error)) => {
                row[13] = batch::error_text(&error);
                (row, false)
            }
            None => {
                row[13] = "the server sent no result".into();
                (row, false)
            }
        }
    }

    fn json_row(response: Self::Response) -> (serde_json::Value, bool) {
        use proto::recommend_recoveries_response::Result as Answer;
        match response.result {
            Some(Answer::Recommendation(r)) => (recommendation_json(&r), true),
            Some(Answer::Error(error)) => {
                (batch::error_json(&response.request_id, Some(&error)), false)
            }
            None => (batch::error_json(&response.request_id, None), false),
        }
    }
}

/// Recommends for every customer of `args.file` and writes the answers in the file's order.
pub async fn recommend_file(
    channel: Connection,
    args: &RecommendArgs,
) -> anyhow::Result<BatchSummary> {
    let (Some(ids), Some(out)) = (&args.file, &args.out) else {
        anyhow::bail!("--file needs --out");
    };
    let template = proto::RecommendRecoveryRequest {
        customer_id: String::new(),
        trigger: None,
        tag: 0,
        tag_name: args.tag.clone().unwrap_or_default(),
        as_of: args.as_of,
        expected_quality: args.expected_quality,
        what_if: args.what_if,
    };
    let files = BatchFiles {
        ids,
        out,
        format: args.format,
        in_flight: args.in_flight,
    };
    batch::run(channel, RecommendCall { template }, files).await
}

/// `rescue-client funnel` options.
#[derive(Debug, Clone, clap::Args)]
pub struct FunnelArgs {
    /// Decisions made at or after this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub from: prost_types::Timestamp,
    /// Decisions made before this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    pub to: prost_types::Timestamp,
}

/// Asks for a recovery decision and returns it as text or JSON.
pub async fn recommend(
    channel: Connection,
    args: &RecommendArgs,
    json: bool,
) -> anyhow::Result<String> {
    let trigger = match (&args.interaction, &args.survey) {
        (Some(id), _) => Some(Trigger::InteractionId(id.clone())),
        (None, Some(id)) => Some(Trigger::SurveyId(id.clone())),
        (None, None) => None,
    };
    let request = proto::RecommendRecoveryRequest {
        customer_id: args.customer_id.clone().unwrap_or_default(),
        trigger,
        tag: 0,
        tag_name: args.tag.clone().unwrap_or_default(),
        as_of: args.as_of,
        expected_quality: args.expected_quality,
        what_if: args.what_if,
    };
    let recommendation = ScoringClient::new(channel)
        .recommend_recovery(request)
        .await
        .map_err(|status| call_error("RecommendRecovery", &status))?
        .into_inner();
    Ok(if json {
        recommendation_json(&recommendation).to_string()
    } else {
        recommendation_text(&recommendation)
    })
}

/// Reads the recovery funnel of a window and returns it as text or JSON.
pub async fn funnel(channel: Connection, args: &FunnelArgs, json: bool) -> anyhow::Result<String> {
    let funnel = ProgramClient::new(channel)
        .recovery_funnel(proto::RecoveryFunnelRequest {
            from: Some(args.from),
            to: Some(args.to),
        })
        .await
        .map_err(|status| call_error("RecoveryFunnel", &status))?
        .into_inner();
    Ok(if json {
        funnel_json(&funnel).to_string()
    } else {
        funnel_text(&funnel)
    })
}

/// The recommendation's tag by name (a server before names had the enum only).
fn tag(r: &proto::RecoveryRecommendation) -> String {
    if !r.tag_name.is_empty() {
        return r.tag_name.clone();
    }
    proto::IssueTag::try_from(r.tag)
        .ok()
        .filter(|tag| *tag != proto::IssueTag::Unspecified)
        .map(|tag| enum_name(tag.as_str_name(), "ISSUE_TAG_"))
        .unwrap_or_default()
}

/// The option's action by name (a server before names had the enum only).
fn action(option: &proto::RecoveryOption) -> String {
    if !option.action_name.is_empty() {
        return option.action_name.clone();
    }
    proto::RecoveryAction::try_from(option.action)
        .map(|action| enum_name(action.as_str_name(), "RECOVERY_ACTION_"))
        .unwrap_or_default()
}

fn approval(raw: i32) -> String {
    proto::ApprovalLevel::try_from(raw)
        .map(|level| enum_name(level.as_str_name(), "APPROVAL_LEVEL_"))
        .unwrap_or_default()
}

fn uplift_source(raw: i32) -> String {
    proto::UpliftSource::try_from(raw)
        .map(|source| enum_name(source.as_str_name(), "UPLIFT_SOURCE_"))
        .unwrap_or_default()
}

fn option_json(option: &proto::RecoveryOption) -> Value {
    json!({
        "action": action(option),
        "cost": option.cost,
        "retention_if_recovered": option.retention_if_recovered,
        "retention_if_not": option.retention_if_not,
        "expected_uplift": option.expected_uplift,
        "expected_value": option.expected_value,
        "net_value": option.net_value,
        "approval": approval(option.approval),
        "uplift_source": uplift_source(option.uplift_source),
        "uplift_low": option.uplift_low,
        "uplift_high": option.uplift_high,
    })
}

fn recommendation_json(r: &proto::RecoveryRecommendation) -> Value {
    json!({
        "decision_id": r.decision_id,
        "customer_id": r.customer_id,
        "as_of": r.as_of.map(format_time),
        "eligible": r.eligible,
        "invest": r.invest,
        "holdout": r.holdout,
        "reasons": r.reasons,
        "trigger_interaction_id": r.trigger_interaction_id,
        "trigger_survey_id": r.trigger_survey_id,
        "trigger_at": r.trigger_at.map(format_time),
        "tag": tag(r),
        "recommended": r.recommended.as_ref().map(option_json),
        "options": r.options.iter().map(option_json).collect::<Vec<_>>(),
        "respond_by": r.respond_by.map(format_time),
        "approval": approval(r.approval),
        "checklist": r.checklist.iter().map(|item| json!({
            "element": item.element,
            "instruction": item.instruction,
        })).collect::<Vec<_>>(),
        "churn_probability": r.churn_probability,
        "health_score": r.health_score,
        "customer_value": r.customer_value,
        "health_model_version": r.health_model_version,
        "uplift_source": uplift_source(r.uplift_source),
        "uplift_model_version": r.uplift_model_version,
        "program_version": r.program_version,
    })
}

fn recommendation_text(r: &proto::RecoveryRecommendation) -> String {
    let mut text = String::new();
    let verdict = if r.invest {
        "invest"
    } else if r.holdout {
        "do not invest (holdout group)"
    } else if r.eligible {
        "do not invest"
    } else {
        "not eligible"
    };
    let _ = writeln!(
        text,
        "customer     {}: health {:.1}, churn {:.1}% within 90 days, value {:.2}",
        r.customer_id,
        r.health_score,
        r.churn_probability * 100.0,
        r.customer_value
    );
    let _ = writeln!(text, "decision     {verdict}");
    if let Some(best) = &r.recommended {
        let _ = writeln!(
            text,
            "recommended  {} for {:.2}, net value {:.2}, approval by {}",
            action(best),
            best.cost,
            best.net_value,
            approval(r.approval)
        );
    }
    if let Some(by) = r.respond_by {
        let _ = writeln!(text, "respond by   {}", format_time(by));
    }
    let trigger = match (
        r.trigger_interaction_id.as_str(),
        r.trigger_survey_id.as_str(),
    ) {
        ("", "") => "none found".to_owned(),
        (interaction, "") => format!("interaction {interaction}"),
        (_, survey) => format!("survey {survey}"),
    };
    let at = r
        .trigger_at
        .map(|at| format!(" at {}", format_time(at)))
        .unwrap_or_default();
    let _ = writeln!(text, "trigger      {trigger}{at}, tag {}", tag(r));
    let _ = writeln!(text, "reasons");
    for reason in &r.reasons {
        let _ = writeln!(text, "  - {reason}");
    }
    if !r.options.is_empty() {
        let _ = writeln!(
            text,
            "options      {:<16} {:>9} {:>8} {:>15} {:>10} {:>10}  {:<9} uplift from",
            "action", "cost", "uplift", "90% interval", "value", "net", "approval"
        );
        for option in &r.options {
            let interval = match (option.uplift_low, option.uplift_high) {
                (Some(low), Some(high)) => format!("{low:.3}–{high:.3}"),
                _ => "-".to_owned(),
            };
            let _ = writeln!(
                text,
                "             {:<16} {:>9.2} {:>8.3} {interval:>15} {:>10.2} {:>10.2}  {:<9} {}",
                action(option),
                option.cost,
                option.expected_uplift,
                option.expected_value,
                option.net_value,
                approval(option.approval),
                uplift_source(option.uplift_source)
            );
        }
    }
    if !r.checklist.is_empty() {
        let _ = writeln!(text, "checklist");
        for item in &r.checklist {
            let _ = writeln!(text, "  {:<15} {}", item.element, item.instruction);
        }
    }
    let decision = if r.decision_id.is_empty() {
        "not stored (what-if)"
    } else {
        r.decision_id.as_str()
    };
    let _ = write!(
        text,
        "decision id  {decision} (health model {}, uplift {}, program {})",
        r.health_model_version, r.uplift_model_version, r.program_version
    );
    text
}

fn counts_json(counts: Option<&proto::FunnelCounts>) -> Value {
    let Some(c) = counts else {
        return Value::Null;
    };
    json!({
        "decided": c.decided,
        "eligible": c.eligible,
        "invested": c.invested,
        "attempted": c.attempted,
        "recovered": c.recovered,
        "retained": c.retained,
        "holdout": c.holdout,
        "holdout_would_invest": c.holdout_would_invest,
        "mean_spend_change_pct": c.mean_spend_change_pct,
        "cost": c.cost,
        "invested_retention": c.invested_retention,
        "holdout_retention": c.holdout_retention,
        "measured_uplift": c.measured_uplift,
        "revenue_kept": c.revenue_kept,
        "roi": c.roi,
    })
}

fn groups_json(groups: &[proto::FunnelGroup]) -> Value {
    Value::Array(
        groups
            .iter()
            .map(|g| json!({"name": g.name, "counts": counts_json(g.counts.as_ref())}))
            .collect(),
    )
}

fn funnel_json(f: &proto::RecoveryFunnelResponse) -> Value {
    json!({
        "from": f.from.map(format_time),
        "to": f.to.map(format_time),
        "total": counts_json(f.total.as_ref()),
        "by_segment": groups_json(&f.by_segment),
        "by_tag": groups_json(&f.by_tag),
        "recovered_at_or_above": f.recovered_at_or_above,
    })
}

fn funnel_row(name: &str, counts: Option<&proto::FunnelCounts>) -> String {
    let c = counts.cloned().unwrap_or_default();
    let percent =
        |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0));
    format!(
        "{name:<18} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>11} {:>8} {:>7}",
        thousands(c.decided),
        thousands(c.eligible),
        thousands(c.invested),
        thousands(c.attempted),
        thousands(c.recovered),
        thousands(c.retained),
        thousands(c.holdout),
        format!("{:.0}", c.cost),
        percent(c.measured_uplift),
        c.roi
            .map_or_else(|| "-".to_owned(), |roi| format!("{roi:.2}")),
    )
}

fn funnel_text(f: &proto::RecoveryFunnelResponse) -> String {
    let mut text = format!(
        "recovery funnel from {} to {} (recovered: re-survey at or above {})\n",
        f.from.map(format_time).unwrap_or_default(),
        f.to.map(format_time).unwrap_or_default(),
        f.recovered_at_or_above
    );
    let _ = writeln!(
        text,
        "{:<18} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>11} {:>8} {:>7}",
        "",
        "decided",
        "eligible",
        "invested",
        "attempted",
        "recovered",
        "retained",
        "holdout",
        "cost",
        "uplift",
        "ROI"
    );
    let _ = write!(text, "{}", funnel_row("total", f.total.as_ref()));
    for (title, groups) in [("segment", &f.by_segment), ("tag", &f.by_tag)] {
        for group in groups {
            let name = format!("{title} {}", group.name);
            let _ = write!(text, "\n{}", funnel_row(&name, group.counts.as_ref()));
        }
    }
    text
}
