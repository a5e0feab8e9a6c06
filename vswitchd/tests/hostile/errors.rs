//! Errors quote a bounded prefix of their input.

use super::Vswitchd;

// ---------------------------------------------------------------------------------------
// Errors quote a bounded prefix of their input (item 7).
// ---------------------------------------------------------------------------------------

/// An 8 MiB name (under the message limit) comes back as INVALID_ARGUMENT or NOT_FOUND
/// with a message of at most about a kilobyte, wherever it is put; a 60 MiB one is refused
/// by size with a short message.
#[test]
fn errors_quote_a_bounded_prefix_of_the_input() {
    use proto::v1::{self, entity, update};
    let dir = tempfile::tempdir().unwrap();
    let d = Vswitchd::start(dir.path(), &[], &[]);
    d.ok(&["add-port", "br0", "p1", "type=memory"]);
    let huge = "x".repeat(8 << 20);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = vswitchd::client::connect_unix(&d.sock()).await.unwrap();
        let check = |what: &str, r: Result<tonic::Status, ()>, codes: &[tonic::Code]| {
            let s = r.unwrap_or_else(|_| panic!("{what}: accepted"));
            eprintln!("{what}: {:?}, {} bytes", s.code(), s.message().len());
            assert!(codes.contains(&s.code()), "{what}: {:?}", s.code());
            assert!(
                s.message().len() <= 1400,
                "{what}: a {} byte error",
                s.message().len()
            );
        };
        let r = c
            .add_bridge(v1::AddBridgeRequest {
                name: huge.clone(),
                ..Default::default()
            })
            .await;
        check(
            "bridge name",
            r.err().ok_or(()),
            &[tonic::Code::InvalidArgument],
        );
        let r = c
            .add_port(v1::AddPortRequest {
                bridge: "br0".into(),
                port: Some(v1::PortConfig {
                    name: huge.clone(),
                    r#type: "memory".into(),
                    ..Default::default()
                }),
            })
            .await;
        check(
            "port name",
            r.err().ok_or(()),
            &[tonic::Code::InvalidArgument],
        );
        let r = c
            .set_port_options(v1::SetPortOptionsRequest {
                bridge: "br0".into(),
                name: "p1".into(),
                options: [(huge.clone(), "1".to_string())].into(),
                ..Default::default()
            })
            .await;
        check(
            "option name",
            r.err().ok_or(()),
            &[tonic::Code::InvalidArgument],
        );
        let mut flow = proto::flow_text::parse_flow("priority=1,actions=output:p1").unwrap();
        if let Some(v1::instruction::Instruction::ApplyActions(a)) =
            flow.instructions[0].instruction.as_mut()
            && let Some(v1::action::Action::Output(o)) = a.actions[0].action.as_mut()
        {
            o.port = Some(v1::PortRef {
                port: Some(v1::port_ref::Port::Name(huge.clone())),
            });
        }
        let r = c
            .write(v1::WriteRequest {
                bridge: "br0".into(),
                updates: vec![v1::Update {
                    r#type: update::Type::Insert as i32,
                    entity: Some(v1::Entity {
                        entity: Some(entity::Entity::Flow(flow)),
                    }),
                }],
                atomicity: v1::Atomicity::AllOrNone as i32,
            })
            .await;
        check(
            "output port name",
            r.err().ok_or(()),
            &[tonic::Code::NotFound],
        );
        let r = c
            .add_bridge(v1::AddBridgeRequest {
                name: "y".repeat(60 << 20),
                ..Default::default()
            })
            .await;
        // tonic refuses a message over the limit with OUT_OF_RANGE.
        check(
            "60 MiB",
            r.err().ok_or(()),
            &[tonic::Code::OutOfRange, tonic::Code::ResourceExhausted],
        );
    });
    // The flow text parser (flowctl's) quotes a bounded token too.
    let e = proto::flow_text::parse_flow(&format!("priority={},actions=drop", "9".repeat(1 << 20)))
        .unwrap_err();
    assert!(e.to_string().len() < 300, "{} bytes", e.to_string().len());
}
