//! A program in its own words: tags and actions it declares, end to end — ingest checks records
//! against them, training learns an input per declared action, recommendations offer them by
//! name with the model's estimate, and the funnel groups by them.

use rescue::domain::{BuiltInAction, BuiltInTag, IssueTag, Record, RecoveryAction};
use rescue::proto::v1::{
    self as proto, ModelKind, TrainRequest, UpliftSource, recommend_recovery_request::Trigger,
    record::Kind, train_progress::Event,
};

use crate::fixtures::{at, customer_version, interaction, recovery_case};
use crate::helpers::{TestApp, TestDatabase, on_every_backend};
use crate::recommend::{ProgramFile, recommend, request, serve_program};

on_every_backend!(a_program_in_its_own_words_ingests_trains_recommends_and_counts);

/// Enough simulated customers for a few hundred recovered and unrecovered failures.
const CUSTOMERS: usize = 1_500;

/// The contact centre's word for each built-in tag the simulator writes.
fn own_tag(tag: BuiltInTag) -> &'static str {
    match tag {
        BuiltInTag::Pricing => "price rise",
        BuiltInTag::Billing => "double charge",
        BuiltInTag::Delivery => "late delivery",
        BuiltInTag::Technical => "app crash",
        BuiltInTag::Account => "locked out",
        BuiltInTag::ProductQuality => "broken item",
        BuiltInTag::Service => "rude agent",
        BuiltInTag::Other => "something else",
    }
}

/// ... and for each built-in action.
fn own_action(action: BuiltInAction) -> &'static str {
    match action {
        BuiltInAction::Apology => "sorry note",
        BuiltInAction::Refund => "money back",
        BuiltInAction::Discount => "loyalty discount",
        BuiltInAction::StoreCredit => "voucher",
        BuiltInAction::FeeWaiver => "fee waived",
        BuiltInAction::Replacement => "courier redelivery",
        BuiltInAction::Callback => "manager call",
        BuiltInAction::ExpertSupport => "engineer visit",
    }
}

