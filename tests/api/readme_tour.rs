//! The README's API tour, run as written on a fresh server: every `grpcurl` command of the
//! section is parsed from the README itself, its JSON turned into the request message through
//! the contract's descriptors (as grpcurl does with reflection), and sent; each must end with
//! the code the tour states, and a reply the tour shows must have the fields it shows.

use std::time::Duration;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use crate::helpers::{TestDatabase, spawn_app_with};
use crate::recommend::ProgramFile;

const README: &str = include_str!("../../README.md");

/// One `grpcurl` command of the tour.
#[derive(Debug, Clone)]
struct Command {
    /// `list`, or `package.Service/Method`.
    target: String,
    /// The request messages, as JSON (none: an empty request).
    data: Option<String>,
    /// The reply the README shows right after the command's block, if any.
    shown_reply: Option<serde_json::Value>,
}

/// The text of the API tour: from its heading to the next section.
fn tour() -> &'static str {
    let start = README
        .find("## API tour")
        .expect("an API tour in the README");
    let end = README[start..]
        .find("\n## Command line")
        .map_or(README.len(), |end| start + end);
    &README[start..end]
}

/// Splits a command line the way a POSIX shell splits words with single quotes.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut in_word = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

/// Every grpcurl command of the tour's `sh` blocks, in order.
fn commands() -> Vec<Command> {
    let text = tour();
    let mut commands = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("```sh\n") {
        let body_start = open + "```sh\n".len();
        let close = rest[body_start..].find("\n```").expect("a closed block") + body_start;
        let block = &rest[body_start..close];
        rest = &rest[close + 4..];
        let shown_reply = rest
            .trim_start()
            .strip_prefix("```json\n")
            .and_then(|json| json.find("\n```").map(|end| &json[..end]))
            .map(|json| serde_json::from_str(json).expect("the README's reply is JSON"));
        let mut lines = block.lines().peekable();
        let mut parsed = Vec::new();
        while let Some(line) = lines.next() {
            let mut line = line.trim().to_owned();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // A line goes on after a trailing backslash, or inside an open single quote.
            loop {
                if line.ends_with('\\') {
                    line.pop();
                } else if line.matches('\'').count() % 2 == 0 {
                    break;
                }
                line.push(' ');
                line.push_str(lines.next().expect("a continued line").trim());
            }
            // A here-document: the data is the lines up to its end marker.
            let mut heredoc = None;
            if let Some((command, marker)) = line.split_once("<<") {
                let marker = marker.trim().trim_matches('\'').to_owned();
                let mut data = String::new();
                for body in lines.by_ref() {
                    if body.trim() == marker {
                        break;
                    }
                    data.push_str(body);
                    data.push('\n');
                }
                heredoc = Some(data);
                line = command.to_owned();
            }
            let words = words(&line);
            assert_eq!(words.first().map(String::as_str), Some("grpcurl"), "{line}");
            let mut data = None;
            let mut positional = Vec::new();
            let mut words = words.into_iter().skip(1);
            while let Some(word) = words.next() {
                match word.as_str() {
                    "-plaintext" => {}
                    "-d" => {
                        let given = words.next().expect("-d takes data");
                        data = Some(if given == "@" {
                            heredoc.clone().expect("-d @ reads a here-document")
                        } else {
                            given
                        });
                    }
                    flag if flag.starts_with('-') => {
                        panic!("a grpcurl flag the tour test does not know: {flag}")
                    }
                    _ => positional.push(word),
                }
            }
            // [address, target]
            assert_eq!(positional.len(), 2, "{line}");
            parsed.push(Command {
                target: positional[1].clone(),
                data,
                shown_reply: None,
            });
        }
        if let Some(last) = parsed.last_mut() {
            last.shown_reply = shown_reply;
        }
        commands.extend(parsed);
    }
    commands
}

/// Encodes and decodes the messages of one method by its descriptors.
#[derive(Debug, Clone)]
struct DynamicCodec(MessageDescriptor);

#[derive(Debug)]
struct DynamicEncoder;

#[derive(Debug)]
struct DynamicDecoder(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> DynamicEncoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> DynamicDecoder {
        DynamicDecoder(self.0.clone())
    }
}

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: DynamicMessage,
        dst: &mut EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        item.encode(dst)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, tonic::Status> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

fn pool() -> DescriptorPool {
    let mut pool = DescriptorPool::new();
    pool.decode_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .expect("health descriptors");
    pool.decode_file_descriptor_set(rescue::proto::FILE_DESCRIPTOR_SET)
        .expect("rescue descriptors");
    pool
}

fn method(pool: &DescriptorPool, target: &str) -> MethodDescriptor {
    let (service, method) = target.split_once('/').expect("Service/Method");
    pool.get_service_by_name(service)
        .unwrap_or_else(|| panic!("no service {service}"))
        .methods()
        .find(|m| m.name() == method)
        .unwrap_or_else(|| panic!("no method {target}"))
}

