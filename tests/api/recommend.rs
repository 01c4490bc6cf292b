//! `RecommendRecovery`: each policy rule with its answer and reason, the errors at the edge,
//! and the program configuration reloaded without a restart (a bad one keeps the old).

use std::path::PathBuf;

use rescue::decision::DEFAULT_PROGRAM_TOML;
use rescue::proto::v1::{self as proto, recommend_recovery_request::Trigger, record::Kind};
use tonic::Code;

use crate::fixtures::{at, customer_version, interaction, survey};
use crate::helpers::{TestApp, TestDatabase, on_every_backend, spawn_app_with};

/// A program file in its own directory, removed when dropped.
pub struct ProgramFile {
    pub path: PathBuf,
}

impl ProgramFile {
    /// The built-in program with no holdout, billing allowing only a refund of half a month's
    /// value, and a frontline authority of 100 — then `edit` applied.
    pub fn new(edit: impl FnOnce(String) -> String) -> Self {
        let directory =
            std::env::temp_dir().join(format!("rescue-program-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&directory).expect("program directory");
        let path = directory.join("program.toml");
        let file = Self { path };
        file.write(&edit(base_program()));
        file
    }

    pub fn write(&self, text: &str) {
        // Written aside and renamed, so a watcher never reads half a file.
        let temporary = self.path.with_extension("tmp");
        std::fs::write(&temporary, text).expect("write the program");
        std::fs::rename(&temporary, &self.path).expect("replace the program");
    }
}

impl Drop for ProgramFile {
    fn drop(&mut self) {
        if let Some(directory) = self.path.parent() {
            let _ = std::fs::remove_dir_all(directory);
        }
    }
}

pub fn base_program() -> String {
    DEFAULT_PROGRAM_TOML
        .replace("fraction = 0.05", "fraction = 0.0")
        .replace(
            "billing = [\n    { action = \"refund\", cost = 0.0, share_of_monthly_value = 0.5 },\n    { action = \"fee_waiver\", cost = 35.0 },\n]",
            "billing = [\n    { action = \"refund\", cost = 0.0, share_of_monthly_value = 0.5 },\n]",
        )
}

pub async fn serve_program(database: &TestDatabase, program: &ProgramFile) -> TestApp {
    let path = program.path.clone();
    let app = spawn_app_with(database, move |settings| {
        settings.program = Some(path);
        settings.program_reload = std::time::Duration::from_secs(1);
    })
    .await;
    // Risky on purpose: the rules below must not hinge on a low churn probability.
    app.install_model("health-test-1", 0.5).await;
    app
}

/// A customer worth `annual_value` with a failed billing interaction (`{id}-i1`, unresolved)
/// and a CSAT 2/5 survey about it (`{id}-s1`), a few hours after the base time.
pub async fn failed_customer(app: &TestApp, id: &str, annual_value: f64) {
    let mut answer = survey(&format!("{id}-s1"), id);
    if let Some(Kind::Survey(s)) = answer.kind.as_mut() {
        s.interaction_id = format!("{id}-i1");
    }
    let verdict = app
        .ingest(
            vec![
                customer_version(id, 0, annual_value),
                interaction(&format!("{id}-i1"), id),
                answer,
            ],
            10,
        )
        .await;
    assert_eq!(verdict.rejected, 0, "{verdict:?}");
}

pub fn request(customer: &str, trigger: Option<Trigger>) -> proto::RecommendRecoveryRequest {
    proto::RecommendRecoveryRequest {
        customer_id: customer.into(),
        trigger,
        tag: 0,
        tag_name: String::new(),
        // A day after the base time: the failure is 22 hours old.
        as_of: at(86_400),
        expected_quality: None,
        what_if: false,
    }
}

pub async fn recommend(
    app: &TestApp,
    request: proto::RecommendRecoveryRequest,
) -> Result<proto::RecoveryRecommendation, tonic::Status> {
    app.scoring_client()
        .await
        .recommend_recovery(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn current_program(
    client: &mut proto::program_client::ProgramClient<tonic::transport::Channel>,
) -> proto::ProgramInfo {
    client
        .get_program(proto::GetProgramRequest {})
        .await
        .expect("the serving program")
        .into_inner()
}

fn interaction_trigger(customer: &str) -> Option<Trigger> {
    Some(Trigger::InteractionId(format!("{customer}-i1")))
}

fn reasons(answer: &proto::RecoveryRecommendation) -> String {
    answer.reasons.join(" | ")
}

fn assert_reason(answer: &proto::RecoveryRecommendation, text: &str) {
    let reasons = reasons(answer);
    assert!(reasons.contains(text), "no reason says {text:?}: {reasons}");
}

/// Every decision the store holds.
async fn stored_decisions(app: &TestApp) -> Vec<rescue::decision::funnel::FunnelDecision> {
    app.store
        .funnel_input(
            rescue::domain::Timestamp::from_unix_micros(0),
            rescue::domain::Timestamp::now(),
        )
        .await
        .expect("read decisions")
        .decisions
}

fn assert_values_add_up(answer: &proto::RecoveryRecommendation) {
    for option in &answer.options {
        let uplift = option.retention_if_recovered - option.retention_if_not;
        assert!((option.expected_uplift - uplift).abs() < 1e-12);
        assert!((option.expected_value - answer.customer_value * uplift).abs() < 1e-6);
        assert!((option.net_value - (option.expected_value - option.cost)).abs() < 1e-6);
    }
}

async fn an_eligible_customer_worth_recovering_gets_a_frontline_recovery(database: TestDatabase) {
    let program = ProgramFile::new(|p| p);
    let app = serve_program(&database, &program).await;
    failed_customer(&app, "c-1", 1_200.0).await;
    let answer = recommend(&app, request("c-1", interaction_trigger("c-1")))
        .await
        .expect("a recommendation");
    assert!(
        answer.eligible && answer.invest && !answer.holdout,
        "{}",
        reasons(&answer)
    );
    assert!(answer.churn_probability > 0.3, "{answer:?}");
    let best = answer.recommended.as_ref().expect("an action");
    assert_eq!(best.action(), proto::RecoveryAction::Refund);
    // Half a month of 1,200 a year.
    assert_eq!(best.cost, 50.0);
    assert!(best.net_value > 0.0);
    assert_eq!(answer.approval(), proto::ApprovalLevel::Frontline);
    assert_eq!(answer.uplift_source(), proto::UpliftSource::Prior);
    assert_eq!(answer.uplift_model_version, "prior-domain-v1");
    assert_eq!(answer.tag(), proto::IssueTag::Billing);
    assert_eq!(answer.trigger_interaction_id, "c-1-i1");
    assert_reason(&answer, "was a billing service failure");
    assert_reason(&answer, "within the frontline authority of 100.00");
    // The failure is 22 hours old: 24 h halved 22/24 of the way, from as_of.
    let respond_in =
        answer.respond_by.as_ref().expect("respond_by").seconds - at(86_400).expect("t").seconds;
    let expected = 24.0 * 3_600.0 * 0.5f64.powf(22.0 / 24.0);
    assert!(
        (respond_in as f64 - expected).abs() <= 1.0,
        "{respond_in} s vs {expected}"
    );
    let elements: Vec<&str> = answer
        .checklist
        .iter()
        .map(|c| c.element.as_str())
        .collect();
    assert_eq!(
        elements,
        [
            "communication",
            "accountability",
            "responsiveness",
            "empathy",
            "solution"
        ]
    );
    assert!(
        answer.checklist[4]
            .instruction
            .contains("refund (cost 50.00"),
        "{:?}",
        answer.checklist
    );
    assert!(
        answer.checklist[3].instruction.contains("CSAT 2/5"),
        "{:?}",
        answer.checklist
    );
    assert_values_add_up(&answer);
    let stored = stored_decisions(&app).await;
    assert_eq!(stored.len(), 1, "every decision is stored");
    assert!(stored[0].invest);
}

async fn a_cost_above_the_frontline_authority_needs_a_manager(database: TestDatabase) {
    let program = ProgramFile::new(|p| p);
    let app = serve_program(&database, &program).await;
    failed_customer(&app, "c-big", 120_000.0).await;
    let answer = recommend(&app, request("c-big", interaction_trigger("c-big")))
        .await
        .expect("a recommendation");
    let best = answer.recommended.as_ref().expect("an action");
    assert_eq!(best.cost, 5_000.0);
    assert!(answer.invest, "{}", reasons(&answer));
    assert_eq!(answer.approval(), proto::ApprovalLevel::Manager);
    assert_eq!(best.approval(), proto::ApprovalLevel::Manager);
    assert_reason(
        &answer,
        "cost 5000.00 is above the frontline authority of 100.00: a manager approves",
    );
    // High value tightens the deadline: half the aged target.
    let respond_in =
        answer.respond_by.as_ref().expect("respond_by").seconds - at(86_400).expect("t").seconds;
    let expected = 12.0 * 3_600.0 * 0.5f64.powf(22.0 / 24.0);
    assert!(
        (respond_in as f64 - expected).abs() <= 1.0,
        "{respond_in} s vs {expected}"
    );
}

async fn recovery_that_costs_more_than_it_is_worth_is_not_recommended(database: TestDatabase) {
    // A fixed cost of 500 on a customer worth 240 a year can never pay.
    let program = ProgramFile::new(|p| {
        p.replace(
            "{ action = \"refund\", cost = 0.0, share_of_monthly_value = 0.5 },\n]",
            "{ action = \"refund\", cost = 500.0 },\n]",
        )
    });
    let app = serve_program(&database, &program).await;
    failed_customer(&app, "c-small", 240.0).await;
    let answer = recommend(&app, request("c-small", interaction_trigger("c-small")))
        .await
        .expect("a recommendation");
    assert!(
        answer.eligible && !answer.invest && !answer.holdout,
        "{answer:?}"
    );
    let best = answer.recommended.as_ref().expect("the action, valued");
    assert!(best.net_value < 0.0);
    assert_reason(&answer, "recovery does not pay here");
    assert_values_add_up(&answer);
}

async fn an_interaction_that_did_not_fail_is_not_eligible(database: TestDatabase) {
    let program = ProgramFile::new(|p| p);
    let app = serve_program(&database, &program).await;
    let mut fine = interaction("c-ok-i1", "c-ok");
    if let Some(Kind::Interaction(i)) = fine.kind.as_mut() {
        i.failure = false;
        i.resolution = proto::Resolution::Resolved.into();
    }
    app.ingest(vec![customer_version("c-ok", 0, 5_000.0), fine], 10)
        .await;
    let answer = recommend(&app, request("c-ok", interaction_trigger("c-ok")))
        .await
        .expect("a recommendation");
    assert!(!answer.eligible && !answer.invest, "{answer:?}");
    assert_reason(&answer, "was not a service failure");
    assert!(answer.respond_by.is_none() && answer.checklist.is_empty());

    // Without a trigger and with nothing qualifying in the look-back window.
    let answer = recommend(&app, request("c-ok", None))
        .await
        .expect("a recommendation");
    assert!(!answer.eligible, "{answer:?}");
    assert_reason(
        &answer,
        "no qualifying failure or survey answer in the 14 days",
    );
}

async fn a_low_survey_answer_is_found_without_a_named_trigger(database: TestDatabase) {
    let program = ProgramFile::new(|p| p.replace("failure = true", "failure = false"));
    let app = serve_program(&database, &program).await;
    failed_customer(&app, "c-2", 1_200.0).await;
    let answer = recommend(&app, request("c-2", None))
        .await
        .expect("a recommendation");
    assert!(answer.eligible, "{}", reasons(&answer));
    assert_eq!(answer.trigger_survey_id, "c-2-s1");
    // The survey's tag is that of the interaction it is about.
    assert_eq!(answer.tag(), proto::IssueTag::Billing);
    assert_reason(&answer, "scored CSAT 2/5, at or under the program's 2");
}

async fn customers_in_the_holdout_group_get_no_recovery(database: TestDatabase) {
    let program = ProgramFile::new(|p| p.replace("fraction = 0.0", "fraction = 1.0"));
    let app = serve_program(&database, &program).await;
    failed_customer(&app, "c-3", 1_200.0).await;
    let answer = recommend(&app, request("c-3", interaction_trigger("c-3")))
        .await
        .expect("a recommendation");
    assert!(
        answer.eligible && answer.holdout && !answer.invest,
        "{answer:?}"
    );
    assert_reason(&answer, "in the holdout group");
    let stored = stored_decisions(&app).await;
    assert!(stored[0].would_invest && !stored[0].invest);
}

async fn bad_requests_get_clear_errors(database: TestDatabase) {
    let program = ProgramFile::new(|p| p);
    let app = serve_program(&database, &program).await;
    failed_customer(&app, "c-a", 1_200.0).await;
    failed_customer(&app, "c-b", 1_200.0).await;

    let unknown = recommend(&app, request("c-nobody", None))
        .await
        .expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    let mut bad_tag = request("c-a", None);
    bad_tag.tag = 99;
    let error = recommend(&app, bad_tag).await.expect_err("unknown tag");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().contains("tag: unknown tag 99"),
        "{}",
        error.message()
    );

    let theirs = recommend(&app, request("c-a", interaction_trigger("c-b")))
        .await
        .expect_err("another customer's trigger");
    assert_eq!(theirs.code(), Code::InvalidArgument);
    assert!(
        theirs
            .message()
            .contains("interaction_id: interaction \"c-b-i1\" belongs to another customer"),
        "{}",
        theirs.message()
    );

    let missing = recommend(
        &app,
        request("c-a", Some(Trigger::SurveyId("s-none".into()))),
    )
    .await
    .expect_err("unknown trigger");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");

    let mut early = request("c-a", interaction_trigger("c-a"));
    early.as_of = at(60);
    let error = recommend(&app, early)
        .await
        .expect_err("trigger after as_of");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().contains("not before the decision's as_of"),
        "{}",
        error.message()
    );

    let mut quality = request("c-a", None);
    quality.expected_quality = Some(9);
    let error = recommend(&app, quality)
        .await
        .expect_err("quality out of range");
    assert!(
        error
            .message()
            .contains("expected_quality: must be from 1 to 7"),
        "{}",
        error.message()
    );

    let nothing_stored = stored_decisions(&app).await;
    assert!(
        nothing_stored.is_empty(),
        "a refused request stores no decision"
    );
}

async fn a_bad_program_reload_keeps_the_previous_program_serving(database: TestDatabase) {
    let program = ProgramFile::new(|p| p);
    let app = serve_program(&database, &program).await;
    failed_customer(&app, "c-r", 1_200.0).await;
    let mut client = app.program_client().await;
    let before = current_program(&mut client).await;
    assert_eq!(before.path, program.path.display().to_string());

    program.write(
        &base_program()
            .replace("fraction = 0.0", "fraction = 2.5")
            .replace("frontline_limit", "frontline_limt"),
    );
    let refused = client
        .reload_program(proto::ReloadProgramRequest {})
        .await
        .expect_err("invalid program");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("frontline_limt"),
        "{}",
        refused.message()
    );
    // The watcher sees the same bad file; the old program keeps serving.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let still = current_program(&mut client).await;
    assert_eq!(still.version, before.version);
    let answer = recommend(&app, request("c-r", interaction_trigger("c-r")))
        .await
        .expect("still recommending");
    assert_eq!(answer.program_version, before.version);

    let mut broken_rules = base_program().replace("fraction = 0.0", "fraction = 2.5");
    program.write(&broken_rules);
    let refused = client
        .reload_program(proto::ReloadProgramRequest {})
        .await
        .expect_err("a rule is broken");
    assert!(
        refused
            .message()
            .contains("holdout.fraction must be from 0 to 1, not 2.5"),
        "{}",
        refused.message()
    );

    broken_rules = base_program().replace("frontline_limit = 100.0", "frontline_limit = 10.0");
    program.write(&broken_rules);
    let reloaded = client
        .reload_program(proto::ReloadProgramRequest {})
        .await
        .expect("a valid program")
        .into_inner();
    assert_ne!(reloaded.version, before.version);
    let answer = recommend(&app, request("c-r", interaction_trigger("c-r")))
        .await
        .expect("recommending");
    assert_eq!(answer.program_version, reloaded.version);
    assert_eq!(
        answer.approval(),
        proto::ApprovalLevel::Manager,
        "the new authority limit applies"
    );
}

async fn the_program_file_is_picked_up_when_it_changes(database: TestDatabase) {
    let program = ProgramFile::new(|p| p);
    let app = serve_program(&database, &program).await;
    let mut client = app.program_client().await;
    let before = current_program(&mut client).await;
    program.write(&base_program().replace("target_hours = 24.0", "target_hours = 8.0"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = current_program(&mut client).await;
        if now.version != before.version {
            assert!(now.toml.contains("target_hours = 8.0"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the changed file was not picked up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `RecommendRecoveries` answers every request in order, a bad one with its error in its
/// answer; a what-if request gets the same answer as a stored one and stores no decision.
async fn a_stream_of_recommendations_answers_in_order_and_what_if_stores_nothing(
    database: TestDatabase,
) {
    let program = ProgramFile::new(|p| p);
    let app = serve_program(&database, &program).await;
    failed_customer(&app, "c-1", 1_200.0).await;
    failed_customer(&app, "c-2", 2_400.0).await;
    let what_if = |customer: &str| proto::RecommendRecoveryRequest {
        what_if: true,
        ..request(customer, interaction_trigger(customer))
    };
    let stream = [
        ("a", Some(request("c-1", interaction_trigger("c-1")))),
        ("b", Some(request("nobody", None))),
        ("c", None),
        ("d", Some(what_if("c-2"))),
        ("e", Some(request("c-2", interaction_trigger("c-2")))),
    ]
    .map(|(id, request)| proto::RecommendRecoveriesRequest {
        request_id: id.into(),
        request,
    });
    let mut answers = app
        .scoring_client()
        .await
        .recommend_recoveries(tokio_stream::iter(stream))
        .await
        .expect("a stream")
        .into_inner();
    let mut received = Vec::new();
    while let Some(answer) = answers.message().await.expect("an answer") {
        received.push(answer);
    }
    let ids: Vec<&str> = received.iter().map(|a| a.request_id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e"]);
    use proto::recommend_recoveries_response::Result as Answer;
    let recommendation = |i: usize| match &received[i].result {
        Some(Answer::Recommendation(r)) => r.clone(),
        other => panic!("{}: {other:?}", received[i].request_id),
    };
    let error = |i: usize| match &received[i].result {
        Some(Answer::Error(e)) => e.clone(),
        other => panic!("{}: {other:?}", received[i].request_id),
    };
    assert!(recommendation(0).invest && !recommendation(0).decision_id.is_empty());
    assert_eq!(error(1).code, Code::NotFound as i32, "{:?}", error(1));
    assert_eq!(
        error(2).code,
        Code::InvalidArgument as i32,
        "{:?}",
        error(2)
    );
    let (imagined, stored) = (recommendation(3), recommendation(4));
    assert!(imagined.decision_id.is_empty(), "{imagined:?}");
    assert!(!stored.decision_id.is_empty());
    assert_eq!(imagined.recommended, stored.recommended);
    assert_eq!(imagined.invest, stored.invest);
    assert_eq!(imagined.reasons, stored.reasons);
    // Two decisions stored: c-1's and c-2's second; the what-if left none.
    let decisions = stored_decisions(&app).await;
    assert_eq!(decisions.len(), 2, "{decisions:?}");
    app.stop().await;
}

/// Concurrent recommendations are committed together: every answer's decision is stored,
/// once, for its own customer.
async fn concurrent_recommendations_are_each_stored_once(database: TestDatabase) {
    let program = ProgramFile::new(|p| p);
    let app = serve_program(&database, &program).await;
    let customers: Vec<String> = (0..8).map(|i| format!("c-{i}")).collect();
    for customer in &customers {
        failed_customer(&app, customer, 1_200.0).await;
    }
    let calls = (0..48).map(|i| {
        let customer = &customers[i % customers.len()];
        recommend(&app, request(customer, interaction_trigger(customer)))
    });
    let mut answered: Vec<(String, String)> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|answer| {
            let answer = answer.expect("a recommendation");
            (answer.customer_id, answer.decision_id)
        })
        .collect();
    let mut ids: Vec<&String> = answered.iter().map(|(_, id)| id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 48, "every answer names its own decision");
    let mut stored: Vec<String> = stored_decisions(&app)
        .await
        .into_iter()
        .map(|d| d.customer_id.as_str().to_owned())
        .collect();
    let mut answered: Vec<String> = answered.drain(..).map(|(customer, _)| customer).collect();
    stored.sort_unstable();
    answered.sort_unstable();
    assert_eq!(stored, answered);
    app.stop().await;
}

/// `rescue-client recommend --file`: every id of the file through `RecommendRecoveries`,
/// written in the file's order, an unknown customer as an error row; `--what-if` stores
/// no decision.
async fn a_file_of_customers_gets_its_recommendations_through_the_client(database: TestDatabase) {
    use crate::helpers::{Scratch, client};
    let program = ProgramFile::new(|p| p);
    let app = serve_program(&database, &program).await;
    failed_customer(&app, "c-1", 1_200.0).await;
    failed_customer(&app, "c-2", 2_400.0).await;
    let scratch = Scratch::new();
    let ids = scratch.file("ids.txt", "c-1\nnobody\nc-2\n");
    let run = |out: &str, extra: &[&str]| {
        let out = scratch.0.join(out);
        let mut args = vec![
            "--json",
            "recommend",
            "--file",
            ids.to_str().expect("UTF-8"),
            "--out",
            out.to_str().expect("UTF-8"),
            // A day after the fixtures' base time.
            "--as-of",
            "2026-01-02T00:00:00Z",
        ];
        args.extend_from_slice(extra);
        let output = client(&app.endpoint(), &args);
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
        (output.status.code(), summary, out)
    };

    let (code, summary, out) = run("imagined.csv", &["--what-if"]);
    assert_eq!(code, Some(3), "one customer is unknown: {summary}");
    assert_eq!(summary["recommended"], 2, "{summary}");
    assert_eq!(summary["failed"], 1, "{summary}");
    let mut reader = csv::Reader::from_path(&out).expect("a CSV file");
    let header = reader.headers().expect("a header").clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
    let column = |row: &csv::StringRecord, name: &str| {
        let at = header.iter().position(|h| h == name).expect("a column");
        row.get(at).unwrap_or_default().to_owned()
    };
    let customers: Vec<String> = rows.iter().map(|r| column(r, "customer_id")).collect();
    assert_eq!(customers, ["c-1", "nobody", "c-2"]);
    assert_eq!(column(&rows[0], "invest"), "true");
    assert_eq!(column(&rows[0], "action"), "refund");
    assert!(
        column(&rows[0], "decision_id").is_empty(),
        "what-if stores nothing"
    );
    assert!(
        column(&rows[1], "error").starts_with("NotFound"),
        "{:?}",
        rows[1]
    );
    assert!(stored_decisions(&app).await.is_empty());

    let (_, _, out) = run("stored.jsonl", &[]);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .expect("the output")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["error"]["code"], "NotFound", "{}", lines[1]);
    assert!(
        lines[2]["decision_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(stored_decisions(&app).await.len(), 2);
    app.stop().await;
}

on_every_backend!(
    concurrent_recommendations_are_each_stored_once,
    a_file_of_customers_gets_its_recommendations_through_the_client,
    a_stream_of_recommendations_answers_in_order_and_what_if_stores_nothing,
    an_eligible_customer_worth_recovering_gets_a_frontline_recovery,
    a_cost_above_the_frontline_authority_needs_a_manager,
    recovery_that_costs_more_than_it_is_worth_is_not_recommended,
    an_interaction_that_did_not_fail_is_not_eligible,
    a_low_survey_answer_is_found_without_a_named_trigger,
    customers_in_the_holdout_group_get_no_recovery,
    bad_requests_get_clear_errors,
    a_bad_program_reload_keeps_the_previous_program_serving,
    the_program_file_is_picked_up_when_it_changes,
);
