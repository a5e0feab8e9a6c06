//! gRPC health and reflection.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path()).await;
    let ch = vswitchd::client::channel_unix(&d.sock).await.unwrap();
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let r = h
        .check(tonic_health::pb::HealthCheckRequest {
            service: "vswitch.v1.Switch".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_request, server_reflection_response,
    };
    let mut r = ServerReflectionClient::new(ch);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut resp = r
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let m = resp.message().await.unwrap().unwrap();
    let Some(server_reflection_response::MessageResponse::ListServicesResponse(l)) =
        m.message_response
    else {
        panic!("unexpected reflection answer {m:?}");
    };
    let names: Vec<String> = l.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"vswitch.v1.Switch".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
    d.stop().await;
}