fn quoted(names: impl Iterator<Item = &'static str>) -> String {
    names
        .map(|name| format!("{name:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The built-in rules in the contact centre's words; "something else" is the default tag.
fn own_program() -> String {
    let rules = crate::recommend::base_program();
    let rules = &rules[..rules.find("[protocol]").expect("a protocol")];
    format!(
        "{rules}\n[vocabulary]\ntags = [{}]\nactions = [{}]\ndefault_tag = \"Something else\"\n\n\
         [protocol]\n\
         \"app crash\" = [\n  {{ action = \"engineer visit\", cost = 90.0 }},\n  {{ action = \"manager call\", cost = 15.0 }},\n]\n\
         \"something else\" = [{{ action = \"sorry note\", cost = 5.0 }}]\n",
        quoted(BuiltInTag::ALL.iter().map(|t| own_tag(*t))),
        quoted(BuiltInAction::ALL.iter().map(|a| own_action(*a))),
    )
}

/// A simulated record in the contact centre's words.
fn in_own_words(record: Record) -> Record {
    let tag = |tag: IssueTag| {
        IssueTag::named(own_tag(
            tag.built_in().expect("simulated tags are built-in"),
        ))
        .expect("a name")
    };
    match record {
        Record::Interaction(mut contact) => {
            contact.tag = tag(contact.tag);
            Record::Interaction(contact)
        }
        Record::RecoveryCase(mut case) => {
            case.tag = tag(case.tag);
            case.action = RecoveryAction::named(own_action(
                case.action
                    .built_in()
                    .expect("simulated actions are built-in"),
            ))
            .expect("a name");
            Record::RecoveryCase(case)
        }
        other => other,
    }
}

fn set_names(record: &mut proto::Record, tag: &str, action: &str) {
    match record.kind.as_mut() {
        Some(Kind::Interaction(contact)) => {
            contact.tag = 0;
            contact.tag_name = tag.into();
        }
        Some(Kind::RecoveryCase(case)) => {
            (case.tag, case.action) = (0, 0);
            case.tag_name = tag.into();
            case.action_name = action.into();
        }
        _ => unreachable!("only interactions and cases carry names"),
    }
}

async fn train_uplift(app: &TestApp) -> proto::TrainResult {
    let mut events = app
        .models_client()
        .await
        .train(TrainRequest {
            kind: ModelKind::Uplift.into(),
            horizon_days: None,
            auto_promote: None,
            as_of: Vec::new(),
            min_outcomes: Some(100),
        })
        .await
        .expect("training starts")
        .into_inner();
    let mut result = None;
    while let Some(event) = events.message().await.expect("training events") {
        if let Some(Event::Result(r)) = event.event {
            result = Some(r);
        }
    }
    result.expect("a result at the end")
}

async fn a_program_in_its_own_words_ingests_trains_recommends_and_counts(database: TestDatabase) {
    let program = ProgramFile::new(|_| own_program());
    let app = serve_program(&database, &program).await;

    // Ingest: the simulated history in the program's words goes in through the RPC.
    let records: Vec<proto::Record> =
        rescue::simulate::simulate(rescue::simulate::SimulationParams {
            customers: CUSTOMERS,
            seed: 3,
        })
        .flat_map(|customer| customer.records)
        .map(|record| proto::Record::from(in_own_words(record)))
        .collect();
    let stored = records.len() as u64;
    let verdict = app.ingest(records, 2_000).await;
    assert_eq!(verdict.rejected, 0, "{:?}", verdict.rejections.first());
    assert_eq!(verdict.accepted, stored);

    // ... and records in other words are refused, each saying what the program speaks.
    let mut built_in = vec![
        customer_version("c-words", 0, 1_200.0),
        interaction("c-words-billing", "c-words"),
        recovery_case("c-words-refund", "c-words", 0),
    ];
    set_names(&mut built_in[2], "app crash", "refund");
    let verdict = app.ingest(built_in, 10).await;
    assert_eq!((verdict.accepted, verdict.rejected), (1, 2), "{verdict:?}");
    let reasons: Vec<String> = verdict
        .rejections
        .iter()
        .map(|r| format!("{}: {}", r.field, r.reason))
        .collect();
    assert!(
        reasons[0].starts_with(
            "interaction.tag: \"billing\" is not one of the program's issue tags (app crash,"
        ),
        "{reasons:?}"
    );
    assert!(
        reasons[1].starts_with(
            "recovery_case.action: \"refund\" is not one of the program's recovery actions"
        ),
        "{reasons:?}"
    );

    // Training: one treatment input per declared action the cases took, by name.
    let trained = train_uplift(&app).await;
    assert!(trained.promoted, "{}", trained.decision);
    let info = trained.model.as_ref().expect("the new model");
    let mut learnt: Vec<&str> = info.actions.iter().map(String::as_str).collect();
    learnt.sort_unstable();
    let mut declared: Vec<&str> = BuiltInAction::ALL.iter().map(|a| own_action(*a)).collect();
    declared.sort_unstable();
    assert_eq!(learnt, declared);

    // Recommend: a crash named in any case gets the program's actions for it, valued by the
    // model, and the answer names the tag and each action in the program's words.
    let mut crash = interaction("c-words-crash", "c-words");
    set_names(&mut crash, "App Crash", "");
    assert_eq!(app.ingest(vec![crash], 10).await.rejected, 0);
    let answer = recommend(
        &app,
        request(
            "c-words",
            Some(Trigger::InteractionId("c-words-crash".into())),
        ),
    )
    .await
    .expect("a recommendation");
    assert_eq!(answer.tag_name, "app crash");
    assert_eq!(answer.tag, 0, "not a built-in tag");
    let offered: Vec<(&str, UpliftSource)> = answer
        .options
        .iter()
        .map(|o| (o.action_name.as_str(), o.uplift_source()))
        .collect();
    assert_eq!(offered.len(), 2, "{offered:?}");
    for (action, source) in &offered {
        assert!(
            ["engineer visit", "manager call"].contains(action),
            "{offered:?}"
        );
        assert_eq!(*source, UpliftSource::Model, "{offered:?}");
    }
    // A tag asked for by name that the program does not speak is refused.
    let refused = recommend(
        &app,
        proto::RecommendRecoveryRequest {
            tag_name: "billing".into(),
            ..request("c-words", None)
        },
    )
    .await
    .expect_err("not the program's tag");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused
            .message()
            .contains("is not one of the program's issue tags"),
        "{}",
        refused.message()
    );

    // Funnel: the decision is counted under the program's word for its tag.
    let funnel = app
        .program_client()
        .await
        .recovery_funnel(proto::RecoveryFunnelRequest {
            from: at(0),
            to: at(2 * 86_400),
        })
        .await
        .expect("the funnel")
        .into_inner();
    let crashes = funnel
        .by_tag
        .iter()
        .find(|group| group.name == "app crash")
        .unwrap_or_else(|| panic!("an \"app crash\" group among {:?}", funnel.by_tag));
    assert_eq!(crashes.counts.as_ref().map(|c| c.decided), Some(1));
    app.stop().await;
}