/// The request messages of `data` (grpcurl reads a stream of JSON objects).
fn requests(input: &MessageDescriptor, data: Option<&str>) -> Vec<DynamicMessage> {
    let Some(data) = data else {
        return vec![DynamicMessage::new(input.clone())];
    };
    let mut messages = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(data).into_iter::<serde_json::Value>();
    for value in stream.by_ref() {
        let value = value.expect("the README's request is JSON");
        messages.push(
            DynamicMessage::deserialize(input.clone(), value).unwrap_or_else(|e| {
                panic!("the README's request is not a {}: {e}", input.full_name())
            }),
        );
    }
    messages
}

/// Sends `command` and returns its replies as JSON, or the status it failed with.
async fn run(
    channel: &Channel,
    pool: &DescriptorPool,
    command: &Command,
) -> Result<Vec<serde_json::Value>, tonic::Status> {
    let method = method(pool, &command.target);
    let messages = requests(&method.input(), command.data.as_deref());
    let codec = DynamicCodec(method.output());
    let path: http::uri::PathAndQuery = format!("/{}", command.target).parse().expect("a path");
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let replies: Vec<DynamicMessage> =
        match (method.is_client_streaming(), method.is_server_streaming()) {
            (false, false) => {
                let request = messages.into_iter().next().expect("one request");
                vec![
                    grpc.unary(tonic::Request::new(request), path, codec)
                        .await?
                        .into_inner(),
                ]
            }
            (true, false) => vec![
                grpc.client_streaming(
                    tonic::Request::new(tokio_stream::iter(messages)),
                    path,
                    codec,
                )
                .await?
                .into_inner(),
            ],
            (false, true) => {
                let request = messages.into_iter().next().expect("one request");
                let mut stream = grpc
                    .server_streaming(tonic::Request::new(request), path, codec)
                    .await?
                    .into_inner();
                let mut replies = Vec::new();
                while let Some(reply) = stream.message().await? {
                    replies.push(reply);
                }
                replies
            }
            (true, true) => {
                let mut stream = grpc
                    .streaming(
                        tonic::Request::new(tokio_stream::iter(messages)),
                        path,
                        codec,
                    )
                    .await?
                    .into_inner();
                let mut replies = Vec::new();
                while let Some(reply) = stream.message().await? {
                    replies.push(reply);
                }
                replies
            }
        };
    Ok(replies
        .iter()
        .map(|reply| serde_json::to_value(reply).expect("a reply as JSON"))
        .collect())
}

async fn list_services(channel: &Channel) -> Vec<String> {
    use tonic_reflection::pb::v1;
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = v1::server_reflection_client::ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection answers")
        .into_inner();
    match answers
        .message()
        .await
        .expect("a reply")
        .and_then(|a| a.message_response)
    {
        Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("not a service list: {other:?}"),
    }
}

/// The code each step of the tour ends with, as the tour says: on its one customer a training
/// is refused, and with one model ever active there is nothing to roll back to.
fn expected_code(target: &str) -> tonic::Code {
    match target {
        "rescue.v1.Models/Train" | "rescue.v1.Models/RollbackModel" => {
            tonic::Code::FailedPrecondition
        }
        _ => tonic::Code::Ok,
    }
}

#[tokio::test]
async fn the_api_tour_runs_as_written_on_a_fresh_server() {
    let commands = commands();
    assert!(commands.len() >= 12, "{commands:#?}");
    let database = TestDatabase::sqlite();
    // ReloadProgram needs a server started with --program FILE, as the tour says.
    let program = ProgramFile::new(|_| rescue::decision::DEFAULT_PROGRAM_TOML.to_owned());
    let app = spawn_app_with(&database, |settings| {
        settings.program = Some(program.path.clone());
        settings.program_reload = Duration::from_secs(3_600);
    })
    .await;
    let channel = app.channel().await;
    let pool = pool();
    let mut listed_version: Option<String> = None;
    for mut command in commands {
        if command.target == "list" {
            let services = list_services(&channel).await;
            for service in [
                "rescue.v1.Ingest",
                "rescue.v1.Scoring",
                "rescue.v1.Models",
                "rescue.v1.Program",
            ] {
                assert!(services.iter().any(|s| s == service), "{services:?}");
            }
            continue;
        }
        // The tour's placeholder for a version ListModels listed.
        if let Some(data) = &command.data
            && data.contains("\"VERSION\"")
        {
            let version = listed_version
                .clone()
                .expect("ListModels ran before PromoteModel");
            command.data = Some(data.replace("\"VERSION\"", &format!("\"{version}\"")));
        }
        let ran = run(&channel, &pool, &command).await;
        let code = ran
            .as_ref()
            .map_or_else(|status| status.code(), |_| tonic::Code::Ok);
        assert_eq!(
            code,
            expected_code(&command.target),
            "{}: {ran:?}",
            command.target
        );
        let Ok(replies) = ran else { continue };
        if command.target == "rescue.v1.Models/ListModels" {
            listed_version = replies[0]["models"][0]["version"]
                .as_str()
                .map(str::to_owned);
        }
        if let Some(shown) = &command.shown_reply {
            let reply = replies.last().expect("a reply");
            for key in shown.as_object().expect("an object").keys() {
                assert!(
                    reply.get(key).is_some(),
                    "{}: the tour shows {key}, the reply has {reply}",
                    command.target
                );
            }
        }
    }
    app.stop().await;
}
